/**
 * S3 client settings for the embedded MinIO, and idempotent bucket creation.
 *
 * Why a module of its own: the stack, the CLI and tests all need "an S3 client pointed at this
 * MinIO" with the same non-obvious settings (path-style addressing, static credentials), and
 * creating buckets must be idempotent because a kept data directory already has them.
 */
import { BucketAlreadyOwnedByYou, CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

/** The connection facts of an S3-compatible endpoint (a `MinioServer` handle fits). */
export interface S3EndpointInfo {
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/**
 * `S3Client` constructor options for an S3-compatible endpoint: path-style addressing
 * (`http://host:port/bucket/key`, since `bucket.127.0.0.1` does not resolve) and static credentials.
 */
export function s3ClientConfig(info: S3EndpointInfo): S3ClientConfig {
  return {
    endpoint: info.endpoint,
    region: info.region,
    forcePathStyle: true,
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
  };
}

/** Creates each bucket unless it already exists and is ours. */
export async function ensureBuckets(info: S3EndpointInfo, buckets: readonly string[]): Promise<void> {
  if (buckets.length === 0) return;
  const client = new S3Client(s3ClientConfig(info));
  try {
    for (const bucket of buckets) {
      try {
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
      } catch (error) {
        if (!(error instanceof BucketAlreadyOwnedByYou)) throw error;
      }
    }
  } finally {
    client.destroy();
  }
}
