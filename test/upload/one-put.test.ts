/**
 * The small-file fast path end to end: real Temporal dev server, real MinIO, real activities. The
 * worker's S3 client counts its requests by operation and key (an SDK middleware), so each test
 * proves which path an upload took from what reached the store, and from its history.
 */
import { crc32c } from '@node-rs/crc32';
import { readFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type UploadActivities } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { UploadClient, UploadFailedError, type UploadHandle } from '../../src/client';
import { createS3Client } from '../../src/connections';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import type { UploadEvent } from '../../src/upload/outcome';
import type { UploadRequest } from '../../src/upload/request';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { incompleteUploads, objectExists, objectSha256 } from '../support/s3-inspect';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { itStoreIndependent } from '../support/store-independent';

const TENANT = uniqueId('one-put');
const BUCKET = 'uploads';
const PART = 5 * MiB;

let stack: TestStack;
let uploads: UploadClient;
let ledger: TemporalQuotaLedger;
let receiver: WebhookReceiver;
let tmp: { dir: string; remove(): Promise<void> };
let bundle: ReturnType<typeof bundleUploadWorkflows>;
const workers: RunningWorker[] = [];
const clients: S3Client[] = [];
/** Every request the workers' S3 clients sent: operation and key. */
const sent: { operation: string; key?: string }[] = [];

/** The worker's S3 client, counting what it sends (the SDK's own middleware stack). */
function countingS3(): S3Client {
  const s3 = createS3Client(stack.config.s3);
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      sent.push({ operation: String(context.commandName).replace(/Command$/, ''), key: (args.input as { Key?: string }).Key });
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  clients.push(s3);
  return s3;
}

async function startUploadWorker(taskQueue: string, customize?: (real: UploadActivities) => UploadActivities): Promise<UploadClient> {
  const config = { ...stack.config, temporal: { ...stack.config.temporal, taskQueue } };
  const s3 = countingS3();
  const real = createActivities({
    s3,
    sources: new LocalFileResolver({ allowedRoots: config.allowedRoots }),
    quota: ledger,
    webhook: config.webhook,
  });
  const worker = await createUploadWorker({
    config,
    connection: stack.workerConnection,
    client: stack.client,
    s3,
    workflowBundle: await bundle,
    activities: customize ? customize(real) : real,
  });
  workers.push(runInBackground(worker));
  return new UploadClient({ client: stack.client, taskQueue });
}

/** A worker on its own queue whose verify-object always finds a mismatch (after the real PutObject landed). */
function startWorkerWhoseVerifyFails(): Promise<UploadClient> {
  return startUploadWorker(uniqueId('verify-fails'), (real) => ({
    ...real,
    async verifyObject() {
      throw ApplicationFailure.nonRetryable('injected: the stored object does not match the source', 'ChecksumMismatch');
    },
  }));
}

beforeAll(async () => {
  stack = await connectTestStack();
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });
  receiver = await startWebhookReceiver();
  tmp = await makeTempDir();
  bundle = bundleUploadWorkflows();
  uploads = await startUploadWorker(stack.config.temporal.taskQueue);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  for (const s3 of clients) s3.destroy();
  await receiver?.close();
  await stack?.close();
  await tmp?.remove();
});

function request(overrides: Partial<UploadRequest> & { source: UploadRequest['source'] }): UploadRequest {
  const uploadId = uniqueId('up');
  return { uploadId, tenant: TENANT, destination: { bucket: BUCKET, key: `one-put/${uploadId}.bin` }, partSize: PART, ...overrides };
}

/** The S3 operations sent for `key`, counted. */
function operationsOn(key: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of sent) if (r.key === key) counts[r.operation] = (counts[r.operation] ?? 0) + 1;
  return counts;
}

const MULTIPART_OPERATIONS = ['CreateMultipartUpload', 'UploadPart', 'ListParts', 'CompleteMultipartUpload', 'AbortMultipartUpload'];

/** The history's events, each named by its attributes field (`timerStartedEventAttributes` → `timerStarted`). */
async function eventTypes(handle: UploadHandle): Promise<string[]> {
  const history = await handle.workflow.fetchHistory();
  return (history.events ?? []).map((e) => {
    const attributes = Object.keys(e).find((k) => k.endsWith('EventAttributes') && e[k as keyof typeof e] != null);
    return attributes?.replace(/EventAttributes$/, '') ?? 'unknown';
  });
}

