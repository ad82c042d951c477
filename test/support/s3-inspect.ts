/**
 * Independent looks into MinIO for assertions: what objects, multipart uploads and staged
 * objects exist. Uses the S3 API directly, not the code under test.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

export async function incompleteUploads(s3: S3Client, bucket: string, key: string): Promise<string[]> {
  const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return (page.Uploads ?? []).filter((u) => u.Key === key).map((u) => u.UploadId!);
}

export async function objectSha256(s3: S3Client, bucket: string, key: string): Promise<string> {
  const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of object.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
  return hash.digest('hex');
}

export async function objectExists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

export async function keysUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key!);
}

/**
 * Keys of the multipart uploads in progress under `prefix`. MinIO lists multipart uploads by a
 * prefix only when the prefix is a whole key (any other prefix lists none), so every upload of the
 * bucket is listed and filtered here.
 */
export async function multipartKeysUnder(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
  for (;;) {
    const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, ...markers }));
    keys.push(...(page.Uploads ?? []).map((u) => u.Key!).filter((key) => key.startsWith(prefix)));
    if (!page.IsTruncated) return keys;
    markers = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
  }
}
