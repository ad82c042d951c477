/**
 * Every `patched()` id that workflow code of this package asks, in one registry: the saga engine's
 * and the upload workflow's.
 *
 * A patch id is recorded in the history of every run that asks it, so it is a contract with
 * running workflows and with the recorded histories under test/histories: an id is never renamed,
 * reused or removed while a run that recorded it may still be replayed. Add a patch here (never
 * inline), with the one-line invariant it guards; why it was introduced and what runs before it
 * did is told in docs/explanation/workflow-patches.md.
 *
 * Pure data: imported by workflow code, so nothing here may touch Node or I/O.
 */

/** One entry of {@link WORKFLOW_PATCHES}. */
export interface WorkflowPatch {
  /** The id recorded by `patched()`. Never changed. */
  readonly id: string;
  /** The day the patch entered main (ISO date). */
  readonly since: string;
  /** The workflow code that asks it. */
  readonly askedBy: 'saga engine' | 'uploadWorkflow' | 'gatewayUploadWorkflow' | 'batchWorkflow';
  /** What runs that recorded it do differently from runs that did not, in one line. */
  readonly guards: string;
}

/** The registry: every patch id asked anywhere in this package's workflow code. */
export const WORKFLOW_PATCHES = {
  localShortSteps: {
    id: 'local-short-steps',
    since: '2026-11-23',
    askedBy: 'uploadWorkflow',
    guards:
      'inspect-source, reserve-space, commit-quota and notify run as local activities; earlier runs replay them as regular activities.',
  },
  sagaPivotNotCancellable: {
    id: 'saga-pivot-not-cancellable',
    since: '2026-12-04',
    askedBy: 'saga engine',
    guards: 'the pivot step runs in a non-cancellable scope once started; earlier runs replay it cancellable.',
  },
  quotaStepsAsActivities: {
    id: 'quota-steps-as-activities',
    since: '2026-12-04',
    askedBy: 'uploadWorkflow',
    guards:
      'under local-short-steps, reserve-space and commit-quota are regular activities again, so waiting reservations hold no workflow-task slot.',
  },
  localQuotaStepsFoldedPhases: {
    id: 'local-quota-steps-folded-phases',
    since: '2026-12-04',
    askedBy: 'uploadWorkflow',
    guards:
      'the quota steps are local with reserve-space retried through timers, short phases are folded into the next search-attribute update, and the pivot is shielded without asking the engine.',
  },
  localListingVerify: {
    id: 'local-listing-verify',
    since: '2026-12-04',
    askedBy: 'uploadWorkflow',
    guards: 'a verify that only lists the parts runs as a local activity (implies the folded-phases behaviour).',
  },
  sagaCancelledBeforePivot: {
    id: 'saga-cancelled-before-pivot',
    since: '2026-12-04',
    askedBy: 'saga engine',
    guards: 'a saga whose cancellation is seen before its pivot starts compensates instead of starting the pivot.',
  },
  tusDeferredLength: {
    id: 'tus-deferred-length',
    since: '2026-12-06',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'a tus upload created without a length reserves the tenant maximum before open-multipart and shrinks it to the declared, then the verified size; no earlier run had such an upload.',
  },
  smallFileOnePut: {
    id: 'small-file-one-put',
    since: '2026-12-06',
    askedBy: 'uploadWorkflow',
    guards:
      'a streamed source of one part (at most 64 MiB) is stored with one PutObject (put-object, verify-object) instead of a multipart upload (implies the local-listing-verify behaviour).',
  },
  pauseResume: {
    id: 'pause-resume',
    since: '2026-12-06',
    askedBy: 'uploadWorkflow',
    guards:
      'asked when a paused upload first holds before its next step or batch (upload-parts stopped starting parts) until resumed; no earlier run was ever paused.',
  },
  quotaWait: {
    id: 'quota-wait',
    since: '2026-12-06',
    askedBy: 'uploadWorkflow',
    guards:
      'asked when a reservation of an upload with `onQuota: "wait"` is refused: it waits (woken by the ledger, or polling) and reserves again until its deadline; no earlier run waited.',
  },
  tusConcatenation: {
    id: 'tus-concatenation',
    since: '2026-12-06',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'a tus upload created with Upload-Concat stores its bytes as a partial and waits for a final, or joins partials as a final; no earlier run had such an upload.',
  },
  gatewayLocalSteps: {
    id: 'gateway-local-steps',
    since: '2026-12-06',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'open-multipart, verify, merge and delete-staged of a gateway upload run as local activities; earlier runs replay them as regular activities.',
  },
  batchFinishNotCancellable: {
    id: 'batch-finish-not-cancellable',
    since: '2026-12-06',
    askedBy: 'batchWorkflow',
    guards:
      'a batch cancelled before finish-batch undoes itself even if its chunks completed, and finish-batch (the pivot: an atomic batch commits there) runs non-cancellable; earlier runs replay both as before.',
  },
  batchListsFailedChunkFiles: {
    id: 'batch-lists-failed-chunk-files',
    since: '2026-12-06',
    askedBy: 'batchWorkflow',
    guards:
      "asked when an independent batch stops on a chunk that failed for good: each file of that chunk (undone) is listed as failed with the chunk's cause; earlier runs listed none of them.",
  },
  batchStoppedDeletesManifests: {
    id: 'batch-stopped-deletes-manifests',
    since: '2026-12-06',
    askedBy: 'batchWorkflow',
    guards:
      'an independent batch that stops (a chunk failed for good, or cancelled) deletes the manifests of its finished chunks after its undo; earlier runs left them under the reserved prefix.',
  },
  batchPause: {
    id: 'batch-pause',
    since: '2026-12-06',
    askedBy: 'batchWorkflow',
    guards:
      'asked when a paused batch first stops starting pages: it lets its chunks in flight finish, signals its running children to pause, holds until resumed and signals them to resume; no earlier run was ever paused.',
  },
  gatewayLocalStepsWithdrawn: {
    id: 'gateway-local-steps-withdrawn',
    since: '2026-12-07',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'asked before gateway-local-steps: a run that records it runs every gateway step as a regular activity again (a local verify re-run after its merge had completed the multipart upload failed with NoSuchUpload and compensated a stored object); runs that recorded gateway-local-steps replay their local steps.',
  },
  gatewayLocalOpenMultipart: {
    id: 'gateway-local-open-multipart',
    since: '2026-12-07',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'asked before gateway-local-steps-withdrawn: open-multipart of a gateway upload runs as a local activity again, so creation takes one workflow task; verify, merge and delete-staged stay regular activities; earlier runs replay what they recorded.',
  },
  tusConcatSignalsAtOnce: {
    id: 'tus-concat-signals-at-once',
    since: '2026-12-06',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'a final upload signals its partials (joined, or released) all in one workflow task; earlier runs signalled them one after the other.',
  },
  tusConcatJoinVerifies: {
    id: 'tus-concat-join-verifies',
    since: '2026-12-07',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      "asked by a final upload before its join: join-partials verifies the parts it wrote (the verify step's check) and the saga goes on to the merge without a verify step; earlier finals ran verify as a step of its own.",
  },
  gatewayPause: {
    id: 'gateway-pause',
    since: '2026-12-07',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'asked when a paused gateway upload first holds in receive-parts: it holds (with a timer up to its expiry when its clock runs) and, when its clock stops, moves its expiry on at resume; no earlier run was ever paused.',
  },
  gatewayConcurrentCreation: {
    id: 'gateway-concurrent-creation',
    since: '2026-12-07',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'a gateway upload that reserves at creation runs reserve-space and open-multipart at once (both local, waiting for both before going on or compensating); earlier runs ran them one after the other.',
  },
  gatewayTailParts: {
    id: 'gateway-tail-parts',
    since: '2026-12-07',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      "asked once at the start of a tus run: the run takes parts of varying size (a PATCH folds the remainder at its end into its last part), keeps the bytes its parts cover (`partsBytes`) in its state and carry, and verify checks the parts' sum instead of each size; earlier runs keep equal parts.",
  },
  gatewayPauseBound: {
    id: 'gateway-pause-bound',
    since: '2026-12-07',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'asked when a gateway upload whose input carries `maxPauseMs` holds paused with its expiry clock stopped: it holds at most `maxPauseMs` from the pause (a timer), then expires and is compensated; earlier runs held until resumed or cancelled.',
  },
  gatewayPauseBoundTotal: {
    id: 'gateway-pause-bound-total',
    since: '2026-12-07',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'asked with gateway-pause-bound: the pauses of an upload with its expiry clock stopped hold at most `maxPauseMs` in all (the time they held is counted, and carried across continue-as-new); earlier runs bounded each such pause on its own.',
  },
  gatewayLocalVerifyMerge: {
    id: 'gateway-local-verify-merge',
    since: '2026-12-07',
    askedBy: 'gatewayUploadWorkflow',
    guards:
      'asked once at the start of a tus run that is no concatenation final, before gateway-local-open-multipart: open-multipart, verify and merge (a partial: store-partial) run as local activities (a verify re-run after its merge accepts the object the merge completed; delete-staged stays a regular activity between the merge and notify); earlier runs replay what they recorded.',
  },
} as const satisfies Record<string, WorkflowPatch>;

