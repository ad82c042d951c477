/**
 * The upload saga, declared in one place: for each step, the activity that does it, how it is
 * retried (and what is never retried), how long it may take, and how it is undone.
 *
 *   inspect-source → reserve-space → upload-parts → verify → merge (pivot) → commit-quota → notify
 *                    ↳ release        ↳ abort + delete staged
 *
 * Compensations retry without an attempt limit (with a long backoff cap): undoing must outlast
 * a store outage, otherwise bytes or reservations would be left behind. Forward steps after the
 * pivot are retried, never undone.
 */
import type { UploadActivities } from '../activities';
import { defineSaga } from '../saga/workflow';
import { PERMANENT_UPLOAD_FAILURES } from '../upload/errors';

/** Store errors that retrying cannot fix (see s3/classify-error.ts). */
export const PERMANENT_S3_FAILURES = [
  'S3.AccessDenied',
  'S3.NoSuchBucket',
  'S3.InvalidPart',
  'S3.InvalidPartOrder',
  'S3.EntityTooSmall',
  'S3.EntityTooLarge',
  'S3.BadDigest',
  'S3.InvalidDigest',
  'S3.InvalidRequest',
  'S3.InvalidArgument',
  'S3.InvalidBucketName',
  'S3.KeyTooLongError',
  'S3.XAmzContentChecksumMismatch',
  // The body's SHA-256 (signed over plain HTTP) does not match: a part corrupted in flight.
  'S3.XAmzContentSHA256Mismatch',
  'S3.InvalidAccessKeyId',
  'S3.SignatureDoesNotMatch',
];

const NEVER_RETRIED = [...PERMANENT_UPLOAD_FAILURES, ...PERMANENT_S3_FAILURES];

/** Undo must outlast an outage: unlimited attempts, backoff up to 2 minutes, jittered. */
const compensationRetry = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '2m',
  jitter: 'full',
} as const;

/**
 * Steps that must outlast a storage outage: equal jitter (at least half of each backoff) keeps the
 * 8 attempts spread over ≥ 91 s, so an outage shorter than that is always ridden out; full jitter
 * could, rarely, spend them all within 30 s.
 */
export const OUTAGE_RIDING_RETRY = {
  initialInterval: '2s',
  backoffCoefficient: 2,
  maximumInterval: '1m',
  maximumAttempts: 8,
  jitter: 'equal',
  nonRetryableErrorTypes: NEVER_RETRIED,
} as const;

export const uploadSteps = defineSaga<UploadActivities>()({
  'inspect-source': {
    action: {
      activity: 'inspectSource',
      retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5, jitter: 'full', nonRetryableErrorTypes: NEVER_RETRIED },
      timeouts: { startToClose: '1m' },
    },
  },
  'reserve-space': {
    action: {
      activity: 'reserveSpace',
      retry: {
        initialInterval: '1s',
        maximumInterval: '30s',
        maximumAttempts: 10,
        jitter: 'full',
        nonRetryableErrorTypes: ['QuotaExceeded', 'ReservationSettled'],
      },
      timeouts: { startToClose: '30s' },
    },
    compensation: { activity: 'releaseReservation', retry: compensationRetry, timeouts: { startToClose: '30s' } },
  },
  'upload-parts': {
    action: {
      activity: 'uploadParts',
      // A retry resumes from the parts S3 already has, so retrying is cheap.
      retry: OUTAGE_RIDING_RETRY,
      // The heartbeat timeout notices a dead worker; startToClose only bounds a stuck batch.
      timeouts: { startToClose: '12h', heartbeat: '30s' },
      cancellation: 'wait',
    },
    compensation: { activity: 'cleanupUpload', retry: compensationRetry, timeouts: { startToClose: '10m' } },
  },
  verify: {
    action: {
      activity: 'verifyUpload',
      // The same outage budget as upload-parts (≥ 91 s): an outage that begins during verify is
      // ridden out too, instead of failing an upload whose bytes are all in S3.
      retry: OUTAGE_RIDING_RETRY,
      timeouts: { startToClose: '12h', heartbeat: '1m' },
    },
  },
  merge: {
    action: {
      activity: 'completeUpload',
      // Equal jitter, as for upload-parts: ten attempts that cannot all bunch up in the first seconds.
      retry: {
        initialInterval: '2s',
        backoffCoefficient: 2,
        maximumInterval: '1m',
        maximumAttempts: 10,
        jitter: 'equal',
        nonRetryableErrorTypes: NEVER_RETRIED,
      },
      // completeUpload heartbeats while S3 merges: a dead worker is noticed in 30 s, not 10 minutes.
      timeouts: { startToClose: '10m', heartbeat: '30s' },
    },
    pivot: true,
  },
  'commit-quota': {
    action: {
      activity: 'commitReservation',
      retry: { initialInterval: '1s', maximumInterval: '1m', jitter: 'full' },
      timeouts: { startToClose: '30s' },
    },
  },
  notify: {
    action: {
      activity: 'notify',
      retry: {
        initialInterval: '5s',
        backoffCoefficient: 2,
        maximumInterval: '10m',
        maximumAttempts: 12,
        jitter: 'full',
        nonRetryableErrorTypes: ['WebhookRejected'],
      },
      timeouts: { startToClose: '30s' },
    },
  },
});

