/**
 * The chunk manifests of a batch: one small JSON object per chunk under the saga's reserved
 * prefix, naming the keys the chunk may write. They are how undo finds every object of a batch
 * after any number of continue-as-new runs, without the workflow carrying the keys.
 */
import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { batchManifestPrefix, chunkManifestKey } from '../../batch/batch-types';
import { isS3Error } from '../../s3/classify-error';

/** The manifest keys of a batch, page by page (1,000 at most each). */
export async function* manifestKeyPages(s3: S3Client, bucket: string, tenant: string, batchId: string): AsyncGenerator<string[]> {
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: batchManifestPrefix(tenant, batchId), ContinuationToken: token }),
    );
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : []));
    if (keys.length) yield keys;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

/** The keys a chunk's manifest names; [] when the chunk never wrote one. */
export async function manifestKeys(s3: S3Client, bucket: string, manifestKey: string): Promise<string[]> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }));
    const parsed = JSON.parse(await object.Body!.transformToString()) as { keys?: unknown };
    return Array.isArray(parsed.keys) ? parsed.keys.filter((k): k is string => typeof k === 'string') : [];
  } catch (err) {
    if (isS3Error(err, 'NoSuchKey', 'NotFound', 'Http404')) return [];
    throw err;
  }
}

/** The manifest keys of the given chunks. */
export function chunkManifestKeys(tenant: string, batchId: string, chunks: number[]): string[] {
  return chunks.map((chunk) => chunkManifestKey(tenant, batchId, chunk));
}

/** Deletes `keys` (current versions) with DeleteObjects, 1,000 at a time; an absent key is no error. */
export async function deleteKeys(s3: S3Client, bucket: string, keys: { key: string; versionId?: string }[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    const result = await s3.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: batch.map((k) => ({ Key: k.key, ...(k.versionId ? { VersionId: k.versionId } : {}) })), Quiet: true },
      }),
    );
    const failed = (result.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey' && e.Code !== 'NoSuchVersion');
    if (failed.length)
      throw new Error(
        `DeleteObjects in ${bucket} failed for ${failed.length} keys, e.g. ${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message}`,
      );
  }
}
