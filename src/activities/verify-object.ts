/**
 * verify-object: the small-file fast path's verify, after its one PutObject. Proves that the
 * version this upload stored is there with the planned size, the checksum computed from the
 * source (which S3 validated on receipt) and the ETag the PutObject returned — so an object
 * replaced by another writer in the meantime is never reported as this upload's — and that the
 * source is unchanged. With `verify: 'reread'` it also reads the source again and compares its
 * checksum with the one S3 reports.
 *
 * Any mismatch is permanent: the saga then runs put-object's compensation, which deletes what
 * this upload wrote and nothing else. One HeadObject (and a stat), so it runs as a local activity.
 */
import { ApplicationFailure } from '@temporalio/common';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import type { SourceDescriptor } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import type { StoredObject } from './put-object';
import { sourceVersionMatches } from './sources/byte-source';
import { checksumField, partChecksum } from '../s3/checksums';
import { headObjectIfPresent } from '../s3/head-object';
import { s3Failure } from '../s3/classify-error';
import { sameETag } from '../s3/multipart-etag';

export interface VerifyObjectInput {
  bucket: string;
  key: string;
  /** What put-object stored. */
  stored: StoredObject;
  size: number;
  source: SourceDescriptor;
  sourceVersion: string;
  /** Also read the source again and compare its checksum with the stored one. */
  rereadSource: boolean;
}

export interface VerifyObjectResult {
  /** Whether the source was read again. */
  rereadSource: boolean;
}

export function verifyObjectActivity(deps: UploadActivityDeps) {
  return async function verifyObject(input: VerifyObjectInput): Promise<VerifyObjectResult> {
    const where = `s3://${input.bucket}/${input.key}`;
    const { algorithm, value } = input.stored.checksum;
    let head;
    try {
      head = await headObjectIfPresent(deps.s3, { bucket: input.bucket, key: input.key, versionId: input.stored.versionId });
    } catch (err) {
      throw s3Failure(`HeadObject ${where}`, err);
    }
    if (!head) throw permanentFailure(UploadFailureType.PartMissing, `the object this upload stored at ${where} is not there any more`);
    if (!sameETag(head.ETag, input.stored.etag)) {
      throw permanentFailure(
        UploadFailureType.ChecksumMismatch,
        `${where} has ETag ${head.ETag}, not the ${input.stored.etag} this upload stored (replaced by another writer?)`,
      );
    }
    if (head.ContentLength !== input.size) {
      throw permanentFailure(
        UploadFailureType.PartMissing,
        `${where} has ${head.ContentLength} bytes in S3, but ${input.size} were planned`,
      );
    }
    const reported = head[checksumField(algorithm)];
    if (reported !== value) {
      throw permanentFailure(
        UploadFailureType.ChecksumMismatch,
        `S3 reports the ${algorithm} of ${where} as ${reported ?? 'nothing'}, but the source's is ${value}`,
      );
    }
    const source = await deps.sources.open(input.source);
    try {
      if (!sourceVersionMatches(input.sourceVersion, (await source.stat()).version)) {
        throw permanentFailure(UploadFailureType.SourceChanged, `${source.description} changed since the upload started`);
      }
      if (input.rereadSource) {
        const again = await partChecksum(algorithm, await source.read(0, input.size));
        if (again !== value) {
          throw permanentFailure(
            UploadFailureType.ChecksumMismatch,
            `${where}: S3 holds ${algorithm} ${value}, the source read again has ${again}`,
          );
        }
      }
      return { rereadSource: input.rereadSource };
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      throw s3Failure(`verify ${where}`, err);
    } finally {
      await source.close();
    }
  };
}
