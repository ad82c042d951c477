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
 *
 * tus concatenation (src/upload/concatenation.ts) uses the same table:
 *
 *   partial: reserve-space → open-multipart → receive-parts → verify → store-partial → await-join → commit-quota → delete-staged
 *            ↳ release       ↳ abort + delete the staging prefix (the stored partial lies inside it)
 *   final:   open-multipart → join-partials → verify → merge (pivot) → settle-partials → notify
 *            ↳ abort
 *
 * A partial's merge (`store-partial`) is no pivot: until a final joins it, an expiry or a
 * cancellation still undoes it. The final reserves nothing: its partials commit their reservations.
 *
 * Which steps run as local activities (in the workflow task that needs them, run again when that
 * task is retried) depends on the run's patches: the tables below.
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
    // Given up after 2 minutes on a worker that died, as delete-staged (below) is.
    compensation: { ...uploadSteps['upload-parts'].compensation, timeouts: { startToClose: '2m' } },
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
      // A few ListParts pages (10,000 parts: 10), each cut after 60 s of silence by the S3 client: an
      // attempt on a worker that died is given up after 2 minutes, not 10 (the last PATCH and the
      // client wait for it; fault scenario 18 saw one wait out the 10). Timeouts are not replayed.
      timeouts: { startToClose: '2m' },
    },
  },
  merge: uploadSteps.merge,
  'store-partial': { action: uploadSteps.merge.action },
  'await-join': {
    action: {
      inWorkflow: 'a stored partial waits until a final claims it (Update) and merged (signal); a durable timer expires it while unclaimed',
    },
  },
  'join-partials': {
    action: {
      activity: 'joinPartials',
      retry: { ...OUTAGE_RIDING_RETRY, nonRetryableErrorTypes: NEVER_RETRIED },
      timeouts: { startToClose: '1h', heartbeat: '2m' },
    },
  },
  'settle-partials': {
    action: { inWorkflow: 'signals each partial that the final merged: it commits its reservation and deletes its stored object' },
  },
  'delete-staged': {
    action: {
      // cleanupUpload without an upload id only deletes what is under the staging prefix (orphans of gateways that died).
      activity: 'cleanupUpload',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '2m', jitter: 'full' },
      // A listing and a few deletes and aborts, each cut after 60 s of silence by the S3 client: an
      // attempt on a worker that died is given up after 2 minutes, not 10 (fault scenario 18 saw an
      // upload wait out the 10 after its merge). Timeouts are not replayed.
      timeouts: { startToClose: '2m' },
    },
  },
  'commit-quota': uploadStepsWithLocalShortSteps['commit-quota'],
  notify: uploadStepsWithLocalShortSteps.notify,
});

/** `step` with its action (not its compensation) run as a local activity. */
function withLocalAction<S extends { action: object }>(step: S): S {
  return { ...step, action: { ...step.action, local: true } };
}

/**
 * The same saga with every step a tus upload waits for as a local activity: open-multipart (so
 * reserve-space and open-multipart answer creation in one workflow task), and verify, merge and
 * delete-staged (so the last PATCH's record, the merge and the end of the saga take one workflow
 * task instead of a trip through the task queue per step). Each of them is one or a few S3 calls;
 * a worker that dies during one is noticed by the workflow task's timeout, and the task runs again
 * elsewhere. Compensations stay regular activities: they may outlast a storage outage.
 * Chosen by the patch `gateway-local-steps` (src/patches.ts).
 */
export const gatewayUploadStepsWithLocalSteps: typeof gatewayUploadSteps = {
  ...gatewayUploadSteps,
  'open-multipart': withLocalAction(gatewayUploadSteps['open-multipart']),
  verify: withLocalAction(gatewayUploadSteps.verify),
  merge: withLocalAction(gatewayUploadSteps.merge),
  'delete-staged': withLocalAction(gatewayUploadSteps['delete-staged']),
};

/**
 * Creation's step local again, every step after the bytes regular: open-multipart runs as a local
 * activity, so reserve-space and open-multipart answer creation in the workflow task the start
 * runs in. A retried task runs it again; it aborts the part-less uploads an earlier create of its
 * step left on the key since the workflow started (`workflowStartedMs`), and no gateway can have
 * sent a part to one (an upload's id reaches a gateway only with the task's completion).
 *
 * Why not verify, merge and delete-staged (as under `gateway-local-steps`): local activities run
 * again when their workflow task is retried. A verify re-run after its merge finds no upload and
 * compensated a stored object; with the merge and notify in one task, a retried task sent
 * upload.completed twice with different contents (the merge's re-run reports `alreadyCompleted`,
 * the event a new `occurredAt`), which a receiver cannot de-duplicate (fault scenario 18 found
 * both). Chosen by the patch `gateway-local-open-multipart` (presigned uploads, concatenation
 * finals, and tus runs started before `gateway-local-verify-merge`).
 */
export const gatewayUploadStepsWithLocalOpenMultipart: typeof gatewayUploadSteps = {
  ...gatewayUploadSteps,
  'open-multipart': withLocalAction(gatewayUploadSteps['open-multipart']),
};

/**
 * A tus upload's that receives bytes (not a concatenation final's): open-multipart, verify and
 * merge (a partial's store-partial) local, so the last PATCH's record, verify and merge take one
 * workflow task (the finishing PATCH answers at the merge, a partial's once stored: the record
 * itself answers then, see the workflow). Safe when the
 * task is retried and runs them again:
 * - verify, finding its multipart upload gone (`NoSuchUpload`), accepts the object at the key when
 *   it is the one its merge completed — stamped with the run's workflow id, of the recorded length,
 *   with parts whose checksums fold into the recorded fingerprint — and answers what it answered
 *   first; any other object still fails it (src/activities/gateway-upload.ts);
 * - merge and store-partial, finding the upload gone, accept the object whose ETag verify
 *   predicted (their re-run's `alreadyCompleted` is in no result or event);
 * - nothing after them in their task has a side effect: delete-staged stays a regular activity
 *   between the merge and commit-quota/notify, so notify never shares a workflow task with the
 *   merge (`upload.completed` is sent once, from a recorded merge); a stored partial waits for a
 *   final, whose claim is accepted only once the partial's task completed.
 * Chosen by the patch `gateway-local-verify-merge`.
 */
export const gatewayUploadStepsWithLocalVerifyMerge: typeof gatewayUploadSteps = {
  ...gatewayUploadStepsWithLocalOpenMultipart,
  verify: withLocalAction(gatewayUploadSteps.verify),
  merge: withLocalAction(gatewayUploadSteps.merge),
  'store-partial': withLocalAction(gatewayUploadSteps['store-partial']),
};
