/**
 * The application API of upload-saga (`import … from 'upload-saga'`): the upload client that
 * starts, follows, cancels and lists uploads, the request and result types, and the typed errors.
 *
 * The other entry points: `upload-saga/worker` (run the uploads), `upload-saga/workflows` (the
 * upload workflows, for your own workflows file), `upload-saga/saga` (the saga engine, for your
 * own workflows), `upload-saga/gateway` (the HTTP gateway) and `upload-saga/codec` (payload
 * encryption).
 *
 * @packageDocumentation
 */
export {
  PauseRefusedError,
  DeleteFailedError,
  TenantAccessDeniedError,
  UploadClient,
  UploadFailedError,
  UploadHandle,
  type LiveProgress,
  type UploadClientOptions,
  type UploadSummary,
} from './client';
export {
  BatchClient,
  BatchFailedError,
  BatchHandle,
  InvalidBatchRequestError,
  type BatchClientOptions,
  type BatchSummary,
} from './batch-client';
export { BatchFailureType, findBatchProblems } from './batch/batch-request';
export { MigrationFailedError, MigrationHandle, readMigrationReport, type MigrationSummary } from './migration-client';
export { findMigrationProblems, InvalidMigrationRequestError, MigrationFailureType } from './migration/migration-request';
export {
  migrationWorkflowId,
  type MigrationCounts,
  type MigrationFailure,
  type MigrationOutcomeKind,
  type MigrationProgress,
  type MigrationReportLine,
  type MigrationRequest,
  type MigrationResult,
  type MigrationSource,
} from './migration/migration-types';
export {
  BATCH_DEFAULTS,
  type BatchFileFailure,
  type BatchMode,
  type BatchOutcomeKind,
  type BatchProgress,
  type BatchRequest,
  type BatchResult,
  type BatchSource,
} from './batch/batch-types';
export { InvalidDeleteRequestError, InvalidUploadRequestError, UploadFailureType, type RequestProblem } from './upload/errors';
export { findDeleteRequestProblems, type DeleteRequest, type DeleteResult } from './upload/delete-request';
export {
  CHECKSUM_ALGORITHMS,
  UPLOAD_DEFAULTS,
  findRequestProblems,
  type ChecksumAlgorithm,
  type ExpectedChecksum,
  type FullObjectCrcAlgorithm,
  type S3ObjectSource,
  type SourceDescriptor,
  type UploadRequest,
  type UploadRequestWithDefaults,
} from './upload/request';
export type { UploadEvent, UploadEventType, UploadOutcomeKind, UploadPhase, UploadProgress, UploadResult } from './upload/outcome';
export type { TransferMode } from './upload/integrity';
export { QUOTA_WAIT_EXPIRED, type PauseExpiry, type PauseRequest, type PauseState } from './upload/pause';
export type { CompensationOutcome, CompensationStatus, SagaFailureReport, SagaState, StepOutcome, StepStatus } from './saga/workflow';
export { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signWebhookBody } from './activities/notify';
