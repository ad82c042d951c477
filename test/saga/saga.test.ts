/**
 * The saga engine's semantics, each against the real Temporal dev server with stand-in activities.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { siblingModule } from '../../src/module-path';
import { sagaWorkerInterceptors } from '../../src/saga/activity';
import type { SagaFailureReport, SagaState, StepOutcome } from '../../src/saga/workflow';
import { connectTestStack, startWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { createStandInActivities, StandInScript } from './saga-activities';
import type { continuedSaga, sagaScenario, ScenarioInput } from './saga-workflows';

const workflowsPath = siblingModule(__dirname, './saga-workflows');
const script = new StandInScript();
let stack: TestStack;
let worker: RunningWorker;

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startWorker(stack, {
    workflowsPath,
    activities: createStandInActivities(script),
    interceptors: sagaWorkerInterceptors(),
  });
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
});

function start(input: ScenarioInput) {
  return stack.client.workflow.start<typeof sagaScenario>('sagaScenario', {
    workflowId: `saga-${input.runId}`,
    taskQueue: stack.config.temporal.taskQueue,
    args: [input],
  });
}

async function failureOf(
  promise: Promise<unknown>,
): Promise<{ failure: ApplicationFailure | CancelledFailure; report: SagaFailureReport }> {
  const err = await promise.then(
    () => expect.fail('the saga should have failed'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const failure = (err as WorkflowFailedError).cause as ApplicationFailure | CancelledFailure;
  return { failure, report: failure.details?.[0] as SagaFailureReport };
}

const undoneSteps = (runId: string) => script.of(runId, 'undo').map((c) => c.step);

describe('saga engine', () => {
  it('runs every step forward and compensates nothing when all succeed', async () => {
    const runId = uniqueId('ok');
    const result = await (await start({ runId, steps: ['a', 'b', 'c'] })).result();
    expect(result).toEqual(['act:a', 'act:b', 'act:c']);
    expect(script.of(runId, 'undo')).toHaveLength(0);
  });

  it('compensates the steps taken in reverse order, including the failed one, and names the step and cause', async () => {
    const runId = uniqueId('reverse');
    script.set(runId, 'act', 'c', { kind: 'fail', type: 'DiskFull' });
    const { failure, report } = await failureOf((await start({ runId, steps: ['a', 'b', 'c'] })).result());

    expect(undoneSteps(runId)).toEqual(['c', 'b', 'a']);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).type).toBe('CFailed');
    expect(failure.message).toContain('step "c" failed: DiskFull: act c failed on cue');
    expect(report).toMatchObject({
      failedStep: 'c',
      cause: { type: 'DiskFull' },
      cancelled: false,
      afterPivot: false,
      compensations: [
        { step: 'c', activity: 'undo', status: 'compensated' },
        { step: 'b', activity: 'undo', status: 'compensated' },
        { step: 'a', activity: 'undo', status: 'compensated' },
      ],
    });
  });

  it('registers a compensation before its action, so a half-succeeded action is undone with what it reported', async () => {
    const runId = uniqueId('half');
    script.set(runId, 'act', 'b', { kind: 'half-succeed-then-timeout' });
    const { report } = await failureOf((await start({ runId, steps: ['a', 'b'] })).result());

    expect(report.cause.type).toBe('Timeout');
    const undoB = script.of(runId, 'undo').find((c) => c.step === 'b');
    const outcome = (undoB?.arg as { outcome: StepOutcome<unknown> }).outcome;
    expect(outcome).toMatchObject({ status: 'failed', lastHeartbeatDetails: { created: 'resource-of-b' } });
    expect(undoneSteps(runId)).toEqual(['b', 'a']);
  });

  it('hands a compensation the details its failed action attached', async () => {
    const runId = uniqueId('details');
    script.set(runId, 'act', 'b', { kind: 'fail', details: [{ uploadId: 'u-123' }] });
    await failureOf((await start({ runId, steps: ['a', 'b'] })).result());
    const undoB = script.of(runId, 'undo').find((c) => c.step === 'b');
    expect((undoB?.arg as { outcome: StepOutcome<unknown> }).outcome).toMatchObject({
      status: 'failed',
      failureDetails: [{ uploadId: 'u-123' }],
    });
  });

  it('runs compensations when the workflow is cancelled, and ends cancelled with the report', async () => {
    const runId = uniqueId('cancel');
    script.set(runId, 'act', 'b', { kind: 'block-until-cancelled' });
    const handle = await start({ runId, steps: ['a', 'b', 'c'] });
    await expect.poll(() => script.of(runId, 'act').some((c) => c.step === 'b'), { timeout: 20_000 }).toBe(true);
    await handle.cancel();
    const { failure } = await failureOf(handle.result());

    expect(failure).toBeInstanceOf(CancelledFailure);
    expect(undoneSteps(runId)).toEqual(['b', 'a']);
    expect((await handle.describe()).status.name).toBe('CANCELLED');
    // Temporal records a cancellation without details: the report is served by the saga's query.
    const state = await handle.query<SagaState>('sagaState');
    expect(state.failure).toMatchObject({
      failedStep: 'b',
      cancelled: true,
      compensations: [
        { step: 'b', status: 'compensated' },
        { step: 'a', status: 'compensated' },
      ],
    });
  });

  it('continues past a failing compensation by default and reports each outcome', async () => {
    const runId = uniqueId('continue');
    script.set(runId, 'act', 'c', { kind: 'fail' });
    script.set(runId, 'undo', 'b', { kind: 'fail', type: 'StoreDown' });
    const { report, failure } = await failureOf((await start({ runId, steps: ['a', 'b', 'c'] })).result());

    expect(report.compensations.map((c) => [c.step, c.status])).toEqual([
      ['c', 'compensated'],
      ['b', 'failed'],
      ['a', 'compensated'],
    ]);
    expect(report.compensations[1]?.error).toEqual({ type: 'StoreDown', message: 'undo b failed on cue' });
    expect(failure.message).toContain('b failed (StoreDown: undo b failed on cue)');
  });

  it('stops at the first failing compensation when asked to, and reports the rest as skipped', async () => {
    const runId = uniqueId('stop');
    script.set(runId, 'act', 'c', { kind: 'fail' });
    script.set(runId, 'undo', 'b', { kind: 'fail' });
    const { report } = await failureOf(
      (await start({ runId, steps: ['a', 'b', 'c'], options: { continueOnCompensationFailure: false } })).result(),
    );

    expect(report.compensations.map((c) => [c.step, c.status])).toEqual([
      ['c', 'compensated'],
      ['b', 'failed'],
      ['a', 'skipped'],
    ]);
    expect(undoneSteps(runId)).not.toContain('a');
  });

  it('retries a compensation by its own declared policy', async () => {
    const runId = uniqueId('comp-retry');
    script.set(runId, 'act', 'c', { kind: 'fail' });
    script.set(runId, 'undo', 'b', { kind: 'fail-times', times: 2 }); // b's compensation allows 3 attempts
    script.set(runId, 'undo', 'a', { kind: 'fail-times', times: 1 }); // a's allows only 1
    const { report } = await failureOf((await start({ runId, steps: ['a', 'b', 'c'] })).result());

    expect(
      script
        .of(runId, 'undo')
        .filter((c) => c.step === 'b')
        .map((c) => c.attempt),
    ).toEqual([1, 2, 3]);
    expect(report.compensations.find((c) => c.step === 'b')?.status).toBe('compensated');
    expect(report.compensations.find((c) => c.step === 'a')?.status).toBe('failed');
  });

  it('runs compensations in parallel when asked to', async () => {
    const runId = uniqueId('parallel');
    script.set(runId, 'act', 'c', { kind: 'fail' });
    for (const step of ['a', 'b', 'c']) script.set(runId, 'undo', step, { kind: 'sleep', ms: 1500 });
    const { report } = await failureOf((await start({ runId, steps: ['a', 'b', 'c'], options: { parallelCompensation: true } })).result());

    expect(report.compensations.every((c) => c.status === 'compensated')).toBe(true);
    const undos = script.of(runId, 'undo');
    const latestStart = Math.max(...undos.map((c) => c.startedAt));
    const earliestEnd = Math.min(...undos.map((c) => c.endedAt ?? Infinity));
    expect(latestStart).toBeLessThan(earliestEnd); // all three were running at the same moment
  });

  it('never compensates after the pivot: a later step is retried forward and the saga fails without undoing', async () => {
    const runId = uniqueId('pivot');
    script.set(runId, 'act', 'after', { kind: 'fail-times', times: 5 }); // more than its 3 attempts
    const { report, failure } = await failureOf((await start({ runId, steps: ['a', 'pivot', 'after'] })).result());

    expect(
      script
        .of(runId, 'act')
        .filter((c) => c.step === 'after')
        .map((c) => c.attempt),
    ).toEqual([1, 2, 3]);
    expect(script.of(runId, 'undo')).toHaveLength(0);
    expect(report).toMatchObject({ failedStep: 'after', afterPivot: true, compensations: [] });
    expect(failure.message).toContain('after the pivot');
  });

  it('runs local-activity steps with their retries, and compensates them', async () => {
    const runId = uniqueId('local');
    script.set(runId, 'act', 'local', { kind: 'fail-times', times: 2 });
    script.set(runId, 'act', 'c', { kind: 'fail' });
    const handle = await start({ runId, steps: ['a', 'local', 'c'] });
    const { report } = await failureOf(handle.result());

    expect(
      script
        .of(runId, 'act')
        .filter((c) => c.step === 'local')
        .map((c) => c.attempt),
    ).toEqual([1, 2, 3]);
    expect(undoneSteps(runId)).toEqual(['c', 'local', 'a']);
    expect(report.compensations.every((c) => c.status === 'compensated')).toBe(true);
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes).length;
    const markers = events.filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity').length;
    expect(markers).toBe(2); // the local action and its local compensation: one marker each, no activity events
    expect(scheduled).toBe(4); // a, c and their compensations
  });

  it('finishes forward when cancelled after the pivot', async () => {
    const runId = uniqueId('pivot-cancel');
    script.set(runId, 'act', 'after', { kind: 'sleep', ms: 3000 });
    const handle = await start({ runId, steps: ['a', 'pivot', 'after'] });
    await expect.poll(() => script.of(runId, 'act').some((c) => c.step === 'after'), { timeout: 20_000 }).toBe(true);
    await handle.cancel();
    expect(await handle.result()).toEqual(['act:a', 'act:pivot', 'act:after']);
    expect(script.of(runId, 'undo')).toHaveLength(0);
  });

  it('does not start the pivot when the cancellation arrived with the result of the step before it, and compensates', async () => {
    // Found by the fault suite (scenario 12, cancel during verify): the step before the pivot
    // returned, the cancellation was already there, and the shielded pivot completed forward.
    const runId = uniqueId('cancel-before-pivot');
    script.set(runId, 'act', 'settles', { kind: 'sleep', ms: 2000 });
    const handle = await start({ runId, steps: ['a', 'settles', 'pivot', 'after'] });
    await expect.poll(() => script.of(runId, 'act').some((c) => c.step === 'settles'), { timeout: 20_000 }).toBe(true);
    await handle.cancel();
    const { failure } = await failureOf(handle.result());
    expect(failure).toBeInstanceOf(CancelledFailure);
    expect(script.of(runId, 'act').map((c) => c.step)).toEqual(['a', 'settles']);
    expect(undoneSteps(runId)).toEqual(['settles', 'a']);
    const state = await handle.query<SagaState>('sagaState');
    expect(state.failure).toMatchObject({ failedStep: 'settles', cancelled: true, afterPivot: false });
    expect(state.pivotReached).toBe(false);
  });

  it('does not interrupt the pivot when cancelled while it runs, and finishes forward', async () => {
    // Found by the fault suite (scenario 12, cancel during merge): a cancelled pivot activity may
    // still take effect, so compensating around it would race it.
    const runId = uniqueId('pivot-running-cancel');
    script.set(runId, 'act', 'pivot', { kind: 'sleep', ms: 3000 });
    const handle = await start({ runId, steps: ['a', 'pivot', 'after'] });
    await expect.poll(() => script.of(runId, 'act').some((c) => c.step === 'pivot'), { timeout: 20_000 }).toBe(true);
    await handle.cancel();
    expect(await handle.result()).toEqual(['act:a', 'act:pivot', 'act:after']);
    expect(script.of(runId, 'undo')).toHaveLength(0);
    const events = (await handle.fetchHistory()).events ?? [];
    expect(events.some((e) => e.activityTaskCancelRequestedEventAttributes)).toBe(false);
  });
});

describe('saga engine: workflow-code steps and continue-as-new', () => {
  const startContinued = (runId: string, failWaitWith?: string) =>
    stack.client.workflow.start<typeof continuedSaga>('continuedSaga', {
      workflowId: `saga-${runId}`,
      taskQueue: stack.config.temporal.taskQueue,
      args: [{ runId, ...(failWaitWith ? { failWaitWith } : {}) }],
    });

  it('passes continue-as-new through a step and the saga without compensating, and finishes in the next run', async () => {
    const runId = uniqueId('continued');
    const handle = await startContinued(runId);
    expect(await handle.result()).toEqual(['act:a', 'waited', 'act:c']);
    expect(script.of(runId, 'act').map((c) => c.step)).toEqual(['a', 'c']); // a ran once, in the first run
    expect(script.of(runId, 'undo')).toHaveLength(0);
    const firstRun = await stack.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).fetchHistory();
    expect(firstRun.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
  });

  it('names a failing workflow-code step in the report and undoes it, then the steps restored from the earlier run', async () => {
    const runId = uniqueId('restored');
    const handle = await startContinued(runId, 'WaitGone');
    const { failure, report } = await failureOf(handle.result());
    expect((failure as ApplicationFailure).type).toBe('WaitFailed');
    expect(report).toMatchObject({
      failedStep: 'wait',
      cause: { type: 'WaitGone', message: 'the wait failed on cue' },
      compensations: [
        { step: 'wait', activity: 'undo', status: 'compensated' },
        { step: 'a', activity: 'undo', status: 'compensated' },
      ],
    });
    const undone = script.of(runId, 'undo');
    expect(undone.map((c) => c.step)).toEqual(['wait', 'a']);
    // The restored step's compensation gets the result the earlier run had.
    expect((undone[1]!.arg as { outcome: StepOutcome<string> }).outcome).toEqual({ status: 'completed', result: 'act:a' });
    expect((undone[0]!.arg as { outcome: StepOutcome<string> }).outcome).toMatchObject({ status: 'failed', failure: { type: 'WaitGone' } });
    expect(script.of(runId, 'act').map((c) => c.step)).toEqual(['a']);
  });
});
