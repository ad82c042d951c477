/**
 * The gateway-upload saga, declared in one place, reusing the upload saga's steps where the work
 * is the same (reserve, merge, commit, notify; cleanup as the compensation):
 *
 *   reserve-space → open-multipart → receive-parts → verify → merge (pivot) → delete-staged → commit-quota → notify
 *   ↳ release       ↳ abort + delete staged parts
 *
 * `receive-parts` is not an activity: the client sends the bytes, the gateway records each chunk
 * with an Update, and the workflow waits (durable expiry timer included). When the length is not
 * known at creation, a tus upload (creation-defer-length) reserves the tenant's maximum and lowers
 * it once a PATCH declares the length; a presigned upload runs reserve-space after verify, with
 * the verified size.
 */
import { WIRE_NAMES } from '../upload/wire-names';
import type { UploadActivities } from '../activities';
import { defineSaga } from '../saga/workflow';
import { OUTAGE_RIDING_RETRY, PERMANENT_S3_FAILURES, uploadSteps, uploadStepsWithLocalShortSteps } from './upload-steps';
import { PERMANENT_UPLOAD_FAILURES } from '../upload/errors';
import { GatewayUploadFailureType } from '../upload/gateway-upload';

const NEVER_RETRIED = [...PERMANENT_UPLOAD_FAILURES, ...PERMANENT_S3_FAILURES, ...Object.values(GatewayUploadFailureType)];

export const gatewayUploadSteps = defineSaga<UploadActivities>()({
  'reserve-space': uploadStepsWithLocalShortSteps['reserve-space'],
  'open-multipart': {
    action: {
      activity: 'openMultipartUpload',
      retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10, jitter: 'full', nonRetryableErrorTypes: NEVER_RETRIED },
      timeouts: { startToClose: '1m' },
    },
    // Abort (confirmed by listing) and delete the staged segments: leave nothing outside an object.
    compensation: uploadSteps['upload-parts'].compensation,
  },
  'receive-parts': {
    action: {
      inWorkflow:
        'the client sends parts through the gateway (Updates) until the length is reached or completion is requested; a durable timer expires the upload',
    },
  },
  verify: {
    action: {
      activity: WIRE_NAMES.verifyGatewayUpload,
      // Rides out a storage outage like the worker-side verify; the client's own failures are never retried.
      retry: { ...OUTAGE_RIDING_RETRY, nonRetryableErrorTypes: NEVER_RETRIED },
      timeouts: { startToClose: '10m' },
    },
  },
  merge: uploadSteps.merge,
  'delete-staged': {
    action: {
      // cleanupUpload without an upload id only deletes what is under the staging prefix (orphans of gateways that died).
      activity: 'cleanupUpload',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '2m', jitter: 'full' },
      timeouts: { startToClose: '10m' },
    },
  },
  'commit-quota': uploadStepsWithLocalShortSteps['commit-quota'],
  notify: uploadStepsWithLocalShortSteps.notify,
});
