/**
 * The upload saga end to end: real Temporal dev server, real MinIO, real activities. Where a test
 * needs a failure on cue (a batch refused, a slow source to cancel), it wraps a real activity or
 * the real source; every byte still goes to MinIO and every assertion reads MinIO directly.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFile, truncate } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UploadActivities } from '../../src/activities';
import { UploadClient, UploadFailedError } from '../../src/client';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { partChecksum } from '../../src/s3/checksums';
import { InvalidUploadRequestError } from '../../src/upload/errors';
import type { UploadEvent } from '../../src/upload/outcome';
import type { UploadRequest } from '../../src/upload/request';
import { bundleUploadWorkflows } from '../../src/worker';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import {
  connectTestStack,
  startUploadWorker as startConfiguredUploadWorker,
  uniqueId,
  type RunningWorker,
  type TestStack,
} from '../support/harness';
import { incompleteUploads, objectSha256 } from '../support/s3-inspect';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';
import { expectNothingLeftBehind as expectSagaLeftNothing, startSagaWorker } from '../support/upload-saga-worker';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { itStoreIndependent } from '../support/store-independent';

/** Per-file tenant: a tenant's quota ledger runs on the task queue of the worker that first served it. */
const TENANT = uniqueId('acme');

const WEBHOOK_SECRET = 'test-webhook-secret-0123456789';
const BUCKET = 'uploads';

let stack: TestStack;
let uploads: UploadClient;
let ledger: TemporalQuotaLedger;
let receiver: WebhookReceiver;
let tmp: { dir: string; remove(): Promise<void> };
const workers: RunningWorker[] = [];

async function startUploadWorker(
  taskQueue: string,
  customize?: (real: UploadActivities) => UploadActivities,
  sourceDelayMs = 0,
): Promise<void> {
  workers.push(await startSagaWorker(stack, ledger, { taskQueue, customize, sourceDelayMs, workflowBundle: bundle }));
}

let bundle: ReturnType<typeof bundleUploadWorkflows>;

beforeAll(async () => {
  stack = await connectTestStack({ env: { UPLOAD_SAGA_WEBHOOK_SECRET: WEBHOOK_SECRET, UPLOAD_SAGA_QUOTAS: 'tight=12MiB' } });
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });
  uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
  receiver = await startWebhookReceiver();
  tmp = await makeTempDir();
  bundle = bundleUploadWorkflows();
  await startUploadWorker(stack.config.temporal.taskQueue);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await receiver?.close();
  await stack?.close();
  await tmp?.remove();
});

function request(overrides: Partial<UploadRequest> & { source: UploadRequest['source'] }): UploadRequest {
  const uploadId = uniqueId('up');
  return { uploadId, tenant: TENANT, destination: { bucket: BUCKET, key: `tests/${uploadId}.bin` }, partSize: 5 * MiB, ...overrides };
}

const expectNothingLeftBehind = (req: UploadRequest): Promise<void> => expectSagaLeftNothing(stack, ledger, req);

const eventsFor = (workflowId: string) => receiver.received.filter((r) => (r.json as unknown as UploadEvent).workflowId === workflowId);