const crc32cOf = (data: Buffer) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32c(data) >>> 0);
  return b.toString('base64');
};

async function usage() {
  return ledger.usage(TENANT);
}

const eventsFor = (workflowId: string) => receiver.received.filter((r) => (r.json as unknown as UploadEvent).workflowId === workflowId);

describe('small-file fast path', () => {
  it('stores a one-part file with one PutObject carrying its checksum, in local activities only, and settles the quota', async () => {
    const file = await makeRandomFile(tmp.dir, 'small.bin', 1 * MiB + 7);
    const req = request({ source: { type: 'file', path: file.path }, metadata: { origin: 'one-put' }, contentType: 'application/x-test' });
    const before = await usage();
    const handle = await uploads.start(req);
    const result = await handle.result();

    const key = req.destination.key;
    expect(operationsOn(key)).toEqual({ PutObject: 1, HeadObject: 1 });
    expect(result).toMatchObject({
      size: file.size,
      partCount: 1,
      partSize: PART,
      tenant: TENANT,
      notification: { status: 'not-requested' },
    });
    expect(result.checksum).toEqual({ algorithm: 'CRC32C', value: crc32cOf(await readFile(file.path)), type: 'FULL_OBJECT' });
    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(file.sha256);
    expect(Object.keys(result.timings)).toEqual(expect.arrayContaining(['inspect-source', 'reserve-space', 'put-object', 'verify-object']));

    // No activity task: every step ran as a local activity (one marker each), far fewer events than a multipart run.
    const types = await eventTypes(handle);
    expect(types).toContain('markerRecorded'); // the decoding works: local activities are markers
    expect(types.filter((t) => t.startsWith('activityTask'))).toEqual([]);
    // One timer: the durable point between put-object and the commit (see upload-workflow.ts).
    expect(types.filter((t) => t === 'timerStarted')).toHaveLength(1);
    expect(types.length).toBeLessThan(20);
    expect(await handle.progress()).toMatchObject({ phase: 'done', outcome: 'completed', partsDone: 1, bytesDone: file.size });
    const described = await handle.workflow.describe();
    expect(described.searchAttributes).toMatchObject({ UploadPhase: ['done'], UploadOutcome: ['completed'], UploadSizeBytes: [file.size] });

    const after = await usage();
    expect(after.usedBytes - before.usedBytes).toBe(file.size);
    expect(after.reservedBytes).toBe(0);
  });

  it('takes the fast path for a file of exactly one part, and multipart for one byte more', async () => {
    const exact = await makeRandomFile(tmp.dir, 'exact.bin', PART);
    const over = await makeRandomFile(tmp.dir, 'over.bin', PART + 1);
    const exactReq = request({ source: { type: 'file', path: exact.path } });
    const overReq = request({ source: { type: 'file', path: over.path } });
    const [exactResult, overResult] = await Promise.all([
      uploads.start(exactReq).then((h) => h.result()),
      uploads.start(overReq).then((h) => h.result()),
    ]);

    expect(operationsOn(exactReq.destination.key)).toEqual({ PutObject: 1, HeadObject: 1 });
    expect(exactResult).toMatchObject({ size: PART, partCount: 1 });
    expect(await objectSha256(stack.s3, BUCKET, exactReq.destination.key)).toBe(exact.sha256);

    const overOps = operationsOn(overReq.destination.key);
    expect(overOps).toMatchObject({ CreateMultipartUpload: 1, UploadPart: 2, CompleteMultipartUpload: 1 });
    expect(overOps.PutObject).toBeUndefined();
    expect(overResult).toMatchObject({ size: PART + 1, partCount: 2 });
    expect(await objectSha256(stack.s3, BUCKET, overReq.destination.key)).toBe(over.sha256);
  });

  it('stores an empty file with one empty PutObject', async () => {
    const file = await makeRandomFile(tmp.dir, 'empty.bin', 0);
    const req = request({ source: { type: 'file', path: file.path } });
    const result = await (await uploads.start(req)).result();
    expect(operationsOn(req.destination.key)).toEqual({ PutObject: 1, HeadObject: 1 });
    expect(result).toMatchObject({ size: 0, partCount: 1 });
    expect(await objectSha256(stack.s3, BUCKET, req.destination.key)).toBe(file.sha256);
  });

  it('refuses a wrong expected SHA-256 before any byte is written, and releases the reservation', async () => {
    const file = await makeRandomFile(tmp.dir, 'wrong-sum.bin', 200_000);
    const req = request({ source: { type: 'file', path: file.path }, expectedChecksum: { algorithm: 'SHA256', value: '0'.repeat(64) } });
    const err = (await (await uploads.start(req)).result().catch((e: unknown) => e)) as UploadFailedError;

    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.outcome).toBe('compensated');
    expect(err.report).toMatchObject({ failedStep: 'put-object', cause: { type: 'ChecksumMismatch' } });
    expect(operationsOn(req.destination.key)).toEqual({}); // no PutObject, and a compensation with nothing to delete sends nothing
    expect(await objectExists(stack.s3, BUCKET, req.destination.key)).toBe(false);
    expect((await usage()).reservedBytes).toBe(0);
  });

  it('keeps an existing object when failIfExists is set', async () => {
    const file = await makeRandomFile(tmp.dir, 'exists.bin', 1000);
    const req = request({ source: { type: 'file', path: file.path }, failIfExists: true });
    await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: req.destination.key, Body: 'someone else' }));
    const err = (await (await uploads.start(req)).result().catch((e: unknown) => e)) as UploadFailedError;

    expect(err.report).toMatchObject({ failedStep: 'put-object', cause: { type: 'ObjectAlreadyExists' } });
    const { Body } = await stack.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: req.destination.key }));
    expect(await Body!.transformToString()).toBe('someone else');
    expect((await usage()).reservedBytes).toBe(0);
  });

  it('deletes the object it wrote when verify fails, releases the reservation and sends the failure event', async () => {
    const client = await startWorkerWhoseVerifyFails();
    const file = await makeRandomFile(tmp.dir, 'refused.bin', 300_000);
    const req = request({ source: { type: 'file', path: file.path }, webhookUrl: receiver.url('/verify-fails') });
    const before = await usage();
    const handle = await client.start(req);
    const err = (await handle.result().catch((e: unknown) => e)) as UploadFailedError;

    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.outcome).toBe('compensated');
    expect(err.report?.compensations.map((c) => [c.step, c.status])).toEqual([
      ['put-object', 'compensated'],
      ['reserve-space', 'compensated'],
    ]);
    const key = req.destination.key;
    expect(operationsOn(key)).toMatchObject({ PutObject: 1, DeleteObject: 1 });
    expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
    const after = await usage();
    expect(after.reservedBytes).toBe(0);
    expect(after.usedBytes).toBe(before.usedBytes);
    const [hook] = eventsFor(handle.workflowId);
    expect(hook?.json).toMatchObject({
      type: 'upload.failed',
      failure: { failedStep: 'verify-object', cause: { type: 'ChecksumMismatch' } },
    });
  });

  it('leaves nothing behind when verify fails and the failure webhook is refused too', async () => {
    receiver.respondWith.set('/refused', 410);
    const client = await startWorkerWhoseVerifyFails();
    const file = await makeRandomFile(tmp.dir, 'unheard-refused.bin', 4096);
    const req = request({ source: { type: 'file', path: file.path }, webhookUrl: receiver.url('/refused') });
    const err = (await (await client.start(req)).result().catch((e: unknown) => e)) as UploadFailedError;

    expect(err.outcome).toBe('compensated');
    expect(await objectExists(stack.s3, BUCKET, req.destination.key)).toBe(false);
    expect((await usage()).reservedBytes).toBe(0);
  });

  it('keeps the object and commits the quota when only the completion webhook fails (after the pivot)', async () => {
    receiver.respondWith.set('/gone', 410);
    const file = await makeRandomFile(tmp.dir, 'unheard.bin', 4096);
    const req = request({ source: { type: 'file', path: file.path }, webhookUrl: receiver.url('/gone') });
    const before = await usage();
    const result = await (await uploads.start(req)).result();

    expect(result.notification).toMatchObject({ status: 'failed' });
    expect(await objectSha256(stack.s3, BUCKET, req.destination.key)).toBe(file.sha256);
    const after = await usage();
    expect(after.usedBytes - before.usedBytes).toBe(file.size);
    expect(after.reservedBytes).toBe(0);
    expect(operationsOn(req.destination.key).DeleteObject).toBeUndefined();
    for (const op of MULTIPART_OPERATIONS) expect(operationsOn(req.destination.key)[op]).toBeUndefined();
  });

  itStoreIndependent(
    'completes once, quota committed once, when its worker is killed after the commit and another replays the task',
    async () => {
      // A webhook that keeps the first delivery waiting: the worker is killed while notify runs,
      // after commit-quota, in the workflow task after the timer. The next worker replays that task.
      const waiting: ServerResponse[] = [];
      let deliveries = 0;
      const hook = createServer((req, res) => {
        deliveries++;
        req.resume();
        if (deliveries === 1) waiting.push(res);
        else res.writeHead(204).end();
      });
      await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
      const queue = uniqueId('one-put-crash');
      const tenant = uniqueId('one-put-crash'); // its ledger lives on this queue, served by both processes
      const env = { ...stack.env, TEMPORAL_TASK_QUEUE: queue };
      const processes: WorkerProcess[] = [await startWorkerProcess(env)];
      try {
        const file = await makeRandomFile(tmp.dir, 'crash.bin', 512 * 1024);
        const req = request({
          tenant,
          source: { type: 'file', path: file.path },
          webhookUrl: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
        });
        const handle = await new UploadClient({ client: stack.client, taskQueue: queue }).start(req);
        await expect.poll(() => deliveries, { timeout: 90_000, interval: 100 }).toBe(1);
        await processes[0]!.kill('SIGKILL');
        processes.push(await startWorkerProcess(env));

        const result = await handle.result();
        expect(result.notification).toEqual({ status: 'delivered' });
        expect(await objectSha256(stack.s3, BUCKET, req.destination.key)).toBe(file.sha256);
        const ledgerUsage = await ledger.usage(tenant);
        expect(ledgerUsage).toMatchObject({ usedBytes: file.size, reservedBytes: 0 });
      } finally {
        await Promise.all(processes.map((p) => p.kill()));
        for (const res of waiting) res.destroy();
        hook.closeAllConnections();
        await new Promise((resolve) => hook.close(resolve));
      }
    },
  );

  it("compensation deletes only this upload's object: never one another writer stored at the key since", async () => {
    const activities = createActivities({ s3: stack.s3, sources: new LocalFileResolver({ allowedRoots: [tmp.dir] }), quota: ledger });
    const deleteObject = (input: Parameters<typeof activities.deleteObject>[0]) =>
      new MockActivityEnvironment().run(activities.deleteObject, input);
    const key = `one-put/${uniqueId('compensate')}.bin`;
    const ours = await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'ours', ChecksumAlgorithm: 'CRC32C' }));
    const theirs = await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'theirs' }));
    expect(theirs.ETag).not.toBe(ours.ETag);
    expect(ours.ChecksumCRC32C).toBeDefined();

    // By ETag, and by the checksum a lost answer's attempt sent: the key now holds another writer's object.
    expect(await deleteObject({ bucket: BUCKET, key, stored: { etag: ours.ETag! } })).toEqual({ deleted: false });
    const sent = { checksum: { algorithm: 'CRC32C' as const, value: ours.ChecksumCRC32C!, type: 'FULL_OBJECT' as const }, notBeforeMs: 0 };
    expect(await deleteObject({ bucket: BUCKET, key, sent })).toEqual({ deleted: false });
    expect(await deleteObject({ bucket: BUCKET, key })).toEqual({ deleted: false }); // nothing known: nothing done
    expect(await objectExists(stack.s3, BUCKET, key)).toBe(true);

    // Its own object is deleted, and deleting again is success (idempotent).
    expect(await deleteObject({ bucket: BUCKET, key, stored: { etag: theirs.ETag! } })).toEqual({ deleted: true });
    expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
    expect(await deleteObject({ bucket: BUCKET, key, stored: { etag: theirs.ETag! } })).toEqual({ deleted: false });
  });
});
