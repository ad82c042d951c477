/**
 * Workflow-side half of jittered retries: an outbound interceptor that attaches the step's retry
 * hint to the activity it schedules, as a header the activity interceptor reads back.
 *
 * `proxyActivities` has no per-call headers, but it runs the outbound interceptor chain
 * synchronously inside the proxy call. So the saga stores the hint in `pendingHint`, calls the
 * proxy, and the interceptor takes the hint in the same synchronous turn: no other workflow code
 * can run in between, which keeps this deterministic and free of cross-talk.
 *
 * Register this module with the worker: `interceptors.workflowModules: [sagaWorkflowInterceptorsPath]`.
 */
import { defaultPayloadConverter, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { RETRY_HINT_HEADER, type RetryHint } from '../shared/retry-hint';

let pendingHint: RetryHint | undefined;
let interceptorInstalled = false;
/**
 * A local activity's later attempts are scheduled after a backoff timer, outside the synchronous
 * turn: its hint is remembered by the options object, which the SDK passes unchanged to each attempt.
 */
const localActivityHints = new WeakMap<object, RetryHint>();

const withHint = <T extends { headers: Record<string, unknown> }>(input: T, hint: RetryHint): T => ({
  ...input,
  headers: { ...input.headers, [RETRY_HINT_HEADER]: defaultPayloadConverter.toPayload(hint) },
});

/** Runs `schedule` (which must call an activity proxy synchronously) with `hint` attached. */
export function scheduleWithRetryHint<T>(hint: RetryHint | undefined, schedule: () => T): T {
  pendingHint = hint;
  try {
    return schedule();
  } finally {
    pendingHint = undefined;
  }
}

/** False when the worker did not register this module: jitter would silently not happen. */
export function retryHintInterceptorInstalled(): boolean {
  return interceptorInstalled;
}

export const interceptors: WorkflowInterceptorsFactory = () => {
  interceptorInstalled = true;
  return {
    outbound: [
      {
        scheduleActivity(input, next) {
          const hint = pendingHint;
          pendingHint = undefined;
          return next(hint ? withHint(input, hint) : input);
        },
        scheduleLocalActivity(input, next) {
          const hint = pendingHint ?? localActivityHints.get(input.options);
          if (pendingHint) localActivityHints.set(input.options, pendingHint);
          pendingHint = undefined;
          return next(hint ? withHint(input, hint) : input);
        },
      },
    ],
  };
};