/** `step` with its action and its compensation run as local activities (`local: true`). */
export function asLocal<S extends { action: object; compensation?: object }>(step: S): S {
  return {
    ...step,
    action: { ...step.action, local: true },
    ...(step.compensation ? { compensation: { ...step.compensation, local: true } } : {}),
  };
}

/**
 * The same saga with its short steps (inspect-source, reserve-space and its release,
 * commit-quota, notify) as local activities; the long steps (upload-parts, verify, merge) stay
 * regular activities because they heartbeat or may take minutes. Chosen by the patch
 * `local-short-steps` (src/patches.ts).
 */
export const uploadStepsWithLocalShortSteps: typeof uploadSteps = {
  ...uploadSteps,
  'inspect-source': asLocal(uploadSteps['inspect-source']),
  'reserve-space': asLocal(uploadSteps['reserve-space']),
  'commit-quota': asLocal(uploadSteps['commit-quota']),
  notify: asLocal(uploadSteps.notify),
};

/**
 * The steps that talk to the quota ledger (reserve-space and its release, commit-quota) as regular
 * activities; inspect-source and notify stay local. Invariant: a reservation waiting for the
 * tenant's ledger holds an activity slot, never a workflow-task slot, so the ledger's own
 * workflow task always gets to run. Chosen by the patch `quota-steps-as-activities`.
 */
export const uploadStepsWithLocalInspectAndNotify: typeof uploadSteps = {
  ...uploadSteps,
  'inspect-source': asLocal(uploadSteps['inspect-source']),
  notify: asLocal(uploadSteps.notify),
};

/**
 * The quota steps local again, and fewer search-attribute updates. Chosen by the patch
 * `local-quota-steps-folded-phases`.
 *
 * Local quota steps cannot starve the ledger: commit-quota and the release only signal it, and
 * reserve-space waits for its workflow task only while fewer than `maxWaitingReservations`
 * reservations of the worker wait (half its workflow-task slots by default); beyond that it is
 * refused at once with the retryable `QuotaLedgerBusy`, and with `localRetryThreshold` 0 every
 * retry waits on a workflow timer with the slot free.
 *
 * Folded phases: the phase of a step that starts and ends inside one workflow task
 * (inspect-source, reserve-space, commit-quota), verify when it only lists the parts, the size and
 * `done` are written with the next search-attribute update that matters (upload-parts, merge,
 * notify, a re-reading verify, compensation, the outcome); so are the fast path's put-object and
 * verify-object, local steps of one part. Current details and the progress query
 * still name every step as it runs. A run under this patch does not ask the older ones, and tells
 * the saga that its pivot is shielded without asking the engine's patch.
 */
