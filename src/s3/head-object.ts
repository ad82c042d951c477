/**
 * HeadObject for a step that asks "is it there, and what is it?": the object's metadata with its
 * checksum (ChecksumMode ENABLED), or undefined when the key (or the version asked for) does not
 * exist. Any other error is thrown as it is, for the caller to classify.
 */
import { HeadObjectCommand, type HeadObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { isS3Error } from './classify-error';

export async function headObjectIfPresent(
  s3: S3Client,
  target: { bucket: string; key: string; versionId?: string },
  abortSignal?: AbortSignal,
): Promise<HeadObjectCommandOutput | undefined> {
  try {
    return await s3.send(
      new HeadObjectCommand({ Bucket: target.bucket, Key: target.key, VersionId: target.versionId, ChecksumMode: 'ENABLED' }),
      { abortSignal },
    );
  } catch (err) {
    if (isS3Error(err, 'NotFound', 'NoSuchKey', 'NoSuchVersion', 'Http404')) return undefined;
    throw err;
  }
}
