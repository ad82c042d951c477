/**
 * SHA-256 of an object as S3 serves it: the demo's end-to-end check that what landed in the
 * bucket is byte for byte what was uploaded — independent of the saga's own verification.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/** Streams the object and hashes it. @returns SHA-256, hex */
export async function sha256OfObject(s3: S3Client, bucket: string, key: string): Promise<string> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!(response.Body instanceof Readable)) throw new Error(`GetObject s3://${bucket}/${key} returned no stream`);
  const hash = createHash('sha256');
  await pipeline(response.Body, hash);
  return hash.digest('hex');
}
