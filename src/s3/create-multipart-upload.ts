/**
 * CreateMultipartUpload that leaves no orphan when an answer is lost.
 *
 * Creating a multipart upload is not idempotent: when S3 creates one and its answer is lost (a
 * connection cut after the request was processed), the S3 client's own retry, or the activity's
 * next attempt, creates a second one, and the first is known to nobody — it would hold its parts'
 * storage until a lifecycle rule removes it. So after every create, the uploads of the same key
 * are listed, and those that are ours by construction are aborted: initiated inside this step's
 * window (from `since`, the time the step was first scheduled, to now, both with
 * {@link CLOCK_SKEW_MS} of slack for the store's clock) and holding no part. An upload whose
 * answer was lost has no part, since nobody knew its id to send one; an upload of another writer
 * is left alone unless it was initiated on the same key in the same seconds and has no part yet,
 * which the docs name as the one remaining overlap (an upload is expected to own its key).
 */
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  type CreateMultipartUploadCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { isS3Error } from './classify-error';
import { listAllParts } from './list-parts';

/** Slack for the difference between the worker's clock and the store's `Initiated` timestamps. */
export const CLOCK_SKEW_MS = 5_000;

/** A multipart upload in progress, as ListMultipartUploads reports it. */
export interface OpenMultipartUpload {
  multipartUploadId: string;
  initiated?: Date;
}

/** The multipart uploads in progress for exactly `key` (all pages). */
export async function uploadsForKey(s3: S3Client, bucket: string, key: string, abortSignal?: AbortSignal): Promise<OpenMultipartUpload[]> {
  const found: OpenMultipartUpload[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      { abortSignal },
    );
    for (const u of page.Uploads ?? []) {
      if (u.Key === key && u.UploadId) found.push({ multipartUploadId: u.UploadId, ...(u.Initiated ? { initiated: u.Initiated } : {}) });
    }
    if (!page.IsTruncated) return found;
    keyMarker = page.NextKeyMarker;
    uploadIdMarker = page.NextUploadIdMarker;
  }
}

/** What {@link createMultipartUpload} created, and the orphans of lost answers it aborted. */
export interface CreatedMultipartUpload {
  multipartUploadId: string;
  /** Uploads of the key created by an earlier, unanswered CreateMultipartUpload of this step. */
  abortedOrphans: string[];
}

/**
 * Creates a multipart upload, then aborts the uploads of the same key that an earlier create of
 * this step left behind without an answer (see the module comment).
 * @param since when the step was first scheduled (epoch ms): uploads initiated before it are never touched
 */
export async function createMultipartUpload(
  s3: S3Client,
  input: CreateMultipartUploadCommandInput & { Bucket: string; Key: string },
  since: number,
  abortSignal?: AbortSignal,
): Promise<CreatedMultipartUpload> {
  const created = await s3.send(new CreateMultipartUploadCommand(input), { abortSignal });
  if (!created.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  const multipartUploadId = created.UploadId;
  const until = Date.now() + CLOCK_SKEW_MS;
  const candidates = (await uploadsForKey(s3, input.Bucket, input.Key, abortSignal)).filter(
    (u) =>
      u.multipartUploadId !== multipartUploadId &&
      u.initiated !== undefined &&
      u.initiated.getTime() >= since - CLOCK_SKEW_MS &&
      u.initiated.getTime() <= until,
  );
  const abortedOrphans: string[] = [];
  for (const candidate of candidates) {
    const target = { bucket: input.Bucket, key: input.Key, multipartUploadId: candidate.multipartUploadId };
    const parts = await listAllParts(s3, target, abortSignal).catch((err: unknown) => {
      if (isS3Error(err, 'NoSuchUpload', 'Http404')) return undefined; // gone meanwhile
      throw err;
    });
    if (parts === undefined || parts.length > 0) continue;
    try {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: input.Bucket, Key: input.Key, UploadId: candidate.multipartUploadId }), {
        abortSignal,
      });
    } catch (err) {
      if (!isS3Error(err, 'NoSuchUpload', 'Http404')) throw err;
    }
    abortedOrphans.push(candidate.multipartUploadId);
  }
  return { multipartUploadId, abortedOrphans };
}
