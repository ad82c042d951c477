/**
 * The compensation of put-object: delete what this upload wrote, and only that.
 *
 * - The version is known (a bucket with versioning): DeleteObject of exactly that version, so the
 *   version before it, if any, is current again.
 * - Only the ETag is known (no versioning): the object is deleted when the key still holds that
 *   ETag; an object another writer stored since is left alone.
 * - The PutObject's answer was lost (a failure that carried the checksum it sent): the object is
 *   deleted when it has that checksum and was last modified after the step began.
 * - Nothing known (put-object failed before sending): nothing to do, no request.
 *
 * In a bucket without versioning the put replaced any earlier object at the key; the
 * compensation cannot bring that one back (see docs/explanation/saga-semantics.md). Idempotent:
 * an object already gone is success.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import type { UploadActivityDeps } from './deps';
import type { StoredObject } from './put-object';
import { checksumField } from '../s3/checksums';
import { headObjectIfPresent } from '../s3/head-object';
import { s3Failure } from '../s3/classify-error';
import { sameETag } from '../s3/multipart-etag';

export interface DeleteObjectInput {
  bucket: string;
  key: string;
  /** What put-object reported it stored. */
  stored?: Pick<StoredObject, 'etag' | 'versionId'>;
  /** Without `stored`: the checksum put-object sent, and when its step began (epoch ms). */
  sent?: { checksum: StoredObject['checksum']; notBeforeMs: number };
}

export interface DeleteObjectResult {
  /** Whether an object of this upload was deleted now. */
  deleted: boolean;
}

export function deleteObjectActivity(deps: UploadActivityDeps) {
  return async function deleteObject(input: DeleteObjectInput): Promise<DeleteObjectResult> {
    const where = `s3://${input.bucket}/${input.key}`;
    const target = { Bucket: input.bucket, Key: input.key };
    try {
      let deleted = false;
      if (input.stored?.versionId) {
        await deps.s3.send(new DeleteObjectCommand({ ...target, VersionId: input.stored.versionId }));
        deleted = true;
      } else if (input.stored || input.sent) {
        const head = await headObjectIfPresent(deps.s3, { bucket: input.bucket, key: input.key });
        const ours = input.stored
          ? sameETag(head?.ETag, input.stored.etag)
          : head !== undefined &&
            head[checksumField(input.sent!.checksum.algorithm)] === input.sent!.checksum.value &&
            (head.LastModified?.getTime() ?? 0) >= input.sent!.notBeforeMs;
        if (ours) {
          await deps.s3.send(new DeleteObjectCommand({ ...target, ...(head?.VersionId ? { VersionId: head.VersionId } : {}) }));
          deleted = true;
        }
      }
      Context.current().log.info('upload compensated', { bucket: input.bucket, key: input.key, objectDeleted: deleted });
      return { deleted };
    } catch (err) {
      throw s3Failure(`delete the object this upload stored at ${where}`, err);
    }
  };
}
