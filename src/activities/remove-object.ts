/**
 * remove-object, the pivot of a delete: deletes exactly the object inspect-object found.
 *
 * - A version is known (a bucket with versioning): DeleteObject of that version, so its bytes are
 *   gone for good (no delete marker that would leave them stored as a noncurrent version); the
 *   version before it, if any, is current again.
 * - No version (no versioning): the object is deleted when the key still holds the ETag found;
 *   an object another writer stored since is left alone (`changed`).
 *
 * Idempotent: a retry after the delete went through finds the key empty (or the version gone)
 * and reports the object removed.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { headObjectIfPresent } from '../s3/head-object';
import { s3Failure } from '../s3/classify-error';
import { sameETag } from '../s3/multipart-etag';
import type { UploadActivityDeps } from './deps';

export interface RemoveObjectInput {
  bucket: string;
  key: string;
  etag: string;
  versionId?: string;
}

export interface RemoveObjectResult {
  /** `removed`: the object found is gone; `changed`: the key holds another object now, left alone. */
  status: 'removed' | 'changed';
}

export function removeObjectActivity(deps: UploadActivityDeps) {
  return async function removeObject(input: RemoveObjectInput): Promise<RemoveObjectResult> {
    const where = `s3://${input.bucket}/${input.key}`;
    const target = { Bucket: input.bucket, Key: input.key };
    try {
      let status: RemoveObjectResult['status'] = 'removed';
      if (input.versionId) {
        await deps.s3.send(new DeleteObjectCommand({ ...target, VersionId: input.versionId }));
      } else {
        const head = await headObjectIfPresent(deps.s3, { bucket: input.bucket, key: input.key });
        if (head && !sameETag(head.ETag, input.etag)) status = 'changed';
        else if (head) await deps.s3.send(new DeleteObjectCommand(target));
      }
      Context.current().log.info('object deleted', { bucket: input.bucket, key: input.key, status });
      return { status };
    } catch (err) {
      throw s3Failure(`delete ${where}`, err);
    }
  };
}
