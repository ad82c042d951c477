/**
 * The upload activities, built from injected dependencies. Register the result with the worker:
 * `Worker.create({ activities: createActivities(deps), ... })`. Workflow code imports only the
 * *type* of this object.
 */
import { batchActivities } from './batch';
import { cleanupUploadActivity } from './cleanup-upload';
import { gatewayUploadActivities } from './gateway-upload';
import { completeUploadActivity } from './complete-upload';
import { deleteObjectActivity } from './delete-object';
import type { UploadActivityDeps } from './deps';
import { inspectDeletionActivity } from './inspect-deletion';
import { inspectSourceActivity } from './inspect-source';
import { joinPartialsActivity } from './join-partials';
import { migrationActivities } from './migration';
import { notifyActivity } from './notify';
import { quotaActivities } from './quota';
import { putObjectActivity } from './put-object';
import { removeObjectActivity } from './remove-object';
import { uploadPartsActivity } from './upload-parts';
import { verifyObjectActivity } from './verify-object';
import { verifyUploadActivity } from './verify-upload';

/** Builds the upload activities from their dependencies, to register on a worker. */
export function createActivities(deps: UploadActivityDeps) {
  return {
    /** Opens the source and records its size and version. */
    inspectSource: inspectSourceActivity(deps),
    ...quotaActivities(deps),
    /** Uploads (or copies server-side) one batch of parts, heartbeating progress. */
    uploadParts: uploadPartsActivity(deps),
    /** Compensation: aborts the multipart upload and deletes what was staged. */
    cleanupUpload: cleanupUploadActivity(deps),
    /** Checks the uploaded parts against the plan and the source before the merge. */
    verifyUpload: verifyUploadActivity(deps),
    /** The pivot: completes the multipart upload (idempotently). */
    completeUpload: completeUploadActivity(deps),
    /** Small-file fast path: stores a one-part source with one PutObject carrying its checksum. */
    putObject: putObjectActivity(deps),
    /** Small-file fast path: checks the stored version against the source. */
    verifyObject: verifyObjectActivity(deps),
    /** Compensation of putObject: deletes the version this upload stored, and only that. */
    deleteObject: deleteObjectActivity(deps),
    /** Delete saga: checks the request and reads what is at the key (size, version, the saga's stamp). */
    inspectDeletion: inspectDeletionActivity(deps),
    /** Delete saga, the pivot: deletes exactly the object (version) inspectDeletion found. */
    removeObject: removeObjectActivity(deps),
    /** POSTs the upload's outcome to the caller's webhook. */
    notify: notifyActivity(deps),
    // batches of files in one orchestration (src/workflows/batch-workflow.ts)
    ...batchActivities(deps),
    // bucket-to-bucket migrations (src/workflows/migration-workflow.ts)
    ...migrationActivities(deps),
    // gateway uploads through the HTTP gateway (src/workflows/gateway-upload-workflow.ts)
    ...gatewayUploadActivities(deps),
    /** tus concatenation: fills a final upload's multipart upload from its partials (copies server-side where S3 allows). */
    joinPartials: joinPartialsActivity(deps),
  };
}

/** The upload activities, as registered on a worker. */
export type UploadActivities = ReturnType<typeof createActivities>;

export type { UploadActivityDeps, WebhookOptions, PauseProbe } from './deps';
export { workflowPauseProbe } from './deps';
export type { Inspection } from './inspect-source';
export type { UploadPartsInput, UploadPartsResult, UploadPartsProgress, UploadPartsFailureDetails } from './upload-parts';
export type { VerifyUploadInput, VerifyUploadResult } from './verify-upload';
export type { CompleteUploadInput, CompleteUploadResult } from './complete-upload';
export type { CleanupUploadInput, CleanupUploadResult } from './cleanup-upload';
export type { PutObjectInput, PutObjectResult, PutObjectFailureDetails, StoredObject } from './put-object';
export type { VerifyObjectInput, VerifyObjectResult } from './verify-object';
export type { DeleteObjectInput, DeleteObjectResult } from './delete-object';
export type { NotifyInput, NotifyResult } from './notify';
export type * from './batch';
export type * from './migration';
export type { DeletionTarget } from './inspect-deletion';
export type { RemoveObjectInput, RemoveObjectResult } from './remove-object';
export type { JoinPartialsInput, JoinPartialsResult } from './join-partials';
export type {
  OpenMultipartUploadInput,
  OpenMultipartUploadResult,
  VerifyGatewayUploadInput,
  VerifyGatewayUploadResult,
  GatewayUploadExpectation,
} from './gateway-upload';
export { SIGNATURE_HEADER, IDEMPOTENCY_HEADER, signWebhookBody } from './notify';
export type { ByteSource, SourceResolver, SourceStat, ServerSideCopy, PartCopyTarget, TransferMode } from './sources/byte-source';
export { S3ObjectResolver, type S3ObjectResolverOptions } from './sources/s3-object';
export { LocalFileResolver } from './sources/local-file';
export { HttpUrlResolver } from './sources/http-url';
export { SourceRegistry, type SourceResolvers } from './sources/registry';
