/**
 * Reading an upload's progress from the source of truth: the workflow's state, plus ListParts for a
 * presigned upload still receiving parts (the bytes a browser sent straight to S3). Streams poll
 * this at a low rate; the bus only makes them prompt.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { listAllParts } from '../s3/list-parts';
import type { GatewayUploadState } from '../upload/gateway-upload';
import { observationOfState, type ProgressObservation } from '../progress/view';

/** Reads an upload's progress from the workflow (and S3, for presigned parts). */
export interface ProgressSource {
  /**
   * The upload's state for the tenant.
   * @throws UploadNotFoundError (404) for unknown ids and other tenants' uploads
   */
  state(tenant: string, uploadId: string): Promise<GatewayUploadState>;
}

/** An observation from the workflow, with ListParts bytes for a presigned upload not yet merged. */
export async function pollObservation(
  source: ProgressSource,
  s3: S3Client | undefined,
  tenant: string,
  uploadId: string,
): Promise<ProgressObservation> {
  const at = Date.now();
  const state = await source.state(tenant, uploadId);
  const observation = observationOfState(state, at);
  // Until the merge, the parts S3 holds are the bytes received (the workflow learns the size at verify).
  if (
    s3 &&
    state.mode === 'presigned' &&
    state.outcome === 'running' &&
    (state.phase === 'receive-parts' || state.phase === 'verify') &&
    state.multipartUploadId
  ) {
    try {
      const parts = await listAllParts(
        s3,
        { bucket: state.bucket, key: state.key, multipartUploadId: state.multipartUploadId },
        AbortSignal.timeout(10_000),
      );
      observation.bytes = parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    } catch {
      // Aborted meanwhile (completed, cancelled, expired): the next poll shows the outcome.
    }
  }
  return observation;
}