describe('upload saga', () => {
  it('uploads a file in parts, byte-identical, and reports size, ETag, checksum, parts and timings', async () => {
    const file = await makeRandomFile(tmp.dir, 'ok.bin', 23 * MiB + 12345);
    const req = request({
      source: { type: 'file', path: file.path },
      partsPerActivity: 2,
      partConcurrency: 3,
      metadata: { origin: 'test' },
      contentType: 'application/x-test',
    });
    const handle = await uploads.start(req);
    const result = await handle.result();

    expect(result).toMatchObject({
      bucket: BUCKET,
      key: req.destination.key,
      size: file.size,
      partCount: 5,
      partSize: 5 * MiB,
      tenant: TENANT,
    });
    expect(result.etag).toMatch(/-5"?$/);
    expect(result.checksum).toMatchObject({ algorithm: 'CRC32C' });
    expect(Object.keys(result.timings)).toEqual(
      expect.arrayContaining(['inspect-source', 'reserve-space', 'upload-parts', 'verify', 'merge']),
    );
    expect(await objectSha256(stack.s3, BUCKET, req.destination.key)).toBe(file.sha256);
    expect(await incompleteUploads(stack.s3, BUCKET, req.destination.key)).toEqual([]);
    expect(handle.workflowId).toBe(`upload:${TENANT}:${req.uploadId}`);
    const progress = await handle.progress();
    expect(progress).toMatchObject({
      phase: 'done',
      outcome: 'completed',
      partsDone: 5,
      bytesDone: file.size,
      batchesDone: 3,
      batchesTotal: 3,
    });
  });

  itStoreIndependent('returns the running or completed upload when the same upload is started again', async () => {
    const file = await makeRandomFile(tmp.dir, 'twice.bin', 6 * MiB);
    const req = request({ source: { type: 'file', path: file.path } });
    const [first, second] = await Promise.all([uploads.start(req), uploads.start(req)]);
    const firstRun = (await first.workflow.describe()).runId;
    expect((await second.workflow.describe()).runId).toBe(firstRun);
    await first.result();
    expect((await uploads.start(req).then((h) => h.workflow.describe())).runId).toBe(firstRun);
  });

  itStoreIndependent(
    'on a store without additional checksums (S3_ADDITIONAL_CHECKSUMS=false): no checksum sent, one-part files go multipart, an expected CRC is checked by re-reading',
    async () => {
      const plain = await connectTestStack({ env: { S3_ADDITIONAL_CHECKSUMS: 'false' } });
      const worker = await startConfiguredUploadWorker(plain);
      try {
        const client = new UploadClient({ client: plain.client, taskQueue: plain.config.temporal.taskQueue });
        const tenant = uniqueId('plain');
        const small = await makeRandomFile(tmp.dir, 'plain-small.bin', MiB);
        const large = await makeRandomFile(tmp.dir, 'plain-large.bin', 6 * MiB);
        const crc = await partChecksum('CRC32C', await readFile(large.path));
        const [smallResult, largeResult] = await Promise.all([
          client
            .start({
              uploadId: uniqueId('plain'),
              tenant,
              source: { type: 'file', path: small.path },
              destination: { bucket: BUCKET, key: `plain/${uniqueId('s')}` },
            })
            .then((h) => h.result()),
          client
            .start({
              uploadId: uniqueId('plain'),
              tenant,
              source: { type: 'file', path: large.path },
              destination: { bucket: BUCKET, key: `plain/${uniqueId('l')}` },
              partSize: 5 * MiB,
              expectedChecksum: { algorithm: 'CRC32C', value: crc },
            })
            .then((h) => h.result()),
        ]);
        expect(smallResult).toMatchObject({ size: MiB, partCount: 1 });
        expect(smallResult.checksum).toBeUndefined();
        expect(smallResult.etag).toMatch(/-1"?$/); // a multipart ETag: no one-put fast path
        expect(largeResult).toMatchObject({ size: 6 * MiB, partCount: 2 });
        expect(largeResult.checksum).toBeUndefined();
        expect(await objectSha256(stack.s3, BUCKET, smallResult.key)).toBe(small.sha256);
        expect(await objectSha256(stack.s3, BUCKET, largeResult.key)).toBe(large.sha256);
        expect(await incompleteUploads(stack.s3, BUCKET, largeResult.key)).toEqual([]);

        const wrong = await partChecksum('CRC32C', Buffer.from('other bytes'));
        const err = (await client
          .start({
            uploadId: uniqueId('plain'),
            tenant,
            source: { type: 'file', path: large.path },
            destination: { bucket: BUCKET, key: `plain/${uniqueId('w')}` },
            partSize: 5 * MiB,
            expectedChecksum: { algorithm: 'CRC32C', value: wrong },
          })
          .then((h) => h.result())
          .catch((e: unknown) => e)) as UploadFailedError;
        expect(err).toBeInstanceOf(UploadFailedError);
        expect(err.report).toMatchObject({ failedStep: 'verify', cause: { type: 'ChecksumMismatch' } });
        expect(err.outcome).toBe('compensated');
      } finally {
        await worker.stop();
        await plain.close();
      }
    },
  );

  it('uploads a zero-byte file as one empty part', async () => {
    const file = await makeRandomFile(tmp.dir, 'empty.bin', 0);
    const req = request({ source: { type: 'file', path: file.path } });
    const result = await (await uploads.start(req)).result();
    expect(result).toMatchObject({ size: 0, partCount: 1 });
    expect(await objectSha256(stack.s3, BUCKET, req.destination.key)).toBe(file.sha256);
  });

  it('verifies a caller-given SHA-256 and sends a signed completion webhook with an idempotency key', async () => {
    const file = await makeRandomFile(tmp.dir, 'hooked.bin', 7 * MiB);
    const req = request({
      source: { type: 'file', path: file.path },
      expectedChecksum: { algorithm: 'SHA256', value: file.sha256 },
      webhookUrl: receiver.url('/ok'),
    });
    const handle = await uploads.start(req);
    const result = await handle.result();
    expect(result.sha256).toBe(file.sha256);
    expect(result.notification).toEqual({ status: 'delivered' });

    const [hook] = eventsFor(handle.workflowId);
    expect(hook).toBeDefined();
    const event = hook!.json as unknown as UploadEvent;
    expect(event).toMatchObject({
      type: 'upload.completed',
      uploadId: req.uploadId,
      key: req.destination.key,
      result: { size: file.size, sha256: file.sha256 },
    });
    expect(hook!.headers['idempotency-key']).toBe(`${handle.workflowId}/upload.completed`);
    const [t, v1] = String(hook!.headers['x-upload-saga-signature']).split(',');
    const expected = createHmac('sha256', WEBHOOK_SECRET)
      .update(`${t!.slice(2)}.${hook!.body}`)
      .digest('hex');
    expect(v1).toBe(`v1=${expected}`);
    expect(hook!.body).not.toContain(WEBHOOK_SECRET);

    // Secrets are worker configuration: they never reach the workflow's history.
    const history = await handle.workflow.fetchHistory();
    // Protobuf renders payload bytes as base64 in `data` fields: decode them to text.
    const text = JSON.stringify(history, (k, v: unknown) =>
      k === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v,
    );
    expect(text).toContain(req.destination.key); // the decoding works: payloads are readable here
    for (const secret of [WEBHOOK_SECRET, stack.config.s3.credentials!.secretAccessKey, stack.config.s3.credentials!.accessKeyId]) {
      expect(text).not.toContain(secret);
    }
  });

  it('compensates when the expected checksum does not match: aborted, released, failure event sent', async () => {
    const file = await makeRandomFile(tmp.dir, 'mismatch.bin', 11 * MiB);
    const req = request({
      source: { type: 'file', path: file.path },
      expectedChecksum: { algorithm: 'SHA256', value: '0'.repeat(64) },
      webhookUrl: receiver.url('/fail'),
    });
    const handle = await uploads.start(req);
    const err = await handle.result().catch((e: unknown) => e);

    expect(err).toBeInstanceOf(UploadFailedError);
    const failed = err as UploadFailedError;
    expect(failed.outcome).toBe('compensated');
    expect(failed.message).toContain('step "verify" failed: ChecksumMismatch');
    expect(failed.report?.compensations.map((c) => [c.step, c.status])).toEqual([
      ['upload-parts', 'compensated'],
      ['reserve-space', 'compensated'],
    ]);
    await expectNothingLeftBehind(req);
    const [hook] = eventsFor(handle.workflowId);
    expect(hook?.json).toMatchObject({ type: 'upload.failed', failure: { failedStep: 'verify', cause: { type: 'ChecksumMismatch' } } });
  });

  it('compensates when part uploads fail non-retryably mid-way: no incomplete upload, reservation released', async () => {
    const queue = uniqueId('failing-parts');
    let refused = 0;
    await startUploadWorker(queue, (real) => ({
      ...real,
      async uploadParts(input) {
        if (input.firstPart > 1) {
          refused++;
          throw ApplicationFailure.create({
            type: 'S3.AccessDenied',
            message: 'injected: the store refuses part 3',
            nonRetryable: true,
            details: [{ multipartUploadId: input.multipartUploadId }],
          });
        }
        return real.uploadParts(input); // batch 1 really lands in MinIO
      },
    }));
    const file = await makeRandomFile(tmp.dir, 'refused.bin', 16 * MiB);
    const req = request({ source: { type: 'file', path: file.path }, partsPerActivity: 2 });
    const client = new UploadClient({ client: stack.client, taskQueue: queue });
    const err = (await (await client.start(req)).result().catch((e: unknown) => e)) as UploadFailedError;

    expect(err).toBeInstanceOf(UploadFailedError);
    expect(refused).toBe(1); // non-retryable: never retried
    expect(err.message).toContain('step "upload-parts" failed: S3.AccessDenied');
    expect(err.report?.compensations.every((c) => c.status === 'compensated')).toBe(true);
    await expectNothingLeftBehind(req);
  });

  it('compensates a cancelled upload: in-flight parts stop, the multipart upload is aborted, the reservation released', async () => {
    const queue = uniqueId('slow');
    await startUploadWorker(queue, undefined, 700);
    const file = await makeRandomFile(tmp.dir, 'cancel.bin', 40 * MiB);
    const req = request({ source: { type: 'file', path: file.path }, partConcurrency: 1, webhookUrl: receiver.url('/cancel') });
    const client = new UploadClient({ client: stack.client, taskQueue: queue });
    const handle = await client.start(req);
    await expect.poll(async () => (await handle.progress()).partsDone, { timeout: 30_000, interval: 300 }).toBeGreaterThan(0);
    expect(await incompleteUploads(stack.s3, BUCKET, req.destination.key)).toHaveLength(1);
    await handle.cancel();
    const err = (await handle.result().catch((e: unknown) => e)) as UploadFailedError;

    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.outcome).toBe('cancelled');
    expect(err.report).toMatchObject({ failedStep: 'upload-parts', cancelled: true });
    expect(err.report?.compensations.map((c) => c.status)).toEqual(['compensated', 'compensated']);
    await expectNothingLeftBehind(req);
    await expect.poll(() => eventsFor(handle.workflowId).map((h) => h.json.type)).toEqual(['upload.cancelled']);
  });

  itStoreIndependent('fails fast with QuotaExceeded before any byte moves when the tenant is over quota', async () => {
    const file = await makeRandomFile(tmp.dir, 'big-for-tight.bin', 13 * MiB);
    const req = request({ tenant: 'tight', source: { type: 'file', path: file.path } });
    const err = (await (await uploads.start(req)).result().catch((e: unknown) => e)) as UploadFailedError;

    expect(err.message).toMatch(/step "reserve-space" failed: QuotaExceeded: tenant "tight" has \d+ of 12582912 bytes left/);
    expect(err.report?.compensations).toEqual([{ step: 'reserve-space', activity: 'releaseReservation', status: 'compensated' }]);
    await expectNothingLeftBehind(req);
  });

  it('commits the reservation to used bytes once the object is merged', async () => {
    const tenant = uniqueId('fresh');
    const file = await makeRandomFile(tmp.dir, 'commit.bin', 3 * MiB);
    await (await uploads.start(request({ tenant, source: { type: 'file', path: file.path } }))).result();
    expect(await ledger.usage(tenant)).toMatchObject({ usedBytes: 3 * MiB, reservedBytes: 0 });
  });

  it('refuses to overwrite an existing object when failIfExists is set, and compensates', async () => {
    const file = await makeRandomFile(tmp.dir, 'exists.bin', 6 * MiB);
    const req = request({ source: { type: 'file', path: file.path }, failIfExists: true });
    await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: req.destination.key, Body: 'the original' }));
    const err = (await (await uploads.start(req)).result().catch((e: unknown) => e)) as UploadFailedError;

    expect(err.message).toContain('step "merge" failed: ObjectAlreadyExists');
    expect(err.outcome).toBe('compensated');
    expect(await incompleteUploads(stack.s3, BUCKET, req.destination.key)).toEqual([]);
    expect(await objectSha256(stack.s3, BUCKET, req.destination.key)).toBe(createHash('sha256').update('the original').digest('hex'));
  });

  itStoreIndependent('fails with a specific error before any byte moves when the source is bad', async () => {
    const missing = request({ source: { type: 'file', path: `${tmp.dir}/does-not-exist.bin` } });
    const e1 = (await (await uploads.start(missing)).result().catch((e: unknown) => e)) as UploadFailedError;
    expect(e1.message).toContain(
      `step "inspect-source" failed: SourceNotFound: source file ${tmp.dir}/does-not-exist.bin does not exist on the worker host`,
    );

    const file = await makeRandomFile(tmp.dir, 'declared.bin', 1 * MiB);
    const wrongSize = request({ source: { type: 'file', path: file.path }, declaredSize: 2 * MiB });
    const e2 = (await (await uploads.start(wrongSize)).result().catch((e: unknown) => e)) as UploadFailedError;
    expect(e2.message).toContain(`SourceSizeMismatch: file ${file.path} has ${MiB} bytes, but the request declared ${2 * MiB}`);

    const outside = request({ source: { type: 'file', path: '/etc/hostname' } });
    const e3 = (await (await uploads.start(outside)).result().catch((e: unknown) => e)) as UploadFailedError;
    expect(e3.message).toContain("SourceNotAllowed: source file /etc/hostname is outside the worker's allowed roots");

    const noBucket = request({ source: { type: 'file', path: file.path }, destination: { bucket: 'no-such-bucket', key: 'x.bin' } });
    const e4 = (await (await uploads.start(noBucket)).result().catch((e: unknown) => e)) as UploadFailedError;
    expect(e4.message).toContain('BucketNotFound: bucket "no-such-bucket" does not exist');

    for (const req of [missing, wrongSize, outside]) await expectNothingLeftBehind(req);
  });

  itStoreIndependent('detects a source truncated during the upload and compensates', async () => {
    const queue = uniqueId('truncate');
    await startUploadWorker(queue, undefined, 400);
    const file = await makeRandomFile(tmp.dir, 'shrinks.bin', 20 * MiB);
    const req = request({ source: { type: 'file', path: file.path }, partConcurrency: 1 });
    const handle = await new UploadClient({ client: stack.client, taskQueue: queue }).start(req);
    await expect.poll(async () => (await handle.progress()).partsDone, { timeout: 30_000, interval: 200 }).toBeGreaterThan(0);
    await truncate(file.path, 7 * MiB);
    const err = (await handle.result().catch((e: unknown) => e)) as UploadFailedError;
    expect(err.message).toMatch(/SourceChanged/);
    expect(err.outcome).toBe('compensated');
    await expectNothingLeftBehind(req);
  });

  itStoreIndependent('rejects an invalid request in the client, listing every problem, before any workflow starts', async () => {
    const bad = {
      uploadId: 'bad id!',
      tenant: '',
      source: { type: 'file', path: 'relative.bin' },
      destination: { bucket: 'UPPER', key: '' },
      partSize: 1024,
      partConcurrency: 0,
      webhookUrl: 'ftp://x',
    };
    const err = await uploads.start(bad as unknown as UploadRequest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidUploadRequestError);
    const fields = (err as InvalidUploadRequestError).problems.map((p) => p.field);
    expect(fields).toEqual(
      expect.arrayContaining([
        'uploadId',
        'tenant',
        'source.path',
        'destination.bucket',
        'destination.key',
        'partSize',
        'partConcurrency',
        'webhookUrl',
      ]),
    );
    const listed = await stack.client.workflow.list({ query: `WorkflowId = 'upload:${bad.tenant}:${bad.uploadId}'` });
    for await (const _ of listed) expect.fail('no workflow should exist');
  });
});
