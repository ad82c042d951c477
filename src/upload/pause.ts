/**
 * Pausing and resuming a running upload, and waiting for quota: the messages a workflow answers
 * and the state it reports. Pure definitions, imported by workflow code, the client and activities.
 *
 * Pause and resume are Updates, so the caller learns that they took effect (or why not): a pause
 * returns once the parts in flight have finished and nothing new runs. The `pauseState` query is
 * what upload-parts asks while it runs, to stop starting parts once the upload is paused.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** Where a pausable workflow stands. */
export interface PauseState {
  /** A pause was accepted and no resume since. */
  paused: boolean;
  /**
   * Paused and nothing of the upload runs any more (parts in flight finished). False while a
   * pause waits for them, or while the upload is not paused.
   */
  held: boolean;
  /** When the current pause was accepted (workflow time, ISO), while paused. */
  since?: string;
  /** Who or why, as the pause request said it, while paused. */
  reason?: string;
  /** Gateway uploads, while paused: whether the upload's expiry clock runs or stops during this pause. */
  expiry?: PauseExpiry;
}

/**
 * What a pause does to a gateway upload's expiry clock. `runs`: the upload still expires at its
 * `expiresAt`, paused or not (it is then compensated as expired, its reservation released).
 * `stops`: the clock stops while paused; at resume the paused time is added to `expiresAt`. The
 * pauses of an upload with the clock stopped last at most its `maxPauseMs` in all (the gateway's
 * `UPLOAD_SAGA_GATEWAY_MAX_PAUSE` at its creation); past it the upload expires as if its clock had run out.
 */
export type PauseExpiry = 'runs' | 'stops';

/** Every {@link PauseExpiry}. */
export const PAUSE_EXPIRY_VALUES: readonly PauseExpiry[] = ['runs', 'stops'];

/** The expiry clock of a gateway upload's pause when neither the request nor the gateway's config says. */
export const DEFAULT_PAUSE_EXPIRY: PauseExpiry = 'runs';

/** The longest a gateway upload's pause with a stopped expiry clock lasts when the gateway's config does not say: 7 days. */
export const DEFAULT_MAX_PAUSE_MS = 7 * 86_400_000;

/** The largest maximum pause the gateway accepts: 365 days. */
export const MAX_PAUSE_LIMIT_MS = 365 * 86_400_000;

/** A maximum pause as it is configured: "7d", "90m", "1500ms" (the largest unit that divides it). */
export function formatPauseDuration(ms: number): string {
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  for (const [unit, size] of units) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** Why `expiry` is not a {@link PauseExpiry} (undefined passes: the default applies), or undefined. */
export function pauseExpiryProblem(expiry: unknown): string | undefined {
  if (expiry === undefined || (PAUSE_EXPIRY_VALUES as readonly unknown[]).includes(expiry)) return undefined;
  return `expiry must be one of ${PAUSE_EXPIRY_VALUES.map((v) => `"${v}"`).join(', ')} (whether the upload's expiry clock runs or stops while paused), got ${JSON.stringify(expiry)}`;
}

/** What a pause request may say. */
export interface PauseRequest {
  /** A few words on who paused it and why, shown in the Web UI's current details. At most 200 characters. */
  reason?: string;
  /**
   * Gateway uploads only: whether the upload's expiry clock runs or stops while paused (see
   * {@link PauseExpiry}). Refused by uploads without an expiry (application uploads, batches).
   * @default the gateway's `UPLOAD_SAGA_GATEWAY_PAUSE_EXPIRY` when the upload was created, else 'runs'
   */
  expiry?: PauseExpiry;
}

/** Pauses the upload: answers once parts in flight finished. Refused once the upload passed its point of no return. */
export const pauseUpdate = defineUpdate<PauseState, [PauseRequest]>('pause');
/** Resumes a paused upload. Refused when it is not paused. */
export const resumeUpdate = defineUpdate<PauseState, []>('resume');
/**
 * Pauses or resumes without an answer: for a parent workflow (a batch), which cannot send Updates
 * to its children. A request the upload cannot follow (pause after the pivot, resume while running)
 * is ignored.
 */
export const setPausedSignal = defineSignal<[{ paused: boolean; reason?: string }]>('setPaused');
/** The pause state now. */
export const pauseStateQuery = defineQuery<PauseState>('pauseState');

/** Failure type of a pause or resume the workflow refuses (its message says why). */
export const PAUSE_REFUSED = 'PauseRefused';

/** The longest pause reason accepted. */
export const MAX_PAUSE_REASON = 200;

/**
 * Sent by a tenant's quota ledger to an upload waiting for quota when space was given back (a
 * reservation released or lowered): the upload tries to reserve again at once instead of at its
 * next poll.
 */
export const quotaFreedSignal = defineSignal('quotaFreed');

/** Failure type of an upload that waited for quota until its deadline. Non-retryable. */
export const QUOTA_WAIT_EXPIRED = 'QuotaWaitExpired';

/** How often an upload waiting for quota tries again without being woken (a raised quota is not signalled). */
export const QUOTA_WAIT_POLL_MS = 60_000;
