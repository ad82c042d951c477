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
}

/** What a pause request may say. */
export interface PauseRequest {
  /** A few words on who paused it and why, shown in the Web UI's current details. At most 200 characters. */
  reason?: string;
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