/** The phases whose search-attribute update waits for the next one (see above). */
export const FOLDED_PHASES: ReadonlySet<string> = new Set([
  'inspect-source',
  'reserve-space',
  'put-object',
  'verify-object',
  'commit-quota',
  'done',
]);

/** Whether the search-attribute update of `phase` waits for the next one (see above). */
export function phaseIsFolded(phase: string, request: { verify?: string; expectedChecksum?: { algorithm: string } } | undefined): boolean {
  if (FOLDED_PHASES.has(phase)) return true;
  // Verify by checksums is one listing of the parts: as short as the local steps.
  return phase === 'verify' && request?.verify !== 'reread' && request?.expectedChecksum?.algorithm !== 'SHA256';
}

function retryThroughTimers<S extends { action: object }>(step: S): S {
  return { ...step, action: { ...step.action, localRetryThreshold: '0s' } };
}

export const uploadStepsWithLocalQuotaSteps: typeof uploadSteps = {
  ...uploadStepsWithLocalShortSteps,
  'reserve-space': retryThroughTimers(uploadStepsWithLocalShortSteps['reserve-space']),
};

/**
 * Verify as a local activity when it only lists the parts (no expected checksum, no re-read of the
 * source): one or a few ListParts calls, decided from the fingerprints upload-parts recorded. A
 * verify that re-reads the source may take as long as the upload and heartbeats, so it stays a
 * regular activity. Chosen by the patch `local-listing-verify`, which implies folded phases.
 */
/** Whether verify only lists the parts (see {@link uploadStepsWithLocalListingVerify}); safe on an unchecked request. */
export function verifyOnlyLists(request: { verify?: string; expectedChecksum?: unknown } | undefined): boolean {
  return request?.verify !== 'reread' && request?.expectedChecksum === undefined;
}

export const uploadStepsWithLocalListingVerify: typeof uploadSteps = {
  ...uploadStepsWithLocalQuotaSteps,
  // A local activity cannot heartbeat: the engine drops verify's heartbeat timeout. A stuck
  // ListParts is cut by the S3 client's idle timeout (S3_IDLE_TIMEOUT_MS) and retried.
  verify: asLocal(uploadStepsWithLocalQuotaSteps.verify),
};

/**
 * The small-file fast path's own steps (see upload/one-put.ts), merged into every table: a run
 * only reaches them under the patch `small-file-one-put`, when the source fits in one part.
 *
 *   inspect-source → reserve-space → put-object → verify-object (pivot) → commit-quota → notify
 *                    ↳ release        ↳ delete what it wrote
 *
 * Both are local activities: one PutObject of at most one part, one HeadObject. With the other
 * local steps and the workflow's timer after put-object, a fast-path upload that meets no failure
 * is two workflow tasks. Retries wait on
 * workflow timers (the slot is free meanwhile). put-object is waited for when cancelled, so its
 * compensation knows whether the PutObject landed. verify-object is the pivot: once the stored
 * version is proven, nothing is undone, as after a merge.
 */
export const onePutSteps = defineSaga<UploadActivities>()({
  'put-object': {
    action: {
      activity: 'putObject',
      retry: OUTAGE_RIDING_RETRY,
      timeouts: { startToClose: '2m' },
      cancellation: 'wait',
      local: true,
      localRetryThreshold: '0s',
    },
    compensation: {
      activity: 'deleteObject',
      retry: compensationRetry,
      timeouts: { startToClose: '1m' },
      local: true,
      localRetryThreshold: '0s',
    },
  },
  'verify-object': {
    action: {
      activity: 'verifyObject',
      retry: OUTAGE_RIDING_RETRY,
      timeouts: { startToClose: '2m' },
      local: true,
      localRetryThreshold: '0s',
    },
    pivot: true,
  },
});

/** Every step either path of the upload saga may run. */
export type UploadSagaSteps = typeof uploadSteps & typeof onePutSteps;

/** `table` with the fast path's steps added (runs that never reach them replay unchanged). */
export function withOnePutSteps(table: typeof uploadSteps): UploadSagaSteps {
  return { ...table, ...onePutSteps };
}
