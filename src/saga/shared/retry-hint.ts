/**
 * The small contract between the saga's workflow side and its activity side: the workflow puts the
 * step's jitter mode into an activity header; the activity interceptor reads it back and computes
 * the failure's `nextRetryDelay`. Pure data, importable from workflow code.
 */
import type { JitterMode } from './backoff';

/** Header under which the saga sends a step's retry hint with each activity it schedules. */
export const RETRY_HINT_HEADER = 'upload-saga-retry-hint';

/** What travels in {@link RETRY_HINT_HEADER}. */
export interface RetryHint {
  /** Jitter applied to the backoff of this activity's retries. */
  jitter: JitterMode;
}

/**
 * An error an activity throws may carry the store's own wish for a delay (HTTP `Retry-After`,
 * S3 `SlowDown`). The retry interceptor never retries sooner than this.
 */
export interface StoreRetryAfter {
  retryAfterMs?: number;
}

export function storeRetryAfterMs(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const value = (err as StoreRetryAfter).retryAfterMs;
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined;
}
