/**
 * Workflows that exercise the saga engine's semantics with stand-in activities. The activities
 * (see saga-activities.ts) only record what ran and fail on cue: the point is orchestration.
 */
import { ApplicationFailure, continueAsNew, defineQuery, setHandler, sleep } from '@temporalio/workflow';
import { defineSaga, Saga, type SagaOptions, type SagaState } from '../../src/saga/workflow';
import type { StandInActivities } from './saga-activities';

const quick = { initialInterval: '50ms', backoffCoefficient: 1, maximumAttempts: 1 } as const;
const timeouts = { startToClose: '20s' } as const;

export const sagaSteps = defineSaga<StandInActivities>()({
  a: { action: { activity: 'act', retry: quick, timeouts }, compensation: { activity: 'undo', retry: quick, timeouts } },
  b: {
    action: { activity: 'act', retry: quick, timeouts: { startToClose: '20s', heartbeat: '2s' } },
    compensation: { activity: 'undo', retry: { initialInterval: '50ms', backoffCoefficient: 1, maximumAttempts: 3 }, timeouts },
  },
  c: { action: { activity: 'act', retry: quick, timeouts }, compensation: { activity: 'undo', retry: quick, timeouts } },
  pivot: { action: { activity: 'act', retry: quick, timeouts }, pivot: true },
  /** Waits for its activity to finish when cancelled: its result and the cancellation reach the workflow together. */
  settles: {
    action: { activity: 'act', retry: quick, timeouts, cancellation: 'wait' },
    compensation: { activity: 'undo', retry: quick, timeouts },
  },
  local: {
    action: {
      activity: 'act',
      retry: { initialInterval: '50ms', backoffCoefficient: 1, maximumAttempts: 3, jitter: 'full' },
      timeouts,
      local: true,
    },
    compensation: { activity: 'undo', retry: quick, timeouts, local: true },
  },
  after: { action: { activity: 'act', retry: { initialInterval: '50ms', backoffCoefficient: 1, maximumAttempts: 3 }, timeouts } },
});

export interface ScenarioInput {
  runId: string;
  /** Which steps to run, in order. */
  steps: (keyof typeof sagaSteps)[];
  options?: Pick<SagaOptions, 'parallelCompensation' | 'continueOnCompensationFailure'>;
}

export async function sagaScenario(input: ScenarioInput): Promise<string[]> {
  const saga = new Saga<StandInActivities, typeof sagaSteps>(sagaSteps, input.options ?? {});
  setHandler(defineQuery<SagaState>('sagaState'), () => saga.state());
  return saga.execute(async () => {
    const done: string[] = [];
    for (const step of input.steps) {
      const result = await saga.run(step, [{ runId: input.runId, step }], {
        compensateWith: (outcome: unknown) => [{ runId: input.runId, step, outcome }],
      } as never);
      done.push(result);
    }
    return done;
  });
}

/** One step whose retries are jittered; used to measure the spread of retry delays. */
export const jitterSteps = defineSaga<StandInActivities>()({
  flaky: {
    action: { activity: 'flaky', retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 2, jitter: 'full' }, timeouts },
  },
  flakyNoJitter: {
    action: { activity: 'flaky', retry: { initialInterval: '2s', backoffCoefficient: 2, maximumAttempts: 2 }, timeouts },
  },
});

export async function jitterScenario(input: { runId: string; step: 'flaky' | 'flakyNoJitter'; retryAfterMs?: number }): Promise<string> {
  const saga = new Saga<StandInActivities, typeof jitterSteps>(jitterSteps);
  return saga.execute(() => saga.run(input.step, [{ runId: input.runId, retryAfterMs: input.retryAfterMs }], {}));
}

/** Waits for a cancellation that never comes unless the test sends it; keeps the timer deterministic. */
export async function idle(): Promise<void> {
  await sleep('1h');
}

/** A saga with a step that is workflow code, continuing as new in the middle of it. */
export const continuedSteps = defineSaga<StandInActivities>()({
  a: sagaSteps.a,
  wait: {
    action: { inWorkflow: 'waits (here: continues as new once, then fails or returns on cue)' },
    compensation: { activity: 'undo', retry: quick, timeouts },
  },
  c: sagaSteps.c,
});

export interface ContinuedInput {
  runId: string;
  /** Failure type the wait step throws in the second run; unset: it succeeds. */
  failWaitWith?: string;
  /** Set by the first run when it continues as new. */
  restored?: { a: string };
}

export async function continuedSaga(input: ContinuedInput): Promise<string[]> {
  const saga = new Saga<StandInActivities, typeof continuedSteps>(continuedSteps);
  setHandler(defineQuery<SagaState>('sagaState'), () => saga.state());
  const undo = (step: string) => (outcome: unknown) =>
    [{ runId: input.runId, step, outcome }] as [{ runId: string; step: string; outcome: unknown }];
  return saga.execute(async () => {
    let a: string;
    if (input.restored) {
      saga.restoreCompleted('a', { result: input.restored.a, compensateWith: undo('a') });
      a = input.restored.a;
    } else {
      a = await saga.run('a', [{ runId: input.runId, step: 'a' }], { compensateWith: undo('a') });
    }
    const waited = await saga.runInWorkflow(
      'wait',
      async () => {
        if (!input.restored) await continueAsNew<typeof continuedSaga>({ ...input, restored: { a } });
        if (input.failWaitWith) throw ApplicationFailure.nonRetryable('the wait failed on cue', input.failWaitWith);
        return 'waited';
      },
      { compensateWith: undo('wait') },
    );
    const c = await saga.run('c', [{ runId: input.runId, step: 'c' }], { compensateWith: undo('c') });
    return [a, waited, c];
  });
}
