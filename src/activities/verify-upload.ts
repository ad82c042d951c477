/**
 * verify: before the merge, prove that what S3 holds is exactly the source. ListParts must show
 * every part with its planned size, and the checksums S3 lists (which it validated against the
 * bytes on receipt) must be the ones upload-parts computed from the source — compared batch by
 * batch through 44-byte fingerprints, so no per-part list enters workflow history. The source
 * must be unchanged since inspection (size, modification and change time, inode; ETag for URLs
 * and S3 objects).
 *
 * A full-object CRC given in advance is checked here without reading anything again: the part
 * CRCs S3 lists are combined, part after part, into the CRC of the whole object (see
 * s3/crc-combine.ts) and compared with it — and CompleteMultipartUpload checks it once more.
 *
 * Reading the whole source again is reserved for when it adds something: the caller gave a
 * SHA-256 of the whole file, asked for it (`verify: 'reread'`), gave a CRC the parts do not carry
 * (server-side copies carry none), or the store lists no part checksums (then each part's MD5 ETag
 * is compared). Any mismatch is permanent: the saga compensates instead of merging a wrong object.
 */
import { requireMultipartUploadId } from '../upload/wire-names';
import { createHash } from 'node:crypto';
import type { Part } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import type { TransferMode } from '../upload/integrity';
import { partRange, type PartPlan } from '../upload/part-plan';
import { expectedCrc, type ChecksumAlgorithm, type ExpectedChecksum, type SourceDescriptor } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import { sourceVersionMatches } from './sources/byte-source';
import { bareETag, checksumField, checksumFingerprint, createChecksum, partChecksum, sha256Hex } from '../s3/checksums';
import { s3Failure } from '../s3/classify-error';
import { combineBase64Crcs } from '../s3/crc-combine';
import { listAllParts } from '../s3/list-parts';
import { multipartETag } from '../s3/multipart-etag';

export interface VerifyUploadInput {
  bucket: string;
  key: string;
  /** S3's id of the multipart upload (read with requireMultipartUploadId: recorded inputs name it `uploadId`). */
  multipartUploadId: string;
  source: SourceDescriptor;
  sourceVersion: string;
  plan: Pick<PartPlan, 'size' | 'partSize' | 'partCount'>;
  /** The additional checksum the parts carry. Absent: none (server-side copies); their ETags are compared. */
  checksumAlgorithm?: ChecksumAlgorithm;
  expectedChecksum?: ExpectedChecksum;
  /** How the parts got there. @default 'stream' */
  transfer?: TransferMode;
  /** What upload-parts computed from the source, batch by batch. */
  batches: { firstPart: number; lastPart: number; checksumFingerprint: string }[];
  /**
   * Also re-read the whole source and compare every part's checksum with it (costs one more read
   * of the file). Implied by an expected SHA-256, by an expected CRC the parts do not carry, and by
   * a store that lists no part checksums.
   */
  rereadSource: boolean;
}

export interface VerifyUploadResult {
  partCount: number;
  size: number;
  /** The ETag the completed object will have. */
  expectedETag: string;
  /** SHA-256 of the whole source, hex, when an expected SHA-256 was given. */
  sha256?: string;
  /** The full-object CRC of the parts, when an expected CRC was given (equal to it, or verify failed). */
  fullObjectCrc?: { algorithm: ExpectedChecksum['algorithm']; value: string };
  /** Whether the source was read again (see {@link VerifyUploadInput.rereadSource}). */
  rereadSource: boolean;
}

