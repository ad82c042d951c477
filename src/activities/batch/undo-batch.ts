/**
 * undo-batch: the compensation of a batch's chunks. For each chunk it deletes every object the
 * chunk's manifest names that carries this batch's mark (an object without it was not written by
 * this batch — in atomic mode nothing is ever replaced, so a marked object at such a key is ours),
 * the exact version it finds in a versioned bucket, then the manifest, and releases the chunk's
 * reservation. Idempotent: a retry finds fewer objects and releases nothing twice.
 *
 * `chunks`: the chunks to undo (an independent batch undoes the chunk that failed, and those in
 * flight when it stopped); `allBelow`: every chunk numbered below it (an atomic batch undoes all).
 */
import { Context } from '@temporalio/activity';
import { BATCH_MARK_METADATA, batchMark, chunkReservationId } from '../../batch/batch-types';
import { s3Failure } from '../../s3/classify-error';
import { headObjectIfPresent } from '../../s3/head-object';
import type { UploadActivityDeps } from '../deps';
import { chunkManifestKeys, deleteKeys, manifestKeyPages, manifestKeys } from './batch-manifests';

export interface UndoBatchInput {
  tenant: string;
  batchId: string;
  bucket: string;
  chunks?: number[];
  allBelow?: number;
}

export interface UndoBatchResult {
  objectsDeleted: number;
  /** Keys named by a manifest that hold an object without this batch's mark: left alone. */
  objectsNotOurs: number;
}

const CONCURRENCY = 16;

export function undoBatchActivity(deps: UploadActivityDeps) {
  return async function undoBatch(input: UndoBatchInput): Promise<UndoBatchResult> {
    const context = Context.current();
    const { bucket, tenant, batchId } = input;
    const mark = batchMark(tenant, batchId);
    const result: UndoBatchResult = { objectsDeleted: 0, objectsNotOurs: 0 };
    try {
      const undoManifests = async (manifests: string[]) => {
        for (const manifest of manifests) {
          const keys = await manifestKeys(deps.s3, bucket, manifest);
          const ours: { key: string; versionId?: string }[] = [];
          for (let i = 0; i < keys.length; i += CONCURRENCY) {
            await Promise.all(
              keys.slice(i, i + CONCURRENCY).map(async (key) => {
                const head = await headObjectIfPresent(deps.s3, { bucket, key });
                if (!head) return;
                if (head.Metadata?.[BATCH_MARK_METADATA] !== mark) result.objectsNotOurs++;
                else ours.push({ key, ...(head.VersionId && head.VersionId !== 'null' ? { versionId: head.VersionId } : {}) });
              }),
            );
          }
          await deleteKeys(deps.s3, bucket, ours);
          await deleteKeys(deps.s3, bucket, [{ key: manifest }]);
          result.objectsDeleted += ours.length;
          context.heartbeat(result);
        }
      };
      if (input.chunks) await undoManifests(chunkManifestKeys(tenant, batchId, input.chunks));
      else for await (const page of manifestKeyPages(deps.s3, bucket, tenant, batchId)) await undoManifests(page);
    } catch (err) {
      throw s3Failure(`undo of batch ${batchId}`, err);
    }
    const chunks = input.chunks ?? Array.from({ length: input.allBelow ?? 0 }, (_, i) => i);
    await Promise.all(chunks.map((chunk) => deps.quota.release({ tenant, uploadId: chunkReservationId(batchId, chunk) })));
    return result;
  };
}
