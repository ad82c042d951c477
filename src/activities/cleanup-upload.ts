/**
 * The compensation of upload-parts: leave nothing outside a completed object.
 *
 * - Aborts the multipart upload. `NoSuchUpload` means it is already gone: done, not failed.
 * - Confirms by listing, and aborts again: S3 documents that a part upload in flight during the
 *   abort can still land afterwards, so one abort is not proof.
 * - When the action died before it could report an upload id (its create answer was lost), finds
 *   the uploads for the key that were initiated after the step began and aborts those.
 * - Deletes staged part objects under the upload's staging prefix (used by protocol gateways that
 *   receive chunks smaller than a part).
 * - Called with neither an upload id nor a time (a gateway upload's delete-staged step, after its
 *   merge): also aborts the uploads of the key still in progress that hold no part. The key's
 *   object is complete by then, so such an upload is an orphan of this upload's creation: its
 *   open-multipart runs as a local activity, and runs again when the workflow task that ran it is
 *   retried (a task lost under load), creating a second upload whose first one nobody records.
 *   An upload is expected to own its key (docs/explanation/gateway.md): another writer's upload of
 *   the same key that has not sent a part yet would be aborted too.
 *
 * Throws a retryable failure while anything remains, so the step's compensation policy keeps
 * trying — e.g. until a store that is down comes back.
 */
import { Context } from '@temporalio/activity';
import { multipartUploadIdOf } from '../upload/wire-names';
import { AbortMultipartUploadCommand, DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { uploadsForKey } from '../s3/create-multipart-upload';
import { transientFailure, UploadFailureType } from '../upload/errors';
import type { UploadActivityDeps } from './deps';
import { isS3Error, s3Failure } from '../s3/classify-error';
import { listAllParts } from '../s3/list-parts';

export interface CleanupUploadInput {
  bucket: string;
  key: string;
  /** S3's id of the multipart upload to abort, when known (read with multipartUploadIdOf: recorded inputs name it `uploadId`). */
  multipartUploadId?: string;
  /** Without a multipart upload id: abort uploads of this key initiated at or after this time (epoch ms). */
  initiatedAfterMs?: number;
  /** Staged objects to delete, e.g. `.upload-saga/staging/<tenant>/<uploadId>/`. */
  stagingPrefix?: string;
}

export interface CleanupUploadResult {
  abortedMultipartUploadIds: string[];
  stagedObjectsDeleted: number;
}

/** How many abort-and-confirm rounds one attempt makes before handing over to the retry policy. */
const CONFIRM_ROUNDS = 3;

async function stillHasParts(s3: S3Client, bucket: string, key: string, multipartUploadId: string): Promise<boolean> {
  try {
    await listAllParts(s3, { bucket, key, multipartUploadId });
    return true; // the upload still exists (with or without parts)
  } catch (err) {
    if (isS3Error(err, 'NoSuchUpload', 'Http404')) return false;
    throw err;
  }
}

/** The uploads of exactly `key` still in progress that hold no part. */
async function emptyUploadsOfKey(s3: S3Client, bucket: string, key: string): Promise<string[]> {
  const empty: string[] = [];
  for (const { multipartUploadId } of await uploadsForKey(s3, bucket, key)) {
    try {
      if ((await listAllParts(s3, { bucket, key, multipartUploadId })).length === 0) empty.push(multipartUploadId);
    } catch (err) {
      if (!isS3Error(err, 'NoSuchUpload', 'Http404')) throw err; // gone meanwhile
    }
  }
  return empty;
}

async function deleteStaged(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let deleted = 0;
  for (;;) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 1000 }));
    const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
    if (keys.length === 0) return deleted;
    const result = await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
    if (result.Errors?.length)
      throw new Error(`could not delete ${result.Errors.length} staged objects under ${prefix}: ${result.Errors[0]?.Code}`);
    deleted += keys.length;
  }
}

export function cleanupUploadActivity(deps: UploadActivityDeps) {
  return async function cleanupUpload(input: CleanupUploadInput): Promise<CleanupUploadResult> {
    const where = `s3://${input.bucket}/${input.key}`;
    try {
      const known = multipartUploadIdOf(input);
      let ids = known ? [known] : [];
      if (!known && input.initiatedAfterMs !== undefined) {
        const after = input.initiatedAfterMs;
        ids = (await uploadsForKey(deps.s3, input.bucket, input.key))
          .filter((u) => !u.initiated || u.initiated.getTime() >= after)
          .map((u) => u.multipartUploadId);
      } else if (!known && input.stagingPrefix !== undefined) {
        ids = await emptyUploadsOfKey(deps.s3, input.bucket, input.key);
      }
      for (const multipartUploadId of ids) {
        let remaining = true;
        for (let round = 0; round < CONFIRM_ROUNDS && remaining; round++) {
          try {
            await deps.s3.send(new AbortMultipartUploadCommand({ Bucket: input.bucket, Key: input.key, UploadId: multipartUploadId }));
          } catch (err) {
            if (!isS3Error(err, 'NoSuchUpload', 'Http404')) throw err;
          }
          remaining = await stillHasParts(deps.s3, input.bucket, input.key, multipartUploadId);
          if (remaining) await new Promise((r) => setTimeout(r, 500 * (round + 1)));
        }
        if (remaining) {
          throw transientFailure(
            UploadFailureType.CleanupIncomplete,
            `multipart upload ${multipartUploadId} of ${where} still exists after ${CONFIRM_ROUNDS} aborts`,
          );
        }
      }
      const stagedObjectsDeleted = input.stagingPrefix ? await deleteStaged(deps.s3, input.bucket, input.stagingPrefix) : 0;
      Context.current().log.info('upload compensated', {
        bucket: input.bucket,
        key: input.key,
        abortedMultipartUploads: ids.length,
        stagedObjectsDeleted,
      });
      return { abortedMultipartUploadIds: ids, stagedObjectsDeleted };
    } catch (err) {
      throw s3Failure(`clean up ${where}`, err);
    }
  };
}
