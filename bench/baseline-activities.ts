/** Activities of the latency baseline (see baseline.ts). */
import { readFile } from 'node:fs/promises';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';

export function createBaselineActivities(s3: S3Client) {
  return {
    async baselineCreate(input: { bucket: string; key: string }): Promise<string> {
      const r = await s3.send(new CreateMultipartUploadCommand({ Bucket: input.bucket, Key: input.key }));
      return r.UploadId!;
    },
    async baselinePart(input: { bucket: string; key: string; path: string; uploadId: string }): Promise<string> {
      const body = await readFile(input.path);
      const r = await s3.send(
        new UploadPartCommand({ Bucket: input.bucket, Key: input.key, UploadId: input.uploadId, PartNumber: 1, Body: body }),
      );
      return r.ETag!;
    },
    async baselineComplete(input: { bucket: string; key: string; uploadId: string; etag: string }): Promise<string> {
      const r = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: input.bucket,
          Key: input.key,
          UploadId: input.uploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: input.etag }] },
        }),
      );
      return r.ETag!;
    },
  };
}
