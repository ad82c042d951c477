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

/**
 * The same saga with its short steps (inspect-source, reserve-space and its release,
 * commit-quota, notify) as local activities: a small upload makes four fewer trips through the
 * task queue and writes a marker instead of three events per step. The long steps (upload-parts,
 * verify, merge) stay regular activities: they heartbeat or may take minutes.
 *
 * Introduced behind the patch {@link LOCAL_SHORT_STEPS_PATCH}: uploads started before it keep
 * the regular activities when replayed (test/histories/*-before-local-short-steps.json prove it).
 */
export const LOCAL_SHORT_STEPS_PATCH = 'local-short-steps';

function asLocal<S extends { action: object; compensation?: object }>(step: S): S {
  return {
    ...step,
    action: { ...step.action, local: true },
    ...(step.compensation ? { compensation: { ...step.compensation, local: true } } : {}),
  };
}

export const uploadStepsWithLocalShortSteps: typeof uploadSteps = {
  ...uploadSteps,
  'inspect-source': asLocal(uploadSteps['inspect-source']),
  'reserve-space': asLocal(uploadSteps['reserve-space']),
  'commit-quota': asLocal(uploadSteps['commit-quota']),
  notify: asLocal(uploadSteps.notify),
};

/**
 * The steps that talk to the quota ledger — reserve-space (and its release) and commit-quota —
 * back to regular activities; inspect-source and notify stay local.
 *
 * Why: a local activity keeps its workflow task, and with it one of the worker's workflow-task
 * slots, until it returns; these steps wait for the tenant's ledger, which is a workflow served
 * by the same workers. Invariant: a step that waits for the ledger must never hold a
 * workflow-task slot while it waits, or enough concurrent uploads of one tenant (as many as the
 * worker has slots, 40 by default) starve the ledger's own workflow task and every reservation
 * times out. Regular activities wait in activity slots instead, and the ledger keeps its turn.
 *
 * Introduced behind the patch {@link QUOTA_STEPS_AS_ACTIVITIES_PATCH}, checked only when
 * {@link LOCAL_SHORT_STEPS_PATCH} is: runs started before it replay with the steps they started with.
 */
export const QUOTA_STEPS_AS_ACTIVITIES_PATCH = 'quota-steps-as-activities';

export const uploadStepsWithLocalInspectAndNotify: typeof uploadSteps = {
  ...uploadSteps,
  'inspect-source': asLocal(uploadSteps['inspect-source']),
  notify: asLocal(uploadSteps.notify),
};

/**
 * The quota steps as local activities (they cannot starve the ledger, see below), and fewer
 * search-attribute updates.
 *
 * Why the steps can be local: commit-quota and the release only send a signal to the
 * ledger (they never wait for its workflow task), and reserve-space waits for it only while fewer
 * than `maxWaitingReservations` reservations of the worker wait (half its workflow-task slots by
 * default); beyond that it is refused at once with the retryable `QuotaLedgerBusy`, and because
 * its `localRetryThreshold` is 0 every retry waits on a workflow timer, with the slot free. So the
 * ledger's workflow task always finds a slot, and a small upload saves two trips through the task
 * queue and two workflow tasks (measured: README, "Measured").
 *
 * Why fewer search-attribute updates: each is a command, an event and a visibility write, and the
 * phase of a step that starts and ends inside one workflow task (inspect-source, reserve-space,
 * commit-quota) is overwritten before anyone can see it. Those phases, verify when it only lists
 * the parts (no re-read of the source), the size and `done` are folded into the next update that
 * matters: when upload-parts, merge, notify, a re-reading verify or compensation starts, and the
 * outcome. Current details and the progress query still name every step as it runs. The run asks
 * only this patch, not the older ones, and tells the saga that its pivot is shielded without
 * asking the engine's patch: each patch a new run asks is a marker and a search-attribute update.
 *
 * Introduced behind the patch {@link LOCAL_QUOTA_STEPS_FOLDED_PHASES_PATCH}, checked only when
 * {@link LOCAL_SHORT_STEPS_PATCH} is and before {@link QUOTA_STEPS_AS_ACTIVITIES_PATCH}, so runs
 * started under either earlier patch replay as they ran.
 */
export const LOCAL_QUOTA_STEPS_FOLDED_PHASES_PATCH = 'local-quota-steps-folded-phases';

/** The phases whose search-attribute update waits for the next one (see above). */
export const FOLDED_PHASES: ReadonlySet<string> = new Set(['inspect-source', 'reserve-space', 'commit-quota', 'done']);

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
 * Verify as a local activity when it only lists the parts: no expected checksum to compare and no
 * re-read of the source, so the step is one or a few ListParts calls (1,000 parts a page) and its
 * result is decided from the fingerprints upload-parts recorded.
 *
 * Why: a small upload then goes from upload-parts to merge in one workflow task instead of two,
 * without a trip of verify through the task queue (measured: README, "Measured"). A verify that
 * re-reads the source (`verify: "reread"`, an expected SHA-256) may take as long as the upload and
 * heartbeats, so it stays a regular activity.
 *
 * Introduced behind the patch {@link LOCAL_LISTING_VERIFY_PATCH}, asked before
 * {@link LOCAL_QUOTA_STEPS_FOLDED_PHASES_PATCH}; runs under it fold phases like that patch.
 */
export const LOCAL_LISTING_VERIFY_PATCH = 'local-listing-verify';

/** Whether verify only lists the parts (see {@link LOCAL_LISTING_VERIFY_PATCH}); safe on an unchecked request. */
export function verifyOnlyLists(request: { verify?: string; expectedChecksum?: unknown } | undefined): boolean {
  return request?.verify !== 'reread' && request?.expectedChecksum === undefined;
}

export const uploadStepsWithLocalListingVerify: typeof uploadSteps = {
  ...uploadStepsWithLocalQuotaSteps,
  // A local activity cannot heartbeat: the engine drops verify's heartbeat timeout. A stuck
  // ListParts is cut by the S3 client's idle timeout (S3_IDLE_TIMEOUT_MS) and retried.
  verify: asLocal(uploadStepsWithLocalQuotaSteps.verify),
};
