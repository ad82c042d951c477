/**
 * Which uploads take the small-file fast path: stored with one PutObject instead of a multipart
 * upload (see docs/explanation/saga-semantics.md#the-small-file-fast-path). Pure, so the workflow
 * decides it deterministically from the inspection recorded in its history.
 *
 * Why these conditions:
 * - one part: a source the part plan fits in one part needs no multipart upload at all;
 * - streamed: a source the store copies server-side keeps its UploadPartCopy path (no byte
 *   passes the worker either way, and the copy carries no checksum of ours);
 * - a store with additional checksums: the fast path's PutObject, its retry and its compensation
 *   recognise this upload's object by its checksum;
 * - at most {@link ONE_PUT_MAX_BYTES}: put-object runs as a local activity, which cannot
 *   heartbeat and holds its bytes in memory, so its duration and memory stay those of one part.
 */
import type { TransferMode } from './integrity';
import type { PartPlan } from './part-plan';

/** The largest source stored with one PutObject: 64 MiB (a part size above it keeps multipart). */
export const ONE_PUT_MAX_BYTES = 64 * 1024 * 1024;

/** Whether an upload of `plan`, moved by `transfer` into a store with(out) additional checksums, is stored with one PutObject. */
export function storesInOnePut(plan: Pick<PartPlan, 'size' | 'partCount'>, transfer: TransferMode, additionalChecksums = true): boolean {
  return plan.partCount === 1 && transfer === 'stream' && additionalChecksums && plan.size <= ONE_PUT_MAX_BYTES;
}
