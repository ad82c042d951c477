/**
 * The stamp the saga writes on every object it stores: one user-metadata entry, {@link STAMP_KEY},
 * naming the upload by its workflow id (`upload:<tenant>:<uploadId>`). A delete reads it back to
 * know that the saga stored the object, which tenant's quota counted it and under which upload
 * id, so that the ledger gives those bytes back once and to the right tenant.
 *
 * Invariant: the activities that create an object (put-object, the multipart creates of
 * upload-parts and of gateway uploads) add the stamp from their own workflow id, over the
 * request's metadata, so a request cannot forge it; request validation refuses metadata keys under
 * {@link SAGA_METADATA_PREFIX} and keeps room for the stamp within S3's metadata limit.
 */
import { parseUploadWorkflowId, SAGA_METADATA_PREFIX, STAMP_KEY } from './request';

export { STAMP_KEY };

/** `metadata` without any saga-reserved key, plus the stamp when `workflowId` is an upload's workflow id. */
export function withStamp(metadata: Record<string, string> | undefined, workflowId: string): Record<string, string> {
  const own = Object.fromEntries(Object.entries(metadata ?? {}).filter(([k]) => !k.toLowerCase().startsWith(SAGA_METADATA_PREFIX)));
  return parseUploadWorkflowId(workflowId) ? { ...own, [STAMP_KEY]: workflowId } : own;
}

/** The upload an object's metadata names, or undefined when the saga did not stamp it. */
export function stampedUpload(metadata: Record<string, string> | undefined): { tenant: string; uploadId: string } | undefined {
  const value = metadata?.[STAMP_KEY];
  return value ? parseUploadWorkflowId(value) : undefined;
}
