/**
 * Activity-side half of jittered retries. Temporal decides *whether* to retry (attempt limits,
 * non-retryable types); this interceptor only decides *when*: it turns a retryable error into an
 * ApplicationFailure whose `nextRetryDelay` is the step's exponential backoff, spread by the jitter
 * the workflow declared, and never shorter than the store's own hint (`Retry-After`, `SlowDown`).
 *
 * Errors that will not be retried (non-retryable failures, declared non-retryable types,
 * cancellations) pass through untouched, and so does everything when no hint header is present.
 */
import { type Context, type Info } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure, defaultPayloadConverter } from '@temporalio/common';
import { msOptionalToNumber } from '@temporalio/common/lib/time';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { nextRetryDelayMs, JITTER_MODES, type BackoffSchedule } from '../shared/backoff';
import { RETRY_HINT_HEADER, storeRetryAfterMs, type RetryHint } from '../shared/retry-hint';

/** @see createRetryInterceptor */
export interface RetryInterceptorOptions {
  /** Source of randomness in [0, 1); injectable so tests can pin it. @default Math.random */
  random?: () => number;
}

/** Temporal's defaults, used for fields the server did not send. */
function scheduleOf(info: Info): BackoffSchedule {
  const policy = info.retryPolicy;
  const initialIntervalMs = msOptionalToNumber(policy?.initialInterval) ?? 1000;
  return {
    initialIntervalMs,
    backoffCoefficient: policy?.backoffCoefficient ?? 2,
    maximumIntervalMs: msOptionalToNumber(policy?.maximumInterval) ?? initialIntervalMs * 100,
  };
}

function willNotBeRetried(err: unknown, info: Info): boolean {
  if (err instanceof CancelledFailure) return true;
  if (err instanceof ApplicationFailure && err.nonRetryable) return true;
  const type = err instanceof ApplicationFailure ? err.type : err instanceof Error ? err.name : undefined;
  return type !== undefined && type !== null && (info.retryPolicy?.nonRetryableErrorTypes ?? []).includes(type);
}

function decodeHint(headers: Record<string, unknown>): RetryHint | undefined {
  const payload = headers[RETRY_HINT_HEADER];
  if (!payload) return undefined;
  const hint = defaultPayloadConverter.fromPayload<RetryHint>(payload as never);
  return JITTER_MODES.includes(hint?.jitter) ? hint : undefined;
}

/**
 * The factory to register as `interceptors.activity` on the worker (see `sagaWorkerInterceptors`).
 */
export function createRetryInterceptor(options: RetryInterceptorOptions = {}): ActivityInterceptorsFactory {
  const random = options.random ?? Math.random;
  return (ctx: Context) => ({
    inbound: {
      async execute(input, next) {
        try {
          return await next(input);
        } catch (err) {
          const hint = decodeHint(input.headers);
          const storeHintMs = storeRetryAfterMs(err);
          if ((!hint && storeHintMs === undefined) || willNotBeRetried(err, ctx.info)) throw err;
          const delayMs = nextRetryDelayMs({
            schedule: scheduleOf(ctx.info),
            attempt: ctx.info.attempt,
            jitter: hint?.jitter ?? 'none',
            random: random(),
            storeHintMs,
          });
          throw ApplicationFailure.create({
            type: (err instanceof ApplicationFailure ? err.type : err instanceof Error ? err.name : undefined) ?? 'Error',
            message: err instanceof Error ? err.message : String(err),
            details: err instanceof ApplicationFailure ? (err.details ?? undefined) : undefined,
            cause: err instanceof Error ? err : undefined,
            nextRetryDelay: delayMs,
          });
        }
      },
    },
  });
}
