/**
 * The upload activities one by one against the real MinIO: resume, idempotent merge, cleanup
 * that confirms, the part-size raise at S3's part limit. Temporal's activity context is the SDK's
 * MockActivityEnvironment (heartbeats, attempt, heartbeat details); the bytes are real.
 */
import { writeFile, open } from 'node:fs/promises';
import path from 'node:path';
import { CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type UploadActivities } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { partChecksum } from '../../src/s3/checksums';
import { planParts } from '../../src/upload/part-plan';
import { normalizeUploadRequest } from '../../src/upload/request';
import { makeRandomFile, makeTempDir, MiB, type TestFile } from '../support/files';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';
import { incompleteUploads, keysUnder, objectSha256 } from '../support/s3-inspect';
import { unusedQuotaLedger } from '../support/unused-quota-ledger';

const BUCKET = 'uploads';
let stack: TestStack;
let activities: UploadActivities;
let tmp: { dir: string; remove(): Promise<void> };
let file: TestFile;

beforeAll(async () => {
  stack = await connectTestStack();
  tmp = await makeTempDir();
  activities = createActivities({ s3: stack.s3, sources: new LocalFileResolver({ allowedRoots: [tmp.dir] }), quota: unusedQuotaLedger });
  file = await makeRandomFile(tmp.dir, 'parts.bin', 17 * MiB);
});

afterAll(async () => {
  await stack?.close();
  await tmp?.remove();
});

async function sourceVersion(filePath: string): Promise<string> {
  const inspection = await run(
    activities.inspectSource,
    {},
    normalizeUploadRequest({
      uploadId: uniqueId('i'),
      tenant: 't',
      source: { type: 'file', path: filePath },
      destination: { bucket: BUCKET, key: 'k' },
      partSize: 5 * MiB,
    }),
  );
  return inspection.sourceVersion;
}

/** Runs an activity in the SDK's mock activity context (optionally as a retried attempt with heartbeat details). */
function run<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  info: ConstructorParameters<typeof MockActivityEnvironment>[0],
  ...args: A
): Promise<R> {
  const env = new MockActivityEnvironment(info);
  return env.run(fn as never, ...(args as unknown as never[])) as Promise<R>;
}

function partsInput(key: string, version: string, range: { firstPart: number; lastPart: number }, multipartUploadId?: string) {
  return {
    bucket: BUCKET,
    key,
    ...(multipartUploadId ? { multipartUploadId } : {}),
    source: { type: 'file' as const, path: file.path },
    sourceVersion: version,
    plan: planParts(file.size, 5 * MiB),
    ...range,
    partConcurrency: 2,
    checksumAlgorithm: 'CRC32C' as const,
    contentType: 'application/octet-stream',
    metadata: {},
  };
}

