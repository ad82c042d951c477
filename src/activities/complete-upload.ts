/**
 * merge: CompleteMultipartUpload — the saga's pivot. Idempotent: if a previous attempt completed
 * the upload but its answer was lost, S3 now says NoSuchUpload (or, with If-None-Match, 412);
 * we then HeadObject and accept the object when its ETag is the one verify predicted for exactly
 * these parts. Anything else is reported, never papered over.
 *
 * A full-object CRC given in advance travels with the request (`x-amz-checksum-*` and
 * `ChecksumType: FULL_OBJECT`): S3 combines the part CRCs and refuses the merge on a mismatch,
 * before the object exists (XAmzContentChecksumMismatch → ChecksumMismatch, compensated). After
 * the merge the object's checksum is read back (HeadObject, ChecksumMode ENABLED) before success is
 * reported; an object that does not carry the expected value is deleted and the merge fails.
 */
import { requireMultipartUploadId } from '../upload/wire-names';
import { CompleteMultipartUploadCommand, DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import type { MultipartChecksumType } from '../upload/integrity';
import { expectedCrc, type ChecksumAlgorithm, type ExpectedChecksum } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import { checksumField } from '../s3/checksums';
import { headObjectIfPresent } from '../s3/head-object';
import { isS3Error, s3Failure } from '../s3/classify-error';
import { listAllParts } from '../s3/list-parts';
import { sameETag } from '../s3/multipart-etag';

export interface CompleteUploadInput {
  bucket: string;
  key: string;
  /** S3's id of the multipart upload (read with requireMultipartUploadId: recorded inputs name it `uploadId`). */
  multipartUploadId: string;
  expectedETag: string;
  failIfExists: boolean;
  /** The additional checksum the parts carry. Absent: none (server-side copies). */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** The multipart upload's checksum type. @default S3's default for the algorithm */
  checksumType?: MultipartChecksumType;
  /** A CRC of it is sent with the merge and read back after it; a SHA-256 was checked by verify. */
  expectedChecksum?: ExpectedChecksum;
}

export interface CompleteUploadResult {
  etag: string;
  versionId?: string;
  /** The object's checksum as S3 reports it (composite: "<base64>-<parts>"; full-object: the CRC of the whole object). */
  checksum?: { algorithm: ChecksumAlgorithm; value: string; type?: MultipartChecksumType };
  /** True when an earlier attempt had already completed it. */
  alreadyCompleted: boolean;
}

type ObjectChecksums = Partial<Record<`Checksum${ChecksumAlgorithm}`, string>> & { ChecksumType?: string };

/** The object's checksum in `answer`; `knownType` stands in when the store does not say (MinIO's CompleteMultipartUpload does not). */
function checksumOf(
  answer: ObjectChecksums,
  algorithm: ChecksumAlgorithm | undefined,
  knownType?: MultipartChecksumType,
): CompleteUploadResult['checksum'] {
  if (!algorithm) return undefined;
  const value = answer[checksumField(algorithm)];
  if (!value) return undefined;
  const type = answer.ChecksumType === 'FULL_OBJECT' || answer.ChecksumType === 'COMPOSITE' ? answer.ChecksumType : knownType;
  return { algorithm, value, ...(type ? { type } : {}) };
}

/** How often the merge heartbeats while it waits for S3 (the step's heartbeat timeout is 30 s). */
const MERGE_HEARTBEAT_INTERVAL_MS = 5_000;

export function completeUploadActivity(deps: UploadActivityDeps) {
  async function confirmExisting(input: CompleteUploadInput, why: string): Promise<CompleteUploadResult | undefined> {
    let head;
    try {
      head = await headObjectIfPresent(deps.s3, { bucket: input.bucket, key: input.key });
    } catch (err) {
      throw s3Failure(`HeadObject s3://${input.bucket}/${input.key} (after ${why})`, err);
    }
    if (!head || !sameETag(head.ETag, input.expectedETag)) return undefined;
    const checksum = checksumOf(head, input.checksumAlgorithm);
    return {
      etag: head.ETag!,
      ...(head.VersionId ? { versionId: head.VersionId } : {}),
      ...(checksum ? { checksum } : {}),
      alreadyCompleted: true,
    };
  }

  /** Reads the merged object's full-object CRC back; deletes the object and fails if it is not the expected one. */
  async function confirmFullObjectCrc(input: CompleteUploadInput, merged: CompleteUploadResult): Promise<CompleteUploadResult> {
    const crc = expectedCrc(input.expectedChecksum);
    if (!crc) return merged;
    const where = `s3://${input.bucket}/${input.key}`;
    let head;
    try {
      head = await deps.s3.send(
        new HeadObjectCommand({ Bucket: input.bucket, Key: input.key, VersionId: merged.versionId, ChecksumMode: 'ENABLED' }),
      );
    } catch (err) {
      throw s3Failure(`HeadObject ${where} (reading its ${crc.algorithm} back after the merge)`, err);
    }
    const reported = checksumOf(head, crc.algorithm);
    if (reported?.value === crc.value && reported.type === 'FULL_OBJECT') return { ...merged, checksum: reported };
    // Our object (same ETag, same version) with the wrong checksum: remove it rather than report it.
    try {
      await deps.s3.send(new DeleteObjectCommand({ Bucket: input.bucket, Key: input.key, VersionId: merged.versionId }));
    } catch (err) {
      throw s3Failure(`DeleteObject ${where} (its ${crc.algorithm} was not the expected one)`, err);
    }
    throw permanentFailure(
      UploadFailureType.ChecksumMismatch,
      `after the merge S3 reports the ${crc.algorithm} of ${where} as ${reported ? `${reported.value} (${reported.type ?? 'type not reported'})` : 'nothing'}, but the request expected the full-object ${crc.value}; the object was deleted`,
    );
  }

  async function merge(input: CompleteUploadInput): Promise<CompleteUploadResult> {
    const where = `s3://${input.bucket}/${input.key}`;
    const signal = Context.current().cancellationSignal;
    const algorithm = input.checksumAlgorithm;
    const field = algorithm ? checksumField(algorithm) : undefined;
    const crc = expectedCrc(input.expectedChecksum);
    const multipartUploadId = requireMultipartUploadId(input, 'completeUpload input');
    try {
      const parts = await listAllParts(deps.s3, { ...input, multipartUploadId }, signal);
      const completed = await deps.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: input.bucket,
          Key: input.key,
          UploadId: multipartUploadId,
          IfNoneMatch: input.failIfExists ? '*' : undefined,
          // S3 recomputes the full-object CRC from the parts and refuses the merge if it differs.
          ...(crc ? { [checksumField(crc.algorithm)]: crc.value, ChecksumType: 'FULL_OBJECT' as const } : {}),
          MultipartUpload: {
            Parts: parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag, ...(field ? { [field]: p[field] } : {}) })),
          },
        }),
        { abortSignal: signal },
      );
      const checksum = checksumOf(completed, algorithm, input.checksumType);
      return await confirmFullObjectCrc(input, {
        etag: completed.ETag ?? input.expectedETag,
        ...(completed.VersionId ? { versionId: completed.VersionId } : {}),
        ...(checksum ? { checksum } : {}),
        alreadyCompleted: false,
      });
    } catch (err) {
      if (isS3Error(err, 'NoSuchUpload')) {
        const existing = await confirmExisting(input, 'NoSuchUpload');
        if (existing) return confirmFullObjectCrc(input, existing);
        throw permanentFailure(
          UploadFailureType.PartMissing,
          `the multipart upload ${multipartUploadId} of ${where} no longer exists and no object with the expected ETag ${input.expectedETag} is there`,
        );
      }
      if (isS3Error(err, 'PreconditionFailed', 'Http412')) {
        const existing = await confirmExisting(input, 'PreconditionFailed');
        if (existing) return confirmFullObjectCrc(input, existing);
        throw permanentFailure(
          UploadFailureType.ObjectAlreadyExists,
          `${where} already exists and the request set failIfExists; nothing was overwritten`,
        );
      }
      if (crc && isS3Error(err, 'XAmzContentChecksumMismatch', 'BadDigest', 'InvalidDigest')) {
        throw permanentFailure(
          UploadFailureType.ChecksumMismatch,
          `S3 refused to complete ${where}: the full-object ${crc.algorithm} of its parts is not the expected ${crc.value} (${(err as Error).name}); nothing was merged`,
        );
      }
      throw s3Failure(`CompleteMultipartUpload of ${where}`, err);
    }
  }

  return async function completeUpload(input: CompleteUploadInput): Promise<CompleteUploadResult> {
    // Heartbeat while S3 merges (a large CompleteMultipartUpload can take minutes): a worker that
    // dies mid-merge is then noticed after the step's heartbeat timeout, not its start-to-close
    // timeout, and another worker retries the (idempotent) merge.
    const ctx = Context.current();
    const beat = setInterval(() => ctx.heartbeat(), MERGE_HEARTBEAT_INTERVAL_MS);
    try {
      const merged = await merge(input);
      // Through the runtime's logger: the line carries workflowId (hence tenant and uploadId) and activityType.
      ctx.log.info('object stored', { bucket: input.bucket, key: input.key, alreadyCompleted: merged.alreadyCompleted ?? false });
      return merged;
    } finally {
      clearInterval(beat);
    }
  };
}
