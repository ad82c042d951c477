/**
 * The uploads service and the gateway-upload workflow in presigned mode, without HTTP: parts go
 * straight to S3 (as a browser would PUT them to presigned URLs) and the service completes,
 * cancels and reports. Tenant boundaries, quota and Temporal being unreachable are checked here.
 */
import { createHash, randomBytes } from 'node:crypto';
import { UploadPartCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient } from '../../src/client';
import {
  GatewayUnavailableError,
  InvalidRequestError,
  UploadConflictError,
  UploadNotStoredError,
  UploadNotFoundError,
  UploadTooLargeError,
} from '../../src/gateway/errors';
import { UploadsService } from '../../src/gateway/uploads-service';
import { loadGatewayConfig } from '../../src/gateway/config';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { connectTestStack, startUploadWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { incompleteUploads, objectSha256 } from '../support/s3-inspect';
import { uploadWorkflowId } from '../../src/upload/request';
import { gatewayUploadSagaStateQuery } from '../../src/upload/gateway-upload-messages';

const BUCKET = 'uploads';
const acme = uniqueId('acme');
const other = uniqueId('other');
const tight = uniqueId('tight');
let stack: TestStack;
let worker: RunningWorker;
let uploads: UploadsService;

beforeAll(async () => {
  stack = await connectTestStack({ env: { UPLOAD_SAGA_QUOTAS: `${tight}=1MiB` } });
  worker = await startUploadWorker(stack);
  uploads = new UploadsService({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, config: loadGatewayConfig({}) });
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const ledger = () =>
  new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });

/** PUTs `data` as parts of `partSize` straight to S3, as a client with presigned URLs would. */
async function sendParts(
  key: string,
  multipartUploadId: string,
  data: Buffer,
  partSize: number,
): Promise<{ partNumber: number; etag: string }[]> {
  const parts: { partNumber: number; etag: string }[] = [];
  for (let offset = 0, n = 1; offset < data.length; offset += partSize, n++) {
    const sent = await stack.s3.send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: multipartUploadId,
        PartNumber: n,
        Body: data.subarray(offset, offset + partSize),
      }),
    );
    parts.push({ partNumber: n, etag: sent.ETag! });
  }
  return parts;
}

describe('presigned uploads through the uploads service', () => {
  it('verifies the parts the client reports against ListParts, merges them, and reserves the verified size when none was declared', async () => {
    const data = randomBytes(6 * MiB + 17);
    const created = await uploads.create({ tenant: acme, mode: 'presigned', filename: 'photo.jpg', contentType: 'image/jpeg' });
    expect(created).toMatchObject({ outcome: 'running', key: `${acme}/${created.uploadId}/photo.jpg` });
    expect(created.multipartUploadId).toBeTruthy();

    const parts = await sendParts(created.key, created.multipartUploadId!, data, 5 * MiB);
    const done = await uploads.complete(acme, created.uploadId, parts);
    expect(done).toMatchObject({ outcome: 'completed', length: data.length, result: { size: data.length, partCount: 2 } });
    expect(await objectSha256(stack.s3, BUCKET, done.key)).toBe(sha256(data));
    expect(await ledger().usage(acme)).toMatchObject({ usedBytes: data.length, reservedBytes: 0 });
  });

  it('refuses to merge when the reported parts are not what S3 holds, and compensates', async () => {
    const data = randomBytes(6 * MiB);
    const created = await uploads.create({ tenant: acme, mode: 'presigned', length: data.length });
    const parts = await sendParts(created.key, created.multipartUploadId!, data, 5 * MiB);
    parts[1]!.etag = '"00000000000000000000000000000000"';
    const err = await uploads.complete(acme, created.uploadId, parts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UploadNotStoredError);
    expect((err as UploadNotStoredError).status).toBe(422);
    expect((err as Error).message).toMatch(/PartsMismatch: .*part 2 has ETag .* but the client reported/);
    const state = await uploads.state(acme, created.uploadId);
    expect(state.outcome).toBe('compensated');
    expect(await incompleteUploads(stack.s3, BUCKET, created.key)).toEqual([]);
  });

  it('cancels: the multipart upload is aborted and the reservation released', async () => {
    const created = await uploads.create({ tenant: acme, mode: 'presigned', length: 8 * MiB });
    await sendParts(created.key, created.multipartUploadId!, randomBytes(5 * MiB), 5 * MiB);
    const before = (await ledger().usage(acme)).reservedBytes;
    const state = await uploads.cancel(acme, created.uploadId);
    expect(state.outcome).toBe('cancelled');
    expect(await incompleteUploads(stack.s3, BUCKET, created.key)).toEqual([]);
    expect((await ledger().usage(acme)).reservedBytes).toBe(before - 8 * MiB);
  });

  it('answers 413 when the tenant’s quota cannot hold the declared length; the multipart upload opened meanwhile is aborted', async () => {
    const uploadId = uniqueId('refused');
    const err = await uploads.create({ tenant: tight, mode: 'presigned', length: 2 * MiB, uploadId }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UploadTooLargeError);
    expect((err as Error).message).toMatch(/has not enough quota left: .*the upload needs 2097152/);
    // reserve-space and open-multipart ran at once (patch gateway-concurrent-creation): the refusal
    // is answered after the compensations, which left no multipart upload and no reservation.
    const state = await uploads.state(tight, uploadId);
    expect(state.outcome).toBe('compensated');
    const saga = await stack.client.workflow.getHandle(uploadWorkflowId(tight, uploadId)).query(gatewayUploadSagaStateQuery);
    expect(saga.compensations).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ step: 'open-multipart', status: 'compensated' }),
        expect.objectContaining({ step: 'reserve-space', status: 'compensated' }),
      ]),
    );
    expect(await incompleteUploads(stack.s3, BUCKET, state.key)).toEqual([]);
    expect(await ledger().reservation(tight, uploadId)).toMatchObject({ status: expect.stringMatching(/^(released|unknown)$/) });
  });
});