/** @see WORKFLOW_PATCHES.localShortSteps */
export const LOCAL_SHORT_STEPS_PATCH = WORKFLOW_PATCHES.localShortSteps.id;
/** @see WORKFLOW_PATCHES.sagaPivotNotCancellable */
export const PIVOT_NOT_CANCELLABLE_PATCH = WORKFLOW_PATCHES.sagaPivotNotCancellable.id;
/** @see WORKFLOW_PATCHES.quotaStepsAsActivities */
export const QUOTA_STEPS_AS_ACTIVITIES_PATCH = WORKFLOW_PATCHES.quotaStepsAsActivities.id;
/** @see WORKFLOW_PATCHES.localQuotaStepsFoldedPhases */
export const LOCAL_QUOTA_STEPS_FOLDED_PHASES_PATCH = WORKFLOW_PATCHES.localQuotaStepsFoldedPhases.id;
/** @see WORKFLOW_PATCHES.localListingVerify */
export const LOCAL_LISTING_VERIFY_PATCH = WORKFLOW_PATCHES.localListingVerify.id;
/** @see WORKFLOW_PATCHES.sagaCancelledBeforePivot */
export const CANCELLED_BEFORE_PIVOT_PATCH = WORKFLOW_PATCHES.sagaCancelledBeforePivot.id;
/** @see WORKFLOW_PATCHES.tusDeferredLength */
export const TUS_DEFERRED_LENGTH_PATCH = WORKFLOW_PATCHES.tusDeferredLength.id;
/** @see WORKFLOW_PATCHES.smallFileOnePut */
export const SMALL_FILE_ONE_PUT_PATCH = WORKFLOW_PATCHES.smallFileOnePut.id;
/** @see WORKFLOW_PATCHES.pauseResume */
export const PAUSE_RESUME_PATCH = WORKFLOW_PATCHES.pauseResume.id;
/** @see WORKFLOW_PATCHES.quotaWait */
export const QUOTA_WAIT_PATCH = WORKFLOW_PATCHES.quotaWait.id;
/** @see WORKFLOW_PATCHES.tusConcatenation */
export const TUS_CONCATENATION_PATCH = WORKFLOW_PATCHES.tusConcatenation.id;
/** @see WORKFLOW_PATCHES.gatewayLocalSteps */
export const GATEWAY_LOCAL_STEPS_PATCH = WORKFLOW_PATCHES.gatewayLocalSteps.id;
/** @see WORKFLOW_PATCHES.gatewayLocalStepsWithdrawn */
export const GATEWAY_LOCAL_STEPS_WITHDRAWN_PATCH = WORKFLOW_PATCHES.gatewayLocalStepsWithdrawn.id;
/** @see WORKFLOW_PATCHES.gatewayLocalOpenMultipart */
export const GATEWAY_LOCAL_OPEN_MULTIPART_PATCH = WORKFLOW_PATCHES.gatewayLocalOpenMultipart.id;
/** @see WORKFLOW_PATCHES.gatewayConcurrentCreation */
export const GATEWAY_CONCURRENT_CREATION_PATCH = WORKFLOW_PATCHES.gatewayConcurrentCreation.id;
/** @see WORKFLOW_PATCHES.batchFinishNotCancellable */
export const BATCH_FINISH_NOT_CANCELLABLE_PATCH = WORKFLOW_PATCHES.batchFinishNotCancellable.id;
/** @see WORKFLOW_PATCHES.batchListsFailedChunkFiles */
export const BATCH_LISTS_FAILED_CHUNK_FILES_PATCH = WORKFLOW_PATCHES.batchListsFailedChunkFiles.id;
/** @see WORKFLOW_PATCHES.batchStoppedDeletesManifests */
export const BATCH_STOPPED_DELETES_MANIFESTS_PATCH = WORKFLOW_PATCHES.batchStoppedDeletesManifests.id;
/** @see WORKFLOW_PATCHES.batchPause */
export const BATCH_PAUSE_PATCH = WORKFLOW_PATCHES.batchPause.id;
/** @see WORKFLOW_PATCHES.tusConcatSignalsAtOnce */
export const TUS_CONCAT_SIGNALS_AT_ONCE_PATCH = WORKFLOW_PATCHES.tusConcatSignalsAtOnce.id;
/** @see WORKFLOW_PATCHES.tusConcatJoinVerifies */
export const TUS_CONCAT_JOIN_VERIFIES_PATCH = WORKFLOW_PATCHES.tusConcatJoinVerifies.id;
/** @see WORKFLOW_PATCHES.gatewayPause */
export const GATEWAY_PAUSE_PATCH = WORKFLOW_PATCHES.gatewayPause.id;
/** @see WORKFLOW_PATCHES.gatewayTailParts */
export const GATEWAY_TAIL_PARTS_PATCH = WORKFLOW_PATCHES.gatewayTailParts.id;
/** @see WORKFLOW_PATCHES.gatewayPauseBoundTotal */
export const GATEWAY_PAUSE_BOUND_TOTAL_PATCH = WORKFLOW_PATCHES.gatewayPauseBoundTotal.id;
/** @see WORKFLOW_PATCHES.gatewayPauseBound */
export const GATEWAY_PAUSE_BOUND_PATCH = WORKFLOW_PATCHES.gatewayPauseBound.id;
/** @see WORKFLOW_PATCHES.gatewayLocalVerifyMerge */
export const GATEWAY_LOCAL_VERIFY_MERGE_PATCH = WORKFLOW_PATCHES.gatewayLocalVerifyMerge.id;
