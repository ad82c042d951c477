/**
 * verify: before the merge, prove that what S3 holds is exactly the source. ListParts must show
 * every part with its planned size, and the checksums S3 lists (which it validated against the
 * bytes on receipt) must be the ones upload-parts computed from the source — compared batch by
 * batch through 44-byte fingerprints, so no per-part list enters workflow history. The source
 * must be unchanged since inspection (size, modification time, inode; ETag for URLs).
 *
 * Reading the whole source again is reserved for when it adds something: the caller gave a
 * SHA-256 of the whole file, asked for it (`verify: 'reread'`), or the store lists no part
 * checksums (then each part's MD5 ETag is compared). Any mismatch is permanent: the saga
 * compensates instead of merging a wrong object.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import { partRange, type PartPlan } from '../upload/part-plan';
import type { ChecksumAlgorithm, SourceDescriptor } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import { checksumField, checksumFingerprint, partChecksum, sha256Hex } from './s3/checksums';
import { s3Failure } from './s3/classify-error';
import { listAllParts } from './s3/list-parts';
import { multipartETag } from './s3/multipart-etag';

export interface VerifyUploadInput {
  bucket: string;
  key: string;
  uploadId: string;
  source: SourceDescriptor;
  sourceVersion: string;
  plan: Pick<PartPlan, 'size' | 'partSize' | 'partCount'>;
  checksumAlgorithm: ChecksumAlgorithm;
  expectedChecksum?: { algorithm: 'SHA256'; value: string };
  /** What upload-parts computed from the source, batch by batch. */
  batches: { firstPart: number; lastPart: number; checksumFingerprint: string }[];
  /**
   * Also re-read the whole source and compare every part's checksum with it (costs one more read
   * of the file). Implied by `expectedChecksum` and by a store that lists no part checksums.
   */
  rereadSource: boolean;
}

export interface VerifyUploadResult {
  partCount: number;
  size: number;
  /** The ETag the completed object will have. */
  expectedETag: string;
  /** SHA-256 of the whole source, hex, when an expected checksum was given. */
  sha256?: string;
  /** Whether the source was read again (see {@link VerifyUploadInput.rereadSource}). */
  rereadSource: boolean;
}

export function verifyUploadActivity(deps: UploadActivityDeps) {
  return async function verifyUpload(input: VerifyUploadInput): Promise<VerifyUploadResult> {
    const ctx = Context.current();
    const where = `s3://${input.bucket}/${input.key}`;
    let parts;
    try {
      parts = await listAllParts(deps.s3, input, ctx.cancellationSignal);
    } catch (err) {
      throw s3Failure(`ListParts of ${where}`, err);
    }
    const byNumber = new Map(parts.map((p) => [p.PartNumber ?? 0, p]));
    for (let n = 1; n <= input.plan.partCount; n++) {
      const part = byNumber.get(n);
      const { length } = partRange(input.plan, n);
      if (!part) throw permanentFailure(UploadFailureType.PartMissing, `part ${n} of ${input.plan.partCount} is missing from the multipart upload of ${where}`);
      if (part.Size !== length) {
        throw permanentFailure(UploadFailureType.PartMissing, `part ${n} of ${where} has ${part.Size} bytes in S3, but ${length} were planned`);
      }
    }
    if (parts.length !== input.plan.partCount) {
      throw permanentFailure(UploadFailureType.PartMissing, `S3 lists ${parts.length} parts for ${where}, but ${input.plan.partCount} were planned`);
    }

    const field = checksumField(input.checksumAlgorithm);
    const listed = new Map(parts.flatMap((p) => (p.PartNumber !== undefined && p[field] ? [[p.PartNumber, p[field]!] as const] : [])));
    // Re-reading compares every part with the source directly (and names the part), so it replaces the fingerprints.
    const reread = input.rereadSource || input.expectedChecksum !== undefined || listed.size !== parts.length;
    if (!reread) {
      for (const batch of input.batches) {
        if (checksumFingerprint(listed, batch.firstPart, batch.lastPart) !== batch.checksumFingerprint) {
          throw permanentFailure(
            UploadFailureType.ChecksumMismatch,
            `parts ${batch.firstPart}–${batch.lastPart} of ${where}: the ${input.checksumAlgorithm} checksums S3 lists differ from those computed from the source during the upload`,
          );
        }
      }
    }
    const expectedETag = multipartETag(parts.map((p) => p.ETag ?? ''));
    const source = await deps.sources.open(input.source);
    try {
      const stat = await source.stat();
      if (stat.version !== input.sourceVersion) {
        throw permanentFailure(UploadFailureType.SourceChanged, `${source.description} changed since the upload started`);
      }
      if (!reread) {
        return { partCount: input.plan.partCount, size: input.plan.size, expectedETag, rereadSource: false };
      }
      const whole = input.expectedChecksum ? createHash('sha256') : undefined;
      for (let n = 1; n <= input.plan.partCount; n++) {
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
        const part = byNumber.get(n)!;
        const { offset, length } = partRange(input.plan, n);
        const data = await source.read(offset, length);
        whole?.update(data);
        const listed = part[field];
        if (listed !== undefined) {
          const computed = partChecksum(input.checksumAlgorithm, data);
          if (listed !== computed) {
            throw permanentFailure(UploadFailureType.ChecksumMismatch, `part ${n} of ${where}: S3 holds ${input.checksumAlgorithm} ${listed}, the source has ${computed}`);
          }
        } else {
          const md5 = createHash('md5').update(data).digest('hex');
          const etag = part.ETag?.replace(/"/g, '');
          if (etag !== md5) {
            throw permanentFailure(UploadFailureType.ChecksumMismatch, `part ${n} of ${where}: S3 holds ETag ${etag}, the source's MD5 is ${md5}`);
          }
        }
        ctx.heartbeat({ verifiedParts: n, partCount: input.plan.partCount });
      }
      const sha256 = whole?.digest('hex');
      if (input.expectedChecksum && sha256 !== sha256Hex(input.expectedChecksum.value)) {
        throw permanentFailure(
          UploadFailureType.ChecksumMismatch,
          `SHA-256 of ${source.description} is ${sha256}, but the request expected ${sha256Hex(input.expectedChecksum.value)}`,
        );
      }
      return { partCount: input.plan.partCount, size: input.plan.size, expectedETag, rereadSource: true, ...(sha256 ? { sha256 } : {}) };
    } catch (err) {
      if (err instanceof ApplicationFailure || err instanceof CancelledFailure) throw err;
      throw s3Failure(`verify ${where}`, err);
    } finally {
      await source.close();
    }
  };
}