describe('recording tus chunks', () => {
  it('accepts a chunk only from the recorded offset: a retried record (a gateway that died after recording) is refused with 409', async () => {
    const created = await uploads.create({ tenant: acme, mode: 'tus', length: 6 * MiB });
    const record = {
      from: { offset: 0, partsCompleted: 0 },
      offset: MiB,
      partsCompleted: 0,
      fingerprint: '',
      staged: [{ start: 0, end: MiB }],
    };
    expect(await uploads.recordChunk(acme, created.uploadId, record)).toMatchObject({ offset: MiB, staged: [{ start: 0, end: MiB }] });
    await expect(uploads.recordChunk(acme, created.uploadId, record)).rejects.toBeInstanceOf(UploadConflictError);
    const broken = {
      from: { offset: MiB, partsCompleted: 0 },
      offset: 2 * MiB,
      partsCompleted: 0,
      fingerprint: '',
      staged: [{ start: MiB, end: 2 * MiB }],
    };
    await expect(uploads.recordChunk(acme, created.uploadId, broken)).rejects.toBeInstanceOf(InvalidRequestError); // not contiguous from byte 0
    expect((await uploads.state(acme, created.uploadId)).offset).toBe(MiB);
    await uploads.cancel(acme, created.uploadId);
  });
});

describe('tenant boundaries', () => {
  it('answers 404 for another tenant’s upload and for a worker-side upload under the same id scheme', async () => {
    const created = await uploads.create({ tenant: acme, mode: 'presigned', length: MiB });
    await expect(uploads.state(other, created.uploadId)).rejects.toBeInstanceOf(UploadNotFoundError);
    await expect(uploads.cancel(other, created.uploadId)).rejects.toBeInstanceOf(UploadNotFoundError);
    expect((await uploads.state(acme, created.uploadId)).outcome).toBe('running');
    await uploads.cancel(acme, created.uploadId);

    // An upload the worker reads from a file has the id upload:<tenant>:<id> too, but it is not a gateway upload.
    const dir = await makeTempDir();
    try {
      const file = await makeRandomFile(dir.dir, 'f.bin', 1024);
      const handle = await new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue }).start({
        uploadId: 'worker-side',
        tenant: acme,
        source: { type: 'file', path: file.path },
        destination: { bucket: BUCKET, key: `${acme}/worker-side.bin` },
      });
      await handle.result();
      await expect(uploads.state(acme, 'worker-side')).rejects.toBeInstanceOf(UploadNotFoundError);
    } finally {
      await dir.remove();
    }
  });
});

it('answers 503, not a hung request, when no worker serves the task queue', async () => {
  const stranded = new UploadsService({
    client: stack.client,
    taskQueue: `no-worker-${uniqueId('q')}`,
    config: loadGatewayConfig({}),
    callTimeoutMs: 2000,
  });
  const uploadId = uniqueId('stranded');
  const err = await stranded.create({ tenant: acme, uploadId, mode: 'presigned', length: MiB }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GatewayUnavailableError);
  await stack.client.workflow.getHandle(`upload:${acme}:${uploadId}`).terminate('test cleanup');
});
