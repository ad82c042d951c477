/**
 * Jittered retries against the real dev server: many sagas failing together must not retry in
 * lock-step. We fail the first attempt of N sagas at the same moment and measure, for each, the
 * delay until Temporal started the second attempt.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { siblingModule } from '../../src/module-path';
import { sagaWorkerInterceptors } from '../../src/saga/activity';
import { connectTestStack, startWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { createStandInActivities, StandInScript } from './saga-activities';
import type { jitterScenario } from './saga-workflows';

const workflowsPath = siblingModule(__dirname, './saga-workflows');
const script = new StandInScript();
let stack: TestStack;
let worker: RunningWorker;

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startWorker(stack, { workflowsPath, activities: createStandInActivities(script), interceptors: sagaWorkerInterceptors() });
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
});

/** Starts `count` sagas at once and returns each one's delay between attempt 1 failing and attempt 2 starting. */
async function retryDelays(count: number, step: 'flaky' | 'flakyNoJitter', retryAfterMs?: number): Promise<number[]> {
  const runIds = Array.from({ length: count }, () => uniqueId(step));
  const handles = await Promise.all(
    runIds.map((runId) =>
      stack.client.workflow.start<typeof jitterScenario>('jitterScenario', {
        workflowId: `jitter-${runId}`,
        taskQueue: stack.config.temporal.taskQueue,
        args: [{ runId, step, ...(retryAfterMs ? { retryAfterMs } : {}) }],
      }),
    ),
  );
  await Promise.all(handles.map((h) => h.result()));
  return runIds.map((runId) => {
    const [first, second] = script.of(runId, 'flaky');
    return second!.startedAt - first!.endedAt!;
  });
}

const spread = (values: number[]) => Math.max(...values) - Math.min(...values);

describe('jittered retries', () => {
  it('spreads the retries of 20 sagas that failed together (full jitter over a 2 s backoff)', async () => {
    // Full jitter draws each delay from [0, 2 s]; the dev server never fires a retry sooner than
    // about 1 s, so in practice the delays fall in [1 s, 2 s]. With 20 sagas, a spread under
    // 500 ms would take every draw to land in one quarter of that range: p < 0.5 %.
    const delays = await retryDelays(20, 'flaky');
    console.log(
      `full jitter, 20 sagas, 2 s backoff: retry delays ${delays.sort((a, b) => a - b).join(', ')} ms (spread ${spread(delays)} ms)`,
    );
    for (const d of delays) expect(d).toBeLessThan(2000 + 700);
    expect(spread(delays)).toBeGreaterThan(500);
  });

  it('retries in lock-step without jitter — the problem jitter solves', async () => {
    const delays = await retryDelays(8, 'flakyNoJitter');
    console.log(`no jitter, 8 sagas, 2 s backoff: retry delays ${delays.join(', ')} ms (spread ${spread(delays)} ms)`);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(1900);
    expect(spread(delays)).toBeLessThan(700);
  });

  it("never retries sooner than the store's own Retry-After hint", async () => {
    const delays = await retryDelays(4, 'flaky', 3500);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(3400);
  });

  it('refuses to run a jittered step on a worker without the saga interceptors', async () => {
    const bare = await connectTestStack();
    const bareWorker = await startWorker(bare, { workflowsPath, activities: createStandInActivities(script) });
    try {
      const err = await bare.client.workflow
        .execute<typeof jitterScenario>('jitterScenario', {
          workflowId: `jitter-${uniqueId('bare')}`,
          taskQueue: bare.config.temporal.taskQueue,
          args: [{ runId: uniqueId('bare'), step: 'flaky' }],
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(cause.cause).toBeInstanceOf(ApplicationFailure);
      expect((cause.cause as ApplicationFailure).type).toBe('SagaMisconfigured');
      expect(cause.message).toContain('sagaWorkflowInterceptorsPath');
    } finally {
      await bareWorker.stop();
      await bare.close();
    }
  });
});
