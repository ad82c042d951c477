/**
 * put-object: the small-file fast path's write. A source that fits in one part (see
 * upload/one-put.ts) is read once into memory and stored with ONE PutObject carrying its
 * checksum, which S3 validates on receipt: no multipart upload to create, list, complete or abort.
 *
 * Why it checks before it sends: unlike a multipart upload, a PutObject is visible the moment it
 * lands, and in a bucket without versioning it replaces what was there. So everything that can be
 * known from the bytes in hand is checked first, and a failure here means nothing was written:
 * the source is unchanged since inspection (before and after the read), and a checksum the caller
 * gave (SHA-256 or a CRC) is the one of these bytes.
 *
 * Idempotent: a retry sends the same bytes again (an overwrite with identical content). With
 * `failIfExists` the PutObject carries `If-None-Match: *`; a 412 whose object has this upload's
 * checksum and size is taken as the earlier attempt's own write (the rule the multipart merge
 * follows), anything else is `ObjectAlreadyExists`.
 *
 * Failures after the request may have reached the store carry {@link PutObjectFailureDetails}, so
 * the compensation (delete-object.ts) can find what this upload may have written, and only that.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import { expectedCrc, type ChecksumAlgorithm, type ExpectedChecksum, type SourceDescriptor } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import { sourceVersionMatches } from './sources/byte-source';
import { checksumField, partChecksum, sha256Hex } from '../s3/checksums';
import { headObjectIfPresent } from '../s3/head-object';
import { isS3Error, s3Failure } from '../s3/classify-error';
import { withStamp } from '../upload/object-stamp';

export interface PutObjectInput {
  bucket: string;
  key: string;
  source: SourceDescriptor;
  sourceVersion: string;
  size: number;
  /** The checksum the PutObject carries and S3 validates. */
  checksumAlgorithm: ChecksumAlgorithm;
  /** Checked against the bytes before anything is sent. */
  expectedChecksum?: ExpectedChecksum;
  failIfExists: boolean;
  contentType: string;
  metadata: Record<string, string>;
}

/** The object this upload wrote: what verify checks and the compensation deletes. */
export interface StoredObject {
  etag: string;
  /** Present in a bucket with versioning: the compensation deletes exactly this version. */
  versionId?: string;
  /** The object's checksum, computed from the bytes sent (S3 validated it on receipt). */
  checksum: { algorithm: ChecksumAlgorithm; value: string; type: 'FULL_OBJECT' };
}

export interface PutObjectResult extends StoredObject {
  /** SHA-256 of the object, hex, when the caller gave an expected SHA-256. */
  sha256?: string;
  /** True when the object was already there with this checksum (an earlier attempt's write). */
  alreadyStored: boolean;
}

/** Attached to failures that may have happened after the store got the request. */
export interface PutObjectFailureDetails {
  checksum: StoredObject['checksum'];
}

export function putObjectActivity(deps: UploadActivityDeps) {
  return async function putObject(input: PutObjectInput): Promise<PutObjectResult> {
    const signal = Context.current().cancellationSignal;
    const where = `s3://${input.bucket}/${input.key}`;
    const startedAt = performance.now();
    const source = await deps.sources.open(input.source);
    let body: Buffer;
    try {
      const unchanged = async () => {
        if (!sourceVersionMatches(input.sourceVersion, (await source.stat()).version)) {
          throw permanentFailure(UploadFailureType.SourceChanged, `${source.description} changed since the upload started`);
        }
      };
      await unchanged();
      body = await source.read(0, input.size);
      await unchanged();
    } finally {
      await source.close();
    }
    const value = await partChecksum(input.checksumAlgorithm, body);
    const checksum = { algorithm: input.checksumAlgorithm, value, type: 'FULL_OBJECT' as const };
    let sha256: string | undefined;
    const expected = input.expectedChecksum;
    if (expected?.algorithm === 'SHA256') {
      sha256 = Buffer.from(await partChecksum('SHA256', body), 'base64').toString('hex');
      if (sha256 !== sha256Hex(expected.value)) {
        throw permanentFailure(
          UploadFailureType.ChecksumMismatch,
          `SHA-256 of ${source.description} is ${sha256}, but the request expected ${sha256Hex(expected.value)}; nothing was written`,
        );
      }
    }
    const crc = expectedCrc(expected);
    if (crc) {
      // Validation guarantees checksumAlgorithm === crc.algorithm when a CRC is expected.
      const actual = crc.algorithm === input.checksumAlgorithm ? value : await partChecksum(crc.algorithm, body);
      if (actual !== crc.value) {
        throw permanentFailure(
          UploadFailureType.ChecksumMismatch,
          `${crc.algorithm} of ${source.description} is ${actual}, but the request expected ${crc.value}; nothing was written`,
        );
      }
    }

    const field = checksumField(input.checksumAlgorithm);
    const details: PutObjectFailureDetails[] = [{ checksum }];
    try {
      const put = await deps.s3.send(
        new PutObjectCommand({
          Bucket: input.bucket,
          Key: input.key,
          Body: body,
          ContentLength: input.size,
          ContentType: input.contentType,
          Metadata: withStamp(input.metadata, Context.current().info.workflowExecution?.workflowId ?? ''),
          ChecksumAlgorithm: input.checksumAlgorithm,
          [field]: value,
          ...(input.failIfExists ? { IfNoneMatch: '*' } : {}),
        }),
        { abortSignal: signal },
      );
      if (!put.ETag) throw new Error(`PutObject ${where} returned no ETag`);
      // The one part of this upload, in the same histogram as multipart parts.
      deps.metrics?.partUploaded('upload', input.source.type, input.size, (performance.now() - startedAt) / 1000);
      return {
        etag: put.ETag,
        ...(put.VersionId ? { versionId: put.VersionId } : {}),
        checksum,
        ...(sha256 ? { sha256 } : {}),
        alreadyStored: false,
      };
    } catch (err) {
      if (signal.aborted) throw new CancelledFailure('put-object was cancelled', details);
      if (err instanceof ApplicationFailure) throw err;
      if (input.failIfExists && isS3Error(err, 'PreconditionFailed', 'Http412')) {
        const existing = await storedWithChecksum(deps, input, checksum);
        if (existing) return { ...existing, ...(sha256 ? { sha256 } : {}), alreadyStored: true };
        throw permanentFailure(
          UploadFailureType.ObjectAlreadyExists,
          `${where} already exists and the request set failIfExists; nothing was overwritten`,
        );
      }
      throw s3Failure(`PutObject ${where}`, err, details);
    }
  };
}

/** The object at the key when it has `checksum` and the planned size; undefined otherwise. */
async function storedWithChecksum(
  deps: UploadActivityDeps,
  input: PutObjectInput,
  checksum: StoredObject['checksum'],
): Promise<StoredObject | undefined> {
  let head;
  try {
    head = await headObjectIfPresent(deps.s3, { bucket: input.bucket, key: input.key });
  } catch (err) {
    throw s3Failure(`HeadObject s3://${input.bucket}/${input.key} (after PreconditionFailed)`, err, [{ checksum }]);
  }
  if (!head || head.ContentLength !== input.size || head[checksumField(checksum.algorithm)] !== checksum.value || !head.ETag)
    return undefined;
  return { etag: head.ETag, ...(head.VersionId ? { versionId: head.VersionId } : {}), checksum };
}