export function verifyUploadActivity(deps: UploadActivityDeps) {
  return async function verifyUpload(input: VerifyUploadInput): Promise<VerifyUploadResult> {
    const ctx = Context.current();
    const where = `s3://${input.bucket}/${input.key}`;
    let parts;
    try {
      parts = await listAllParts(
        deps.s3,
        { ...input, multipartUploadId: requireMultipartUploadId(input, 'verifyUpload input') },
        ctx.cancellationSignal,
      );
    } catch (err) {
      throw s3Failure(`ListParts of ${where}`, err);
    }
    const byNumber = new Map(parts.map((p) => [p.PartNumber ?? 0, p]));
    for (let n = 1; n <= input.plan.partCount; n++) {
      const part = byNumber.get(n);
      const { length } = partRange(input.plan, n);
      if (!part)
        throw permanentFailure(
          UploadFailureType.PartMissing,
          `part ${n} of ${input.plan.partCount} is missing from the multipart upload of ${where}`,
        );
      if (part.Size !== length) {
        throw permanentFailure(
          UploadFailureType.PartMissing,
          `part ${n} of ${where} has ${part.Size} bytes in S3, but ${length} were planned`,
        );
      }
    }
    if (parts.length !== input.plan.partCount) {
      throw permanentFailure(
        UploadFailureType.PartMissing,
        `S3 lists ${parts.length} parts for ${where}, but ${input.plan.partCount} were planned`,
      );
    }

    const algorithm = input.checksumAlgorithm;
    const field = algorithm ? checksumField(algorithm) : undefined;
    /** What identifies each part's content in S3: its additional checksum, or without one its ETag. */
    const listedOf = (p: Part) => (field ? p[field] : bareETag(p.ETag));
    const listed = new Map(
      parts.flatMap((p) => (p.PartNumber !== undefined && listedOf(p) ? [[p.PartNumber, listedOf(p)!] as const] : [])),
    );
    const crc = expectedCrc(input.expectedChecksum);
    const partsCarryCrc = crc !== undefined && algorithm === crc.algorithm && listed.size === parts.length;
    // Re-reading compares every part with the source directly (and names the part), so it replaces the fingerprints.
    const reread =
      input.rereadSource ||
      input.expectedChecksum?.algorithm === 'SHA256' ||
      (crc !== undefined && !partsCarryCrc) ||
      listed.size !== parts.length;
    if (!reread) {
      for (const batch of input.batches) {
        if (checksumFingerprint(listed, batch.firstPart, batch.lastPart) !== batch.checksumFingerprint) {
          throw permanentFailure(
            UploadFailureType.ChecksumMismatch,
            field
              ? `parts ${batch.firstPart}–${batch.lastPart} of ${where}: the ${algorithm} checksums S3 lists differ from those computed from the source during the upload`
              : `parts ${batch.firstPart}–${batch.lastPart} of ${where}: the part ETags S3 lists differ from those the copies returned during the upload`,
          );
        }
      }
    }
    let fullObjectCrc: VerifyUploadResult['fullObjectCrc'];
    if (crc && partsCarryCrc) {
      // S3 validated each part's CRC against its bytes; combined, they are the CRC of the whole object.
      const combined = combineBase64Crcs(
        crc.algorithm,
        parts.map((p) => ({ checksum: p[checksumField(crc.algorithm)]!, length: p.Size! })),
      );
      if (combined !== crc.value) {
        throw permanentFailure(
          UploadFailureType.ChecksumMismatch,
          `the full-object ${crc.algorithm} of the ${parts.length} parts of ${where} (combined from the part checksums S3 verified) is ${combined}, but the request expected ${crc.value}`,
        );
      }
      fullObjectCrc = { algorithm: crc.algorithm, value: combined };
    }
    const expectedETag = multipartETag(parts.map((p) => p.ETag ?? ''));
    const source = await deps.sources.open(input.source);
    try {
      const stat = await source.stat();
      if (!sourceVersionMatches(input.sourceVersion, stat.version)) {
        throw permanentFailure(UploadFailureType.SourceChanged, `${source.description} changed since the upload started`);
      }
      if (!reread) {
        return {
          partCount: input.plan.partCount,
          size: input.plan.size,
          expectedETag,
          rereadSource: false,
          ...(fullObjectCrc ? { fullObjectCrc } : {}),
        };
      }
      const wholeAlgorithm = input.expectedChecksum?.algorithm;
      const whole = wholeAlgorithm ? createChecksum(wholeAlgorithm) : undefined;
      // One part at a time: one buffer serves them all (see src/s3/part-buffers.ts for why it is reused).
      const buffer = Buffer.allocUnsafeSlow(Math.min(input.plan.partSize, input.plan.size));
      for (let n = 1; n <= input.plan.partCount; n++) {
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason ?? new Error('cancelled');
        const part = byNumber.get(n)!;
        const { offset, length } = partRange(input.plan, n);
        const data = await source.read(offset, length, buffer);
        whole?.update(data);
        const listedChecksum = field ? part[field] : undefined;
        if (algorithm && listedChecksum !== undefined) {
          const computed = await partChecksum(algorithm, data);
          if (listedChecksum !== computed) {
            throw permanentFailure(
              UploadFailureType.ChecksumMismatch,
              `part ${n} of ${where}: S3 holds ${algorithm} ${listedChecksum}, the source has ${computed}`,
            );
          }
        } else {
          const md5 = createHash('md5').update(data).digest('hex');
          const etag = bareETag(part.ETag);
          if (etag !== md5) {
            throw permanentFailure(
              UploadFailureType.ChecksumMismatch,
              `part ${n} of ${where}: S3 holds ETag ${etag}, the source's MD5 is ${md5}`,
            );
          }
        }
        ctx.heartbeat({ verifiedParts: n, partCount: input.plan.partCount });
      }
      const digest = await whole?.digest();
      let sha256: string | undefined;
      if (input.expectedChecksum?.algorithm === 'SHA256') {
        sha256 = Buffer.from(digest!, 'base64').toString('hex');
        if (sha256 !== sha256Hex(input.expectedChecksum.value)) {
          throw permanentFailure(
            UploadFailureType.ChecksumMismatch,
            `SHA-256 of ${source.description} is ${sha256}, but the request expected ${sha256Hex(input.expectedChecksum.value)}`,
          );
        }
      } else if (crc) {
        if (digest !== crc.value) {
          throw permanentFailure(
            UploadFailureType.ChecksumMismatch,
            `${crc.algorithm} of ${source.description} is ${digest}, but the request expected ${crc.value}`,
          );
        }
        fullObjectCrc = { algorithm: crc.algorithm, value: digest };
      }
      return {
        partCount: input.plan.partCount,
        size: input.plan.size,
        expectedETag,
        rereadSource: true,
        ...(sha256 ? { sha256 } : {}),
        ...(fullObjectCrc ? { fullObjectCrc } : {}),
      };
    } catch (err) {
      if (err instanceof ApplicationFailure || err instanceof CancelledFailure) throw err;
      throw s3Failure(`verify ${where}`, err);
    } finally {
      await source.close();
    }
  };
}
