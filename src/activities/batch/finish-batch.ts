/**
 * finish-batch: the last step of a batch that stored its files. An atomic batch commits the
 * reservations of all its chunks now (until here they were held, so an undo could release them);
 * then the chunk manifests are deleted: nothing is left under the saga's reserved prefix.
 * Idempotent (commits are, and deleting an absent manifest is no error).
 */
import { Context } from '@temporalio/activity';
import { chunkReservationId, type BatchMode } from '../../batch/batch-types';
import { s3Failure } from '../../s3/classify-error';
import type { UploadActivityDeps } from '../deps';
import { deleteKeys, manifestKeyPages } from './batch-manifests';

export interface FinishBatchInput {
  tenant: string;
  batchId: string;
  bucket: string;
  mode: BatchMode;
  /** Chunks the batch ran: 0 … chunks − 1. */
  chunks: number;
}

export function finishBatchActivity(deps: UploadActivityDeps) {
  return async function finishBatch(input: FinishBatchInput): Promise<void> {
    const { tenant, batchId, bucket } = input;
    if (input.mode === 'atomic') {
      for (let chunk = 0; chunk < input.chunks; chunk++) await deps.quota.commit({ tenant, uploadId: chunkReservationId(batchId, chunk) });
    }
    try {
      for await (const page of manifestKeyPages(deps.s3, bucket, tenant, batchId)) {
        await deleteKeys(
          deps.s3,
          bucket,
          page.map((key) => ({ key })),
        );
        Context.current().heartbeat();
      }
    } catch (err) {
      throw s3Failure(`deleting the manifests of batch ${batchId}`, err);
    }
  };
}
