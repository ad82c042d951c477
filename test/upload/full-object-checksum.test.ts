/**
 * Full-object CRCs given in advance (`expectedChecksum: { algorithm: 'CRC64NVME' | 'CRC32C' | 'CRC32', value }`)
 * and CRC64NVME part checksums: through the whole saga, and the merge activity on its own for the
 * two checks the saga cannot reach with honest inputs (S3 refusing the merge; the read-back after it).
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities, LocalFileResolver, type UploadActivities } from '../../src/activities';
import { partChecksum } from '../../src/s3/checksums';
import { UploadClient, UploadFailedError } from '../../src/client';
import { planParts } from '../../src/upload/part-plan';
import { normalizeUploadRequest } from '../../src/upload/request';
import { makeRandomFile, makeTempDir, MiB, type TestFile } from '../support/files';
import { connectTestStack, startUploadWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { incompleteUploads, objectExists, objectSha256 } from '../support/s3-inspect';
import { unusedQuotaLedger } from '../support/unused-quota-ledger';

const BUCKET = 'uploads';
const TENANT = uniqueId('acme');
let stack: TestStack;
let worker: RunningWorker;
let uploads: UploadClient;
let activities: UploadActivities;
let tmp: { dir: string; remove(): Promise<void> };
let file: TestFile;
let content: Buffer;

function run<A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> {
  return new MockActivityEnvironment({}).run(fn as never, ...(args as unknown as never[])) as Promise<R>;
}

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
  tmp = await makeTempDir();
  activities = createActivities({ s3: stack.s3, sources: new LocalFileResolver({ allowedRoots: [tmp.dir] }), quota: unusedQuotaLedger });
  file = await makeRandomFile(tmp.dir, 'full-object.bin', 12 * MiB + 321); // 3 parts of 5 MiB
  content = await readFile(file.path);
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

const request = (key: string, extra: Record<string, unknown>) => ({
  uploadId: uniqueId('crc'),
  tenant: TENANT,
  source: { type: 'file' as const, path: file.path },
  destination: { bucket: BUCKET, key },
  partSize: 5 * MiB,
  ...extra,
});

describe('full-object CRCs through the saga', () => {
  it.each(['CRC64NVME', 'CRC32C', 'CRC32'] as const)(
    '%s given in advance: S3 reports exactly that full-object checksum',
    async (algorithm) => {
      const value = await partChecksum(algorithm, content);
      const key = `full-object/${uniqueId(algorithm)}.bin`;
      const result = await (await uploads.start(request(key, { expectedChecksum: { algorithm, value } }))).result();
      expect(result.checksum).toEqual({ algorithm, value, type: 'FULL_OBJECT' });
      const head = await stack.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: 'ENABLED' }));
      expect({ value: head[`Checksum${algorithm}`], type: head.ChecksumType }).toEqual({ value, type: 'FULL_OBJECT' });
      expect(await objectSha256(stack.s3, BUCKET, key)).toBe(file.sha256);
    },
  );

  it('CRC64NVME part checksums without an expected value: the object gets its full-object CRC64NVME', async () => {
    const key = `full-object/${uniqueId('crc64')}.bin`;
    const result = await (await uploads.start(request(key, { checksumAlgorithm: 'CRC64NVME' }))).result();
    expect(result.checksum).toEqual({ algorithm: 'CRC64NVME', value: await partChecksum('CRC64NVME', content), type: 'FULL_OBJECT' });
  });

  it('a wrong CRC fails verify before the merge (part CRCs combined, no re-read) and is compensated', async () => {
    const key = `full-object/${uniqueId('wrong')}.bin`;
    const wrong = await partChecksum('CRC32C', Buffer.from('another file'));
    const err = (await (
      await uploads.start(request(key, { expectedChecksum: { algorithm: 'CRC32C', value: wrong } }))
    )
      .result()
      .catch((e: unknown) => e)) as UploadFailedError;
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.report).toMatchObject({ failedStep: 'verify', cause: { type: 'ChecksumMismatch' } });
    expect(err.report?.cause.message).toContain(
      `(combined from the part checksums S3 verified) is ${await partChecksum('CRC32C', content)}, but the request expected ${wrong}`,
    );
    expect(err.outcome).toBe('compensated');
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
    expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
  });
});

describe('the merge with a full-object CRC', () => {
  async function uploadedParts(key: string) {
    const inspection = await run(
      activities.inspectSource,
      normalizeUploadRequest({
        uploadId: uniqueId('i'),
        tenant: 't',
        source: { type: 'file', path: file.path },
        destination: { bucket: BUCKET, key },
        partSize: 5 * MiB,
      }),
    );
    const plan = planParts(file.size, 5 * MiB);
    const parts = await run(activities.uploadParts, {
      bucket: BUCKET,
      key,
      source: { type: 'file' as const, path: file.path },
      sourceVersion: inspection.sourceVersion,
      plan,
      firstPart: 1,
      lastPart: plan.partCount,
      partConcurrency: 2,
      checksumAlgorithm: 'CRC64NVME' as const,
      checksumType: 'FULL_OBJECT' as const,
      contentType: 'application/octet-stream',
      metadata: {},
    });
    const verified = await run(activities.verifyUpload, {
      bucket: BUCKET,
      key,
      multipartUploadId: parts.multipartUploadId,
      source: { type: 'file' as const, path: file.path },
      sourceVersion: inspection.sourceVersion,
      plan,
      checksumAlgorithm: 'CRC64NVME' as const,
      expectedChecksum: { algorithm: 'CRC64NVME' as const, value: await partChecksum('CRC64NVME', content) },
      batches: [{ firstPart: 1, lastPart: plan.partCount, checksumFingerprint: parts.checksumFingerprint }],
      rereadSource: false,
    });
    // Checked from the part CRCs alone: no re-read of the file.
    expect(verified).toMatchObject({
      rereadSource: false,
      fullObjectCrc: { algorithm: 'CRC64NVME', value: await partChecksum('CRC64NVME', content) },
    });
    return { multipartUploadId: parts.multipartUploadId, expectedETag: verified.expectedETag };
  }

  it('S3 refuses to merge parts whose combined CRC is not the expected one: nothing is created', async () => {
    const key = `full-object/${uniqueId('refused')}.bin`;
    const { multipartUploadId, expectedETag } = await uploadedParts(key);
    const wrong = await partChecksum('CRC64NVME', Buffer.from('not these bytes'));
    const err = await run(activities.completeUpload, {
      bucket: BUCKET,
      key,
      multipartUploadId,
      expectedETag,
      failIfExists: false,
      checksumAlgorithm: 'CRC64NVME' as const,
      checksumType: 'FULL_OBJECT' as const,
      expectedChecksum: { algorithm: 'CRC64NVME' as const, value: wrong },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'ChecksumMismatch', nonRetryable: true });
    // The error code differs by store: MinIO's XAmzContentChecksumMismatch, versitygw's BadDigest.
    expect((err as Error).message).toContain(
      `S3 refused to complete s3://${BUCKET}/${key}: the full-object CRC64NVME of its parts is not the expected ${wrong} (${inject('s3Store') === 'minio' ? 'XAmzContentChecksumMismatch' : 'BadDigest'}); nothing was merged`,
    );
    expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([multipartUploadId]); // left for the compensation
    await run(activities.cleanupUpload, { bucket: BUCKET, key, multipartUploadId });
  });

  it('reads the checksum back after the merge; a retried merge accepts its object only with that checksum, and deletes it otherwise', async () => {
    const key = `full-object/${uniqueId('readback')}.bin`;
    const { multipartUploadId, expectedETag } = await uploadedParts(key);
    const value = await partChecksum('CRC64NVME', content);
    const input = {
      bucket: BUCKET,
      key,
      multipartUploadId,
      expectedETag,
      failIfExists: false,
      checksumAlgorithm: 'CRC64NVME' as const,
      checksumType: 'FULL_OBJECT' as const,
      expectedChecksum: { algorithm: 'CRC64NVME' as const, value },
    };
    expect(await run(activities.completeUpload, input)).toMatchObject({
      alreadyCompleted: false,
      checksum: { algorithm: 'CRC64NVME', value, type: 'FULL_OBJECT' },
    });
    // Its answer "lost", the merge runs again: NoSuchUpload, then HeadObject finds the object with the expected checksum.
    expect(await run(activities.completeUpload, input)).toMatchObject({ alreadyCompleted: true, checksum: { value, type: 'FULL_OBJECT' } });

    // The same object read back against another expected CRC: never reported as success, and removed.
    const other = await partChecksum('CRC64NVME', Buffer.from('something else'));
    const err = await run(activities.completeUpload, {
      ...input,
      expectedChecksum: { algorithm: 'CRC64NVME' as const, value: other },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'ChecksumMismatch', nonRetryable: true });
    expect((err as Error).message).toContain(
      `after the merge S3 reports the CRC64NVME of s3://${BUCKET}/${key} as ${value} (FULL_OBJECT), but the request expected the full-object ${other}; the object was deleted`,
    );
    expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
  });
});
