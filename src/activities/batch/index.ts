/**
 * The batch activities (src/workflows/batch-workflow.ts), built from the upload activities' dependencies.
 */
import type { UploadActivityDeps } from '../deps';
import { finishBatchActivity } from './finish-batch';
import { inspectBatchActivity } from './inspect-batch';
import { listBatchPageActivity } from './list-batch-page';
import { undoBatchActivity } from './undo-batch';
import { uploadBatchChunkActivity } from './upload-batch-chunk';

export function batchActivities(deps: UploadActivityDeps) {
  return {
    /** Checks the batch as a whole and counts its files and bytes. */
    inspectBatch: inspectBatchActivity(deps),
    /** The next page of the batch's source after a cursor. */
    listBatchPage: listBatchPageActivity(),
    /** Reserves, stores and (independent mode) commits one chunk of small files. */
    uploadBatchChunk: uploadBatchChunkActivity(deps),
    /** Compensation: deletes the objects of chunks and releases their reservations. */
    undoBatch: undoBatchActivity(deps),
    /** Commits an atomic batch's reservations and deletes the chunk manifests. */
    finishBatch: finishBatchActivity(deps),
  };
}

export type { BatchInspection } from './inspect-batch';
export type { ListingPage } from './batch-listing';
export type { UploadBatchChunkInput, UploadBatchChunkResult, UploadBatchChunkProgress } from './upload-batch-chunk';
export type { UndoBatchInput, UndoBatchResult } from './undo-batch';
export type { FinishBatchInput } from './finish-batch';
