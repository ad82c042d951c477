/**
 * Reading an upload's progress from the source of truth: the workflow's state, plus ListParts for a
 * presigned upload still receiving parts whose client reports none (the bytes a browser sent
 * straight to S3). A client that reports its parts (`POST …/:partNumber/done`) has them recorded
 * in the workflow, and its watchers learn each one from the bus at once: for it S3 is never
 * polled. Streams poll
 * this at a low rate; the bus only makes them prompt. An upload started from application code
 * (UploadClient) is read through its `progress` query and result: a stream follows it too, its
 * bytes arriving on the bus from the worker's heartbeats.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { listAllParts } from '../s3/list-parts';
import type { GatewayUploadState } from '../upload/gateway-upload';
import { observationOfState, storedObjectOf, type ProgressObservation } from '../progress/view';
import { UploadNotFoundError } from './errors';
import type { ApplicationUploadState } from './uploads-service';

/** Reads an upload's progress from the workflow (and S3, for presigned parts). */
export interface ProgressSource {
  /**
   * The upload's state for the tenant.
   * @throws UploadNotFoundError (404) for unknown ids and other tenants' uploads
   */
  state(tenant: string, uploadId: string): Promise<GatewayUploadState>;
  /**
   * An upload started from application code (not a gateway upload), read when `state` finds none.
   * @throws UploadNotFoundError for unknown ids and other tenants' uploads
   * @default undefined: streams follow gateway uploads only
   */
  applicationUpload?(tenant: string, uploadId: string): Promise<ApplicationUploadState>;
  /**
   * The state of an upload known merged, from its mark (no query), or undefined (see
   * UploadsService.mergedState).
   * @default undefined: always `state`
   */
  mergedState?(tenant: string, uploadId: string): Promise<GatewayUploadState | undefined>;
}

/** What an application upload's state says about progress; the bus adds the bytes of the batch in flight. */
export function observationOfApplicationUpload(
  tenant: string,
  uploadId: string,
  { progress, result, error }: ApplicationUploadState,
  at: number = Date.now(),
): ProgressObservation {
  return {
    tenant,
    uploadId,
    at,
    phase: progress.phase,
    outcome: progress.outcome,
    bytes: result ? result.size : progress.bytesUploaded,
    ...(progress.totalBytes !== undefined ? { totalBytes: progress.totalBytes } : {}),
    ...(result ? { object: storedObjectOf(result) } : {}),
    ...(error ? { error } : {}),
  };
}

/**
 * An observation of an upload known merged, from its mark (no query, which waits while the saga's
 * local activities hold its workflow task), or undefined without a mark.
 */
export async function markedObservation(
  source: ProgressSource,
  tenant: string,
  uploadId: string,
): Promise<ProgressObservation | undefined> {
  const marked = await source.mergedState?.(tenant, uploadId);
  return marked ? observationOfState(marked) : undefined;
}

/** An observation from the workflow, with ListParts bytes for a presigned upload not yet merged. */
export async function pollObservation(
  source: ProgressSource,
  s3: S3Client | undefined,
  tenant: string,
  uploadId: string,
): Promise<ProgressObservation> {
  const at = Date.now();
  let state: GatewayUploadState;
  try {
    state = await source.state(tenant, uploadId);
  } catch (err) {
    // Not a gateway upload: perhaps one started from application code, whose worker publishes its bytes.
    if (!(err instanceof UploadNotFoundError) || !source.applicationUpload) throw err;
    return observationOfApplicationUpload(tenant, uploadId, await source.applicationUpload(tenant, uploadId), at);
  }
  const observation = observationOfState(state, at);
  // Until the merge, the parts S3 holds are the bytes received, unless the client reports its parts.
  if (
    s3 &&
    state.mode === 'presigned' &&
    state.reportedParts === undefined &&
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
