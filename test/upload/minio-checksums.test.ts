/**
 * What the MinIO built here does with checksums and server-side copies — pinned, because the
 * saga's integrity design rests on it (src/upload/integrity.ts, README "Checksums"). If a MinIO
 * upgrade changes any of this, this file says exactly what changed.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksumField, partChecksum } from '../../src/s3/checksums';
import { combineBase64Crcs } from '../../src/s3/crc-combine';
import { FULL_OBJECT_CRC_ALGORITHMS, type FullObjectCrcAlgorithm } from '../../src/upload/request';
import { MiB } from '../support/files';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';
import { incompleteUploads, objectExists } from '../support/s3-inspect';

const BUCKET = 'uploads';
let stack: TestStack;
const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(1234)];
const whole = Buffer.concat(parts);

beforeAll(async () => {
  stack = await connectTestStack();
});
afterAll(async () => {
  await stack?.close();
});

/** A multipart upload of `parts` with `algorithm` part checksums; returns what completing needs. */
async function uploadWithChecksums(key: string, algorithm: FullObjectCrcAlgorithm, type?: 'FULL_OBJECT') {
  const created = await stack.s3.send(
    new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: algorithm, ...(type ? { ChecksumType: type } : {}) }),
  );
  const field = checksumField(algorithm);
  const completed: CompletedPart[] = [];
  for (const [i, body] of parts.entries()) {
    const checksum = await partChecksum(algorithm, body);
    const sent = await stack.s3.send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: created.UploadId,
        PartNumber: i + 1,
        Body: body,
        ChecksumAlgorithm: algorithm,
        [field]: checksum,
      }),
    );
    completed.push({ PartNumber: i + 1, ETag: sent.ETag, [field]: checksum });
  }
  return { uploadId: created.UploadId!, createdType: created.ChecksumType, field, completed };
}

const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error & { $metadata?: { httpStatusCode?: number } },
  );

describe('MinIO: full-object multipart checksums', () => {
  it.each(FULL_OBJECT_CRC_ALGORITHMS)(
    '%s: verifies a full-object checksum given at CompleteMultipartUpload and reports it afterwards',
    async (algorithm) => {
      const key = `probe/${uniqueId(`full-${algorithm}`)}`;
      const { uploadId, createdType, field, completed } = await uploadWithChecksums(key, algorithm, 'FULL_OBJECT');
      expect(createdType).toBe('FULL_OBJECT');
      // ListParts: the part CRCs S3 verified, from which the whole object's CRC can be combined.
      const listed = await stack.s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
      expect(listed.ChecksumType).toBe('FULL_OBJECT');
      const fullObject = await partChecksum(algorithm, whole);
      expect(
        combineBase64Crcs(
          algorithm,
          listed.Parts!.map((p) => ({ checksum: p[field]!, length: p.Size! })),
        ),
      ).toBe(fullObject);

      await stack.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId: uploadId,
          ChecksumType: 'FULL_OBJECT',
          [field]: fullObject,
          MultipartUpload: { Parts: completed },
        }),
      );
      const head = await stack.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: 'ENABLED' }));
      expect({ value: head[field], type: head.ChecksumType }).toEqual({ value: fullObject, type: 'FULL_OBJECT' });
    },
  );

  it.each(FULL_OBJECT_CRC_ALGORITHMS)(
    '%s: refuses to complete with a wrong full-object checksum, before the object exists',
    async (algorithm) => {
      const key = `probe/${uniqueId(`wrong-${algorithm}`)}`;
      const { uploadId, field, completed } = await uploadWithChecksums(key, algorithm, 'FULL_OBJECT');
      const wrong = await partChecksum(algorithm, Buffer.from('something else'));
      const err = await errorOf(
        stack.s3.send(
          new CompleteMultipartUploadCommand({
            Bucket: BUCKET,
            Key: key,
            UploadId: uploadId,
            ChecksumType: 'FULL_OBJECT',
            [field]: wrong,
            MultipartUpload: { Parts: completed },
          }),
        ),
      );
      expect(err).toMatchObject({ name: 'XAmzContentChecksumMismatch', $metadata: { httpStatusCode: 400 } });
      expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
      expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([uploadId]); // the upload stays: the saga's cleanup aborts it
      await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
    },
  );

  it('makes CRC64NVME part checksums full-object even without ChecksumType', async () => {
    const key = `probe/${uniqueId('crc64-default')}`;
    const { uploadId, createdType } = await uploadWithChecksums(key, 'CRC64NVME');
    expect(createdType).toBe('FULL_OBJECT');
    await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
  });

  it('refuses a full-object SHA-256 multipart upload', async () => {
    const err = await errorOf(
      stack.s3.send(
        new CreateMultipartUploadCommand({
          Bucket: BUCKET,
          Key: `probe/${uniqueId('sha')}`,
          ChecksumAlgorithm: 'SHA256',
          ChecksumType: 'FULL_OBJECT',
        }),
      ),
    );
    expect(err?.$metadata?.httpStatusCode).toBe(400);
  });
});

describe('MinIO: UploadPartCopy', () => {
  let sourceKey: string;
  let sourceETag: string;
  beforeAll(async () => {
    sourceKey = `probe/${uniqueId('copy-source')}`;
    sourceETag = (await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: sourceKey, Body: whole }))).ETag!;
  });

  it('copies a range into an upload without additional checksums; the part ETag is the MD5 of the range', async () => {
    const key = `probe/${uniqueId('copy')}`;
    const { UploadId } = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const copied = await stack.s3.send(
      new UploadPartCopyCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId,
        PartNumber: 1,
        CopySource: `${BUCKET}/${sourceKey}`,
        CopySourceRange: `bytes=0-${5 * MiB - 1}`,
        CopySourceIfMatch: sourceETag,
      }),
    );
    expect(copied.CopyPartResult?.ETag?.replace(/"/g, '')).toBe(createHash('md5').update(parts[0]!).digest('hex'));
    await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId }));
  });

  it.each(['CRC32C', 'CRC64NVME'] as const)(
    'refuses to copy into an upload created with %s (UploadPartCopy cannot carry one)',
    async (algorithm) => {
      const key = `probe/${uniqueId('copy-checksum')}`;
      const { UploadId } = await stack.s3.send(
        new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: algorithm, ChecksumType: 'FULL_OBJECT' }),
      );
      const err = await errorOf(
        stack.s3.send(
          new UploadPartCopyCommand({
            Bucket: BUCKET,
            Key: key,
            UploadId,
            PartNumber: 1,
            CopySource: `${BUCKET}/${sourceKey}`,
            CopySourceRange: `bytes=0-${5 * MiB - 1}`,
          }),
        ),
      );
      expect(err).toMatchObject({ name: 'InvalidArgument' });
      expect(err?.message).toContain(`checksum missing, want "${algorithm}"`);
      await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId }));
    },
  );

  it('refuses a copy whose CopySourceIfMatch no longer holds (412)', async () => {
    const key = `probe/${uniqueId('copy-changed')}`;
    const { UploadId } = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const err = await errorOf(
      stack.s3.send(
        new UploadPartCopyCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId,
          PartNumber: 1,
          CopySource: `${BUCKET}/${sourceKey}`,
          CopySourceRange: 'bytes=0-9',
          CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"',
        }),
      ),
    );
    expect(err).toMatchObject({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId }));
  });
});