describe('upload activities against MinIO', () => {
  it('resumes from the upload id in its heartbeat and skips the parts S3 already has', async () => {
    const key = `activities/${uniqueId('resume')}.bin`;
    const version = await sourceVersion(file.path);
    const first = await run(activities.uploadParts, {}, partsInput(key, version, { firstPart: 1, lastPart: 2 }));
    expect(first).toMatchObject({ partsUploaded: 2, partsSkipped: 0, bytesSent: 10 * MiB });

    // A retried attempt whose heartbeat recorded the upload id: parts 1–2 are not sent again.
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: { uploadId: first.multipartUploadId } }); // the recorded name: still read
    const heartbeats: unknown[] = [];
    retry.on('heartbeat', (d: unknown) => heartbeats.push(d));
    const second = (await retry.run(activities.uploadParts, partsInput(key, version, { firstPart: 1, lastPart: 4 }))) as Awaited<
      ReturnType<UploadActivities['uploadParts']>
    >;
    expect(second).toMatchObject({
      multipartUploadId: first.multipartUploadId,
      partsUploaded: 2,
      partsSkipped: 2,
      bytesSent: 7 * MiB,
      batchBytes: 17 * MiB,
    });
    expect(heartbeats.at(-1)).toMatchObject({ multipartUploadId: first.multipartUploadId, partsDone: 4, bytesDone: 17 * MiB });

    // The fingerprint of a resumed batch (skipped parts taken from ListParts) matches what S3 lists.
    const byChecksums = await run(
      activities.verifyUpload,
      {},
      {
        bucket: BUCKET,
        key,
        multipartUploadId: first.multipartUploadId,
        source: { type: 'file' as const, path: file.path },
        sourceVersion: version,
        plan: planParts(file.size, 5 * MiB),
        checksumAlgorithm: 'CRC32C' as const,
        batches: [{ firstPart: 1, lastPart: 4, checksumFingerprint: second.checksumFingerprint }],
        rereadSource: false,
      },
    );
    expect(byChecksums).toMatchObject({ partCount: 4, rereadSource: false });

    const verified = await run(
      activities.verifyUpload,
      {},
      {
        bucket: BUCKET,
        key,
        multipartUploadId: first.multipartUploadId,
        source: { type: 'file' as const, path: file.path },
        sourceVersion: version,
        plan: planParts(file.size, 5 * MiB),
        checksumAlgorithm: 'CRC32C' as const,
        expectedChecksum: { algorithm: 'SHA256' as const, value: file.sha256 },
        batches: [{ firstPart: 1, lastPart: 4, checksumFingerprint: second.checksumFingerprint }],
        rereadSource: false,
      },
    );
    expect(verified).toMatchObject({ partCount: 4, size: file.size, sha256: file.sha256 });

    const completeInput = {
      bucket: BUCKET,
      key,
      multipartUploadId: first.multipartUploadId,
      expectedETag: verified.expectedETag,
      failIfExists: false,
      checksumAlgorithm: 'CRC32C' as const,
    };
    const merged = await run(activities.completeUpload, {}, completeInput);
    expect(merged).toMatchObject({ alreadyCompleted: false, etag: verified.expectedETag });
    // The answer was "lost" and the merge retried: it recognises its own object.
    const again = await run(activities.completeUpload, { attempt: 2 }, completeInput);
    expect(again).toMatchObject({ alreadyCompleted: true, etag: merged.etag });
    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(file.sha256);
  });

  it('rejects a part whose bytes no longer match what S3 holds (verify), naming the part', async () => {
    const key = `activities/${uniqueId('corrupt')}.bin`;
    const copy = await makeRandomFile(tmp.dir, `${uniqueId('corrupt')}.bin`, 11 * MiB);
    const version = await sourceVersion(copy.path);
    const plan = planParts(copy.size, 5 * MiB);
    const input = { ...partsInput(key, version, { firstPart: 1, lastPart: 3 }), source: { type: 'file' as const, path: copy.path }, plan };
    const { multipartUploadId, checksumFingerprint } = await run(activities.uploadParts, {}, input);
    // Overwrite part 2 in S3 with other bytes of the same size: the part is "corrupted".
    // (with a valid checksum of the new bytes, or MinIO would refuse it)
    const other = Buffer.alloc(5 * MiB, 7);
    await stack.s3.send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: multipartUploadId,
        PartNumber: 2,
        Body: other,
        ChecksumAlgorithm: 'CRC32C',
        ChecksumCRC32C: await partChecksum('CRC32C', other),
      }),
    );
    const verifyInput = {
      bucket: BUCKET,
      key,
      multipartUploadId,
      source: input.source,
      sourceVersion: version,
      plan,
      checksumAlgorithm: 'CRC32C' as const,
      batches: [{ firstPart: 1, lastPart: 3, checksumFingerprint }],
    };
    // Default: the checksums S3 lists no longer match the fingerprint computed during the upload.
    const byFingerprint = await run(activities.verifyUpload, {}, { ...verifyInput, rereadSource: false }).catch((e: unknown) => e);
    expect(byFingerprint).toBeInstanceOf(ApplicationFailure);
    expect(byFingerprint).toMatchObject({ type: 'ChecksumMismatch', nonRetryable: true });
    expect((byFingerprint as Error).message).toContain(
      `parts 1–3 of s3://${BUCKET}/${key}: the CRC32C checksums S3 lists differ from those computed from the source`,
    );
    // Re-reading the source names the part.
    const err = await run(activities.verifyUpload, {}, { ...verifyInput, rereadSource: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'ChecksumMismatch', nonRetryable: true });
    expect((err as Error).message).toContain(`part 2 of s3://${BUCKET}/${key}: S3 holds CRC32C`);
    await run(activities.cleanupUpload, {}, { bucket: BUCKET, key, multipartUploadId });
  });

  it('cleans up idempotently: abort, confirm by listing, and a second run finds nothing to do', async () => {
    const key = `activities/${uniqueId('cleanup')}.bin`;
    const { UploadId } = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    await stack.s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId, PartNumber: 1, Body: Buffer.alloc(5 * MiB, 1) }));
    const staging = `.upload-saga/staging/t/${uniqueId('u')}/`;
    await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${staging}chunk-0001`, Body: 'staged bytes' }));

    const input = { bucket: BUCKET, key, multipartUploadId: UploadId!, stagingPrefix: staging };
    expect(await run(activities.cleanupUpload, {}, input)).toEqual({ abortedMultipartUploadIds: [UploadId], stagedObjectsDeleted: 1 });
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
    expect(await keysUnder(stack.s3, BUCKET, staging)).toEqual([]);
    // Already aborted (NoSuchUpload) is success, not failure.
    expect(await run(activities.cleanupUpload, { attempt: 2 }, input)).toEqual({
      abortedMultipartUploadIds: [UploadId],
      stagedObjectsDeleted: 0,
    });
  });

  it('finds and aborts the uploads of a key when the action died before reporting an upload id', async () => {
    const key = `activities/${uniqueId('orphan')}.bin`;
    const before = Date.now() - 5_000;
    const a = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const b = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const result = await run(activities.cleanupUpload, {}, { bucket: BUCKET, key, initiatedAfterMs: before });
    expect(result.abortedMultipartUploadIds.sort()).toEqual([a.UploadId, b.UploadId].sort());
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
  });

  it("after a gateway upload's merge (no upload id, a staging prefix), aborts the key's uploads that hold no part and keeps one with parts", async () => {
    const key = `activities/${uniqueId('merged')}.bin`;
    // The orphan of a create run again in a retried workflow task: nobody recorded it, it holds no part.
    const orphan = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const withPart = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    await stack.s3.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: withPart.UploadId, PartNumber: 1, Body: Buffer.alloc(MiB, 2) }),
    );
    const staging = `.upload-saga/staging/t/${uniqueId('u')}/`;
    await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${staging}chunk-0001`, Body: 'staged bytes' }));

    const input = { bucket: BUCKET, key, stagingPrefix: staging };
    expect(await run(activities.cleanupUpload, {}, input)).toEqual({
      abortedMultipartUploadIds: [orphan.UploadId],
      stagedObjectsDeleted: 1,
    });
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([withPart.UploadId]);
    expect(await keysUnder(stack.s3, BUCKET, staging)).toEqual([]);
    // Run again (a retried attempt): nothing more to abort.
    expect(await run(activities.cleanupUpload, { attempt: 2 }, input)).toEqual({ abortedMultipartUploadIds: [], stagedObjectsDeleted: 0 });
    await run(activities.cleanupUpload, {}, { bucket: BUCKET, key, multipartUploadId: withPart.UploadId! });
  });

  it("a gateway upload's open-multipart run again by a retried workflow task aborts the earlier run's upload, looking back to the workflow's start", async () => {
    const key = `activities/${uniqueId('reopened')}.bin`;
    const workflowStartedMs = Date.now() - 1_000;
    // The first run's upload: created, but its workflow task's completion never reached Temporal.
    const earlier = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    // The retried task runs the step as a new local activity, scheduled well after (10 s of task timeout later).
    const retried = { scheduledTimestampMs: Date.now() + 20_000 };
    const input = { bucket: BUCKET, key, contentType: 'application/octet-stream', metadata: {} };

    // Without the workflow's start, the earlier upload lies before the step's window and stays.
    const blind = await run(activities.openMultipartUpload, retried, input);
    expect((await incompleteUploads(stack.s3, BUCKET, key)).sort()).toEqual([earlier.UploadId, blind.multipartUploadId].sort());
    await run(activities.cleanupUpload, {}, { bucket: BUCKET, key, multipartUploadId: blind.multipartUploadId });

    const opened = await run(activities.openMultipartUpload, retried, { ...input, workflowStartedMs });
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([opened.multipartUploadId]);
    await run(activities.cleanupUpload, {}, { bucket: BUCKET, key, multipartUploadId: opened.multipartUploadId });
  });

  it('raises the part size for a file that would need more than 10,000 parts (a 60 GiB sparse file)', async () => {
    const sparse = path.join(tmp.dir, 'sparse-60g.bin');
    await writeFile(sparse, '');
    const handle = await open(sparse, 'r+');
    await handle.truncate(60 * 1024 ** 3);
    await handle.close();
    const inspection = await run(
      activities.inspectSource,
      {},
      normalizeUploadRequest({
        uploadId: 'big',
        tenant: 't',
        source: { type: 'file', path: sparse },
        destination: { bucket: BUCKET, key: 'big.bin' },
        partSize: 5 * MiB,
        declaredSize: 60 * 1024 ** 3,
      }),
    );
    expect(inspection.plan).toMatchObject({
      size: 60 * 1024 ** 3,
      partSize: 7 * MiB,
      partCount: 8778,
      adjusted: { requestedPartSize: 5 * MiB },
    });
    expect(inspection.plan.adjusted?.reason).toContain('12288 parts of 5 MiB exceed');
  });

  it('refuses a symlink that leads outside the allowed roots', async () => {
    const { symlink } = await import('node:fs/promises');
    const link = path.join(tmp.dir, 'escape-link');
    await symlink('/etc/hostname', link);
    const err = await run(
      activities.inspectSource,
      {},
      normalizeUploadRequest({
        uploadId: 'x',
        tenant: 't',
        source: { type: 'file', path: link },
        destination: { bucket: BUCKET, key: 'k' },
      }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'SourceNotAllowed', nonRetryable: true });
    expect((err as Error).message).toContain(`source file ${link} (resolves to /etc/hostname) is outside the worker's allowed roots`);
  });
});
