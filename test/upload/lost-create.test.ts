/**
 * A CreateMultipartUpload whose answer is lost: MinIO creates the upload, the client never learns
 * its id. Here a middleware below the S3 client's retry lets each create reach the real MinIO and
 * then throws a connection reset instead of returning the answer, so the client's own retry (or,
 * once its attempts are used up, the activity's next attempt) creates another upload. Afterwards
 * exactly one upload of the key may remain — the one the activity returned — and uploads of other
 * writers (with parts, or initiated before the step) are left alone.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type UploadActivities } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { createS3Client } from '../../src/connections';
import { listAllParts } from '../../src/s3/list-parts';
import { planParts } from '../../src/upload/part-plan';
import { normalizeUploadRequest } from '../../src/upload/request';
import { makeRandomFile, makeTempDir, MiB, type TestFile } from '../support/files';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';
import { incompleteUploads, objectSha256 } from '../support/s3-inspect';
import { unusedQuotaLedger } from '../support/unused-quota-ledger';

const BUCKET = 'uploads';
let stack: TestStack;
let tmp: { dir: string; remove(): Promise<void> };
let file: TestFile;
/** Creates whose answers the lossy client still has to lose. */
let answersToLose = 0;
/** Creates that reached MinIO through the lossy client. */
let createsSent = 0;
let lossy: S3Client;
let activities: UploadActivities;

beforeAll(async () => {
  stack = await connectTestStack();
  tmp = await makeTempDir();
  file = await makeRandomFile(tmp.dir, 'lost-create.bin', 11 * MiB);
  lossy = createS3Client(stack.config.s3);
  // At the deserialize step, below the retry middleware: the request was sent and answered, and the
  // client sees a reset connection, which its retry strategy treats as transient.
  lossy.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (context.commandName === 'CreateMultipartUploadCommand') {
        createsSent += 1;
        if (answersToLose > 0) {
          answersToLose -= 1;
          throw Object.assign(new Error('socket hang up (the test lost the answer)'), { code: 'ECONNRESET' });
        }
      }
      return result;
    },
    { step: 'deserialize', name: 'loseCreateAnswers', priority: 'high' },
  );
  activities = createActivities({ s3: lossy, sources: new LocalFileResolver({ allowedRoots: [tmp.dir] }), quota: unusedQuotaLedger });
});

afterAll(async () => {
  lossy?.destroy();
  await stack?.close();
  await tmp?.remove();
});

async function sourceVersion(): Promise<string> {
  const env = new MockActivityEnvironment({});
  const inspection = (await env.run(
    activities.inspectSource as never,
    normalizeUploadRequest({
      uploadId: uniqueId('i'),
      tenant: 't',
      source: { type: 'file', path: file.path },
      destination: { bucket: BUCKET, key: 'k' },
      partSize: 5 * MiB,
    }) as never,
  )) as { sourceVersion: string };
  return inspection.sourceVersion;
}

function partsInput(key: string, version: string) {
  return {
    bucket: BUCKET,
    key,
    source: { type: 'file' as const, path: file.path },
    sourceVersion: version,
    plan: planParts(file.size, 5 * MiB),
    firstPart: 1,
    lastPart: 3,
    partConcurrency: 2,
    checksumAlgorithm: 'CRC32C' as const,
    contentType: 'application/octet-stream',
    metadata: {},
  };
}

type PartsResult = Awaited<ReturnType<UploadActivities['uploadParts']>>;

function uploadParts(key: string, version: string, info: { attempt: number; scheduledTimestampMs: number }): Promise<PartsResult> {
  const env = new MockActivityEnvironment(info);
  return env.run(activities.uploadParts as never, partsInput(key, version) as never) as Promise<PartsResult>;
}

describe('a lost CreateMultipartUpload answer', () => {
  it("leaves no orphan when the S3 client's own retry creates a second upload", async () => {
    const key = `lost-create/${uniqueId('client-retry')}.bin`;
    const version = await sourceVersion();
    createsSent = 0;
    answersToLose = 1;
    const result = await uploadParts(key, version, { attempt: 1, scheduledTimestampMs: Date.now() });
    expect(createsSent).toBe(2); // the lost one and the retry: MinIO created two uploads
    expect(result.partsUploaded).toBe(3);
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([result.multipartUploadId]);
    await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: result.multipartUploadId }));
  });

  it("leaves no orphan when the activity's next attempt creates the upload, and the bytes are whole", async () => {
    const key = `lost-create/${uniqueId('activity-retry')}.bin`;
    const version = await sourceVersion();
    const scheduledTimestampMs = Date.now();
    createsSent = 0;
    answersToLose = 3; // every try of the client's standard retry: the attempt fails
    await expect(uploadParts(key, version, { attempt: 1, scheduledTimestampMs })).rejects.toThrow(/CreateMultipartUpload|socket hang up/);
    expect(createsSent).toBe(3);
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toHaveLength(3);
    // The next attempt knows no id (no heartbeat carried one): it creates a fourth and aborts the three.
    const result = await uploadParts(key, version, { attempt: 2, scheduledTimestampMs });
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([result.multipartUploadId]);
    const parts = await listAllParts(stack.s3, { bucket: BUCKET, key, multipartUploadId: result.multipartUploadId });
    await stack.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: result.multipartUploadId,
        MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag, ChecksumCRC32C: p.ChecksumCRC32C })) },
      }),
    );
    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(file.sha256);
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
  });

  it("leaves other writers' uploads of the key alone: one with a part, one initiated before the step", async () => {
    const key = `lost-create/${uniqueId('others')}.bin`;
    const version = await sourceVersion();
    const older = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    await new Promise((resolve) => setTimeout(resolve, 6_000)); // beyond the 5 s clock slack
    const scheduledTimestampMs = Date.now();
    const withPart = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    await stack.s3.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: withPart.UploadId, PartNumber: 1, Body: Buffer.alloc(1024) }),
    );
    createsSent = 0;
    answersToLose = 1;
    const result = await uploadParts(key, version, { attempt: 1, scheduledTimestampMs });
    expect(createsSent).toBe(2);
    expect((await incompleteUploads(stack.s3, BUCKET, key)).sort()).toEqual(
      [older.UploadId!, withPart.UploadId!, result.multipartUploadId].sort(),
    );
    for (const id of [older.UploadId!, withPart.UploadId!, result.multipartUploadId])
      await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: id }));
  });
});
