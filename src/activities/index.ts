/**
 * The upload activities, built from injected dependencies. Register the result with the worker:
 * `Worker.create({ activities: createActivities(deps), ... })`. Workflow code imports only the
 * *type* of this object.
 */
import { cleanupUploadActivity } from './cleanup-upload';
import { gatewayUploadActivities } from './gateway-upload';
import { completeUploadActivity } from './complete-upload';
import type { UploadActivityDeps } from './deps';
import { inspectSourceActivity } from './inspect-source';
import { notifyActivity } from './notify';
import { quotaActivities } from './quota';
import { uploadPartsActivity } from './upload-parts';
import { verifyUploadActivity } from './verify-upload';

export function createActivities(deps: UploadActivityDeps) {
  return {
    inspectSource: inspectSourceActivity(deps),
    ...quotaActivities(deps),
    uploadParts: uploadPartsActivity(deps),
    cleanupUpload: cleanupUploadActivity(deps),
    verifyUpload: verifyUploadActivity(deps),
    completeUpload: completeUploadActivity(deps),
    notify: notifyActivity(deps),
    // gateway uploads through the HTTP gateway (src/workflows/gateway-upload-workflow.ts)
    ...gatewayUploadActivities(deps),
  };
}

export type UploadActivities = ReturnType<typeof createActivities>;

export type { UploadActivityDeps, WebhookOptions } from './deps';
export type { Inspection } from './inspect-source';
export type { UploadPartsInput, UploadPartsResult, UploadPartsProgress, UploadPartsFailureDetails } from './upload-parts';
export type { VerifyUploadInput, VerifyUploadResult } from './verify-upload';
export type { CompleteUploadInput, CompleteUploadResult } from './complete-upload';
export type { CleanupUploadInput, CleanupUploadResult } from './cleanup-upload';
export type { NotifyInput, NotifyResult } from './notify';
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
