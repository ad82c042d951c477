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

/** Store errors that retrying cannot fix (see activities/s3/classify-error.ts). */
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
      retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10, jitter: 'full', nonRetryableErrorTypes: ['QuotaExceeded', 'ReservationSettled'] },
      timeouts: { startToClose: '30s' },
    },
    compensation: { activity: 'releaseReservation', retry: compensationRetry, timeouts: { startToClose: '30s' } },
  },
  'upload-parts': {
    action: {
      activity: 'uploadParts',
      // A retry resumes from the parts S3 already has, so retrying is cheap.
      retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 8, jitter: 'full', nonRetryableErrorTypes: NEVER_RETRIED },
      // The heartbeat timeout notices a dead worker; startToClose only bounds a stuck batch.
      timeouts: { startToClose: '12h', heartbeat: '30s' },
      cancellation: 'wait',
    },
    compensation: { activity: 'cleanupUpload', retry: compensationRetry, timeouts: { startToClose: '10m' } },
  },
  verify: {
    action: {
      activity: 'verifyUpload',
      retry: { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: 5, jitter: 'full', nonRetryableErrorTypes: NEVER_RETRIED },
      timeouts: { startToClose: '12h', heartbeat: '1m' },
    },
  },
  merge: {
    action: {
      activity: 'completeUpload',
      retry: { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: 10, jitter: 'full', nonRetryableErrorTypes: NEVER_RETRIED },
      timeouts: { startToClose: '10m' },
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
      retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '10m', maximumAttempts: 12, jitter: 'full', nonRetryableErrorTypes: ['WebhookRejected'] },
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
