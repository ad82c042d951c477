/**
 * merge: CompleteMultipartUpload — the saga's pivot. Idempotent: if a previous attempt completed
 * the upload but its answer was lost, S3 now says NoSuchUpload (or, with If-None-Match, 412);
 * we then HeadObject and accept the object when its ETag is the one verify predicted for exactly
 * these parts. Anything else is reported, never papered over.
 */
import { CompleteMultipartUploadCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import type { ChecksumAlgorithm } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import { checksumField } from './s3/checksums';
import { isS3Error, s3Failure } from './s3/classify-error';
import { listAllParts } from './s3/list-parts';
import { sameETag } from './s3/multipart-etag';

export interface CompleteUploadInput {
  bucket: string;
  key: string;
  uploadId: string;
  expectedETag: string;
  failIfExists: boolean;
  checksumAlgorithm: ChecksumAlgorithm;
}

export interface CompleteUploadResult {
  etag: string;
  versionId?: string;
  /** The object's checksum as S3 reports it (composite for multipart: "<base64>-<parts>"). */
  checksum?: { algorithm: ChecksumAlgorithm; value: string };
  /** True when an earlier attempt had already completed it. */
  alreadyCompleted: boolean;
}

export function completeUploadActivity(deps: UploadActivityDeps) {
  const field = (a: ChecksumAlgorithm) => checksumField(a);

  async function confirmExisting(input: CompleteUploadInput, why: string): Promise<CompleteUploadResult | undefined> {
    let head;
    try {
      head = await deps.s3.send(new HeadObjectCommand({ Bucket: input.bucket, Key: input.key, ChecksumMode: 'ENABLED' }));
    } catch (err) {
      if (isS3Error(err, 'NotFound', 'NoSuchKey', 'Http404')) return undefined;
      throw s3Failure(`HeadObject s3://${input.bucket}/${input.key} (after ${why})`, err);
    }
    if (!sameETag(head.ETag, input.expectedETag)) return undefined;
    const value = head[field(input.checksumAlgorithm)];
    return {
      etag: head.ETag!,
      ...(head.VersionId ? { versionId: head.VersionId } : {}),
      ...(value ? { checksum: { algorithm: input.checksumAlgorithm, value } } : {}),
      alreadyCompleted: true,
    };
  }

  return async function completeUpload(input: CompleteUploadInput): Promise<CompleteUploadResult> {
    const where = `s3://${input.bucket}/${input.key}`;
    const signal = Context.current().cancellationSignal;
    try {
      const parts = await listAllParts(deps.s3, input, signal);
      const completed = await deps.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: input.bucket,
          Key: input.key,
          UploadId: input.uploadId,
          IfNoneMatch: input.failIfExists ? '*' : undefined,
          MultipartUpload: {
            Parts: parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag, [field(input.checksumAlgorithm)]: p[field(input.checksumAlgorithm)] })),
          },
        }),
        { abortSignal: signal },
      );
      const value = completed[field(input.checksumAlgorithm)];
      return {
        etag: completed.ETag ?? input.expectedETag,
        ...(completed.VersionId ? { versionId: completed.VersionId } : {}),
        ...(value ? { checksum: { algorithm: input.checksumAlgorithm, value } } : {}),
        alreadyCompleted: false,
      };
    } catch (err) {
      if (isS3Error(err, 'NoSuchUpload')) {
        const existing = await confirmExisting(input, 'NoSuchUpload');
        if (existing) return existing;
        throw permanentFailure(
          UploadFailureType.PartMissing,
          `the multipart upload ${input.uploadId} of ${where} no longer exists and no object with the expected ETag ${input.expectedETag} is there`,
        );
      }
      if (isS3Error(err, 'PreconditionFailed', 'Http412')) {
        const existing = await confirmExisting(input, 'PreconditionFailed');
        if (existing) return existing;
        throw permanentFailure(UploadFailureType.ObjectAlreadyExists, `${where} already exists and the request set failIfExists; nothing was overwritten`);
      }
      throw s3Failure(`CompleteMultipartUpload of ${where}`, err);
    }
  };
}
