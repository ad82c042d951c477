/**
 * Retry-delay arithmetic shared by the workflow side (which declares a step's policy) and the
 * activity side (which turns a retryable error into a failure carrying `nextRetryDelay`).
 *
 * Temporal's own activity retries are plain exponential backoff without jitter: when a store
 * recovers from an outage, every upload that failed together retries together. We keep Temporal's
 * schedule (initial interval × coefficient^(attempt-1), capped at the maximum interval) and spread
 * each delay with the "full" or "equal" jitter of the AWS Architecture Blog's "Exponential Backoff
 * And Jitter". Pure functions, no I/O, safe to import from workflow code.
 */

/** How a computed backoff delay is spread. */
export type JitterMode = 'none' | 'full' | 'equal';

export const JITTER_MODES: readonly JitterMode[] = ['none', 'full', 'equal'];

/** Temporal's retry schedule, in milliseconds. */
export interface BackoffSchedule {
  /** Delay before the first retry. @default 1000 (Temporal's default) */
  initialIntervalMs: number;
  /** Growth factor per attempt. @default 2 (Temporal's default) */
  backoffCoefficient: number;
  /** Upper bound of a delay. @default 100 × initialIntervalMs (Temporal's default) */
  maximumIntervalMs: number;
}

/**
 * The un-jittered delay Temporal would wait after `attempt` failed (attempt starts at 1).
 */
export function exponentialDelayMs(schedule: BackoffSchedule, attempt: number): number {
  const exponent = Math.max(0, attempt - 1);
  const raw = schedule.initialIntervalMs * Math.pow(schedule.backoffCoefficient, exponent);
  return Math.min(raw, schedule.maximumIntervalMs);
}

/**
 * Applies jitter to a delay. `random` is a number in [0, 1) — injected so tests can pin it.
 * - `full`: uniform in [0, delay] — the widest spread, best against synchronized retries.
 * - `equal`: delay/2 + uniform in [0, delay/2] — keeps at least half of the backoff.
 */
export function jitterDelayMs(delayMs: number, mode: JitterMode, random: number): number {
  switch (mode) {
    case 'none':
      return delayMs;
    case 'full':
      return Math.round(delayMs * random);
    case 'equal':
      return Math.round(delayMs / 2 + (delayMs / 2) * random);
  }
}

/**
 * The delay before the next attempt: the jittered backoff, but never shorter than a hint the
 * store itself gave (HTTP `Retry-After`, S3 `SlowDown`), and never shorter than `floorMs`.
 */
export function nextRetryDelayMs(args: {
  schedule: BackoffSchedule;
  attempt: number;
  jitter: JitterMode;
  random: number;
  storeHintMs?: number | undefined;
  floorMs?: number;
}): number {
  const jittered = jitterDelayMs(exponentialDelayMs(args.schedule, args.attempt), args.jitter, args.random);
  return Math.max(jittered, args.storeHintMs ?? 0, args.floorMs ?? 1);
}
