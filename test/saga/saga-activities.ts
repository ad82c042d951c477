/**
 * Stand-in activities for the saga tests: they record every call in process memory (the test
 * worker runs in the test process) and fail, hang or half-succeed as the test scripts them.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';

export type Behaviour =
  | { kind: 'succeed' }
  | { kind: 'fail'; nonRetryable?: boolean; type?: string; details?: unknown[] }
  | { kind: 'half-succeed-then-timeout' }
  | { kind: 'block-until-cancelled' }
  | { kind: 'sleep'; ms: number }
  | { kind: 'fail-times'; times: number };

export interface CallRecord {
  runId: string;
  fn: 'act' | 'undo' | 'flaky';
  step: string;
  attempt: number;
  startedAt: number;
  endedAt?: number;
  arg: unknown;
}

/** Script and log, shared between a test file and its worker's activities. */
export class StandInScript {
  readonly calls: CallRecord[] = [];
  private readonly behaviours = new Map<string, Behaviour>();

  set(runId: string, fn: 'act' | 'undo', step: string, behaviour: Behaviour): void {
    this.behaviours.set(`${runId}/${fn}/${step}`, behaviour);
  }
  behaviour(runId: string, fn: string, step: string): Behaviour {
    return this.behaviours.get(`${runId}/${fn}/${step}`) ?? { kind: 'succeed' };
  }
  of(runId: string, fn?: CallRecord['fn']): CallRecord[] {
    return this.calls.filter((c) => c.runId === runId && (!fn || c.fn === fn));
  }
}

async function perform(script: StandInScript, fn: 'act' | 'undo', arg: { runId: string; step: string }): Promise<string> {
  const ctx = Context.current();
  const record: CallRecord = { runId: arg.runId, fn, step: arg.step, attempt: ctx.info.attempt, startedAt: Date.now(), arg };
  script.calls.push(record);
  const behaviour = script.behaviour(arg.runId, fn, arg.step);
  try {
    switch (behaviour.kind) {
      case 'succeed':
        return `${fn}:${arg.step}`;
      case 'fail':
        throw ApplicationFailure.create({
          type: behaviour.type ?? 'StandInFailure',
          message: `${fn} ${arg.step} failed on cue`,
          nonRetryable: behaviour.nonRetryable ?? true,
          details: behaviour.details,
        });
      case 'fail-times':
        if (ctx.info.attempt <= behaviour.times)
          throw ApplicationFailure.retryable(`${fn} ${arg.step} attempt ${ctx.info.attempt} failed on cue`, 'Flaky');
        return `${fn}:${arg.step}`;
      case 'half-succeed-then-timeout':
        ctx.heartbeat({ created: `resource-of-${arg.step}` });
        await ctx.sleep(60_000); // outlives the heartbeat timeout: the "store did the work, the answer was lost" case
        return 'unreachable';
      case 'block-until-cancelled':
        for (;;) {
          ctx.heartbeat();
          await ctx.sleep(200);
        }
      case 'sleep':
        await ctx.sleep(behaviour.ms);
        return `${fn}:${arg.step}`;
    }
  } finally {
    record.endedAt = Date.now();
  }
}

export function createStandInActivities(script: StandInScript) {
  return {
    act: (arg: { runId: string; step: string }) => perform(script, 'act', arg),
    undo: (arg: { runId: string; step: string; outcome?: unknown }) => perform(script, 'undo', arg),
    async flaky(arg: { runId: string; retryAfterMs?: number }): Promise<string> {
      const ctx = Context.current();
      script.calls.push({ runId: arg.runId, fn: 'flaky', step: 'flaky', attempt: ctx.info.attempt, startedAt: Date.now(), arg });
      if (ctx.info.attempt === 1) {
        const failure = ApplicationFailure.retryable('first attempt fails', 'Flaky');
        if (arg.retryAfterMs) Object.assign(failure, { retryAfterMs: arg.retryAfterMs });
        script.calls[script.calls.length - 1]!.endedAt = Date.now();
        throw failure;
      }
      return 'ok';
    },
  };
}

export type StandInActivities = ReturnType<typeof createStandInActivities>;
