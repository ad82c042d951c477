/**
 * Names that are on the wire: recorded in workflow histories, used by running workflows and by
 * gateways of other versions. They never change, even when the code's names do.
 *
 * Decision: the browser/tus/presigned flow is called "gateway upload" in the code
 * (`gatewayUploadWorkflow`, `verifyGatewayUpload`, `GatewayUploadState`), but it is registered and
 * started under the names it was first recorded with, listed here: one workflow type for old and
 * new uploads (no second type to route, query or search for), old histories replay, and the Web
 * UI, `temporal workflow list --query "WorkflowType='clientUploadWorkflow'"` and dashboards keep
 * working. Every use of these names goes through this object; src/workflows/index.ts exports the
 * workflow under {@link WIRE_NAMES.gatewayUploadWorkflow} (checked by test/unit/wire-names.test.ts).
 */
export const WIRE_NAMES = {
  /** Workflow type of {@link gatewayUploadWorkflow} (src/workflows/gateway-upload-workflow.ts). */
  gatewayUploadWorkflow: 'clientUploadWorkflow',
  /** Activity type of verifyGatewayUpload (src/activities/gateway-upload.ts). */
  verifyGatewayUpload: 'verifyClientUpload',
  /** Query name of the gateway upload's state ({@link GatewayUploadState}). */
  gatewayUploadStateQuery: 'clientUploadState',
} as const;

/** A value that carries S3's multipart upload id, under its name or under its recorded name. */
export interface CarriesMultipartUploadId {
  multipartUploadId?: unknown;
  /** The recorded name of S3's multipart upload id: read, never written. */
  uploadId?: unknown;
}

/**
 * S3's multipart upload id in an activity input, result, heartbeat or failure detail.
 *
 * Invariant: such values are recorded in histories (and sit in task queues across a deploy)
 * with S3's id named either `multipartUploadId` or `uploadId` (its recorded name); every reader
 * accepts both, `multipartUploadId` first, so recorded histories replay and in-flight activities
 * resume. Writers use `multipartUploadId` only.
 */
export function multipartUploadIdOf(value: CarriesMultipartUploadId | null | undefined): string | undefined {
  const id = value?.multipartUploadId ?? value?.uploadId;
  return typeof id === 'string' ? id : undefined;
}

/** {@link multipartUploadIdOf} where the id is required. @throws TypeError when there is none */
export function requireMultipartUploadId(value: CarriesMultipartUploadId, what: string): string {
  const id = multipartUploadIdOf(value);
  if (id === undefined) throw new TypeError(`${what} carries no multipart upload id`);
  return id;
}
