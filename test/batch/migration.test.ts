/**
 * Bucket-to-bucket migrations end to end: real Temporal dev server, real MinIO (buckets `uploads`
 * and `uploads-other`), real activities, the real migration workflow. Each test checks what the
 * destination bucket holds afterwards (bytes, metadata, LastModified of what must not be copied
 * again), not only what the workflow says.
 */
import { randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { BatchClient, InvalidMigrationRequestError } from '../../src/batch-client';
import { MigrationFailedError, readMigrationReport } from '../../src/migration-client';
import type { MigrationRequest } from '../../src/migration/migration-types';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { connectTestStack, runInBackground, stackEnv, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const TENANT = uniqueId('migration');
const SOURCE_BUCKET = 'uploads';
const DESTINATION_BUCKET = 'uploads-other';

let stack: TestStack;
let batches: BatchClient;
const workers: RunningWorker[] = [];
const processes: WorkerProcess[] = [];
let fenced: BatchClient;

beforeAll(async () => {
  stack = await connectTestStack();
  const bundle = await bundleUploadWorkflows();
  const ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });
  const activities = (extra: object) =>
    createActivities({
      s3: stack.s3,
      sources: new LocalFileResolver({ allowedRoots: stack.config.allowedRoots }),
      quota: ledger,
      // A profile on the same MinIO: the streamed path (GET → PutObject) without a second store.
      sourceStores: { mirror: stack.s3 },
      ...extra,
    });
  workers.push(
    runInBackground(
      await createUploadWorker({
        config: stack.config,
        connection: stack.workerConnection,
        client: stack.client,
        s3: stack.s3,
        workflowBundle: bundle,
        activities: activities({}),
      }),
    ),
  );
  // A worker whose tenants are fenced into `tenants/<tenant>/` (UPLOAD_SAGA_TENANT_KEY_PREFIX).
  const fencedQueue = uniqueId('migration-fenced');
  workers.push(
    runInBackground(
      await createUploadWorker({
        config: { ...stack.config, temporal: { ...stack.config.temporal, taskQueue: fencedQueue } },
        connection: stack.workerConnection,
        client: stack.client,
        s3: stack.s3,
        workflowBundle: bundle,
        activities: activities({ tenantKeyPrefix: 'tenants/{tenant}/' }),
      }),
    ),
  );
  batches = new BatchClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
  fenced = new BatchClient({ client: stack.client, taskQueue: fencedQueue });
}, 180_000);

afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await Promise.all(workers.map((w) => w.stop()));
  await stack?.close();
});

/** Writes `count` objects of `size` bytes under `prefix` in the source bucket, each with metadata and a content type. */
async function sourceObjects(prefix: string, count: number, size: number): Promise<Map<string, Buffer>> {
  const objects = new Map<string, Buffer>();
  for (let i = 0; i < count; i++) objects.set(`${prefix}${i % 2 ? 'sub/' : ''}o${String(i).padStart(4, '0')}.bin`, randomBytes(size));
  const entries = [...objects.entries()].map(([key, body], i) => ({ key, body, i }));
  const lane = async () => {
    for (let next = entries.shift(); next; next = entries.shift())
      await stack.s3.send(
        new PutObjectCommand({
          Bucket: SOURCE_BUCKET,
          Key: next.key,
          Body: next.body,
          ContentType: 'image/x-test',
          Metadata: { origin: `n${next.i}` },
        }),
      );
  };
  await Promise.all(Array.from({ length: 8 }, lane));
  return objects;
}

/** Key → "LastModified ETag" of every object under `prefix` in the destination bucket. */
async function stamps(prefix: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await stack.s3.send(new ListObjectsV2Command({ Bucket: DESTINATION_BUCKET, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) found.set(o.Key!, `${o.LastModified!.toISOString()} ${o.ETag}`);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

async function readDestination(key: string) {
  const got = await stack.s3.send(new GetObjectCommand({ Bucket: DESTINATION_BUCKET, Key: key }));
  return { body: Buffer.from(await got.Body!.transformToByteArray()), contentType: got.ContentType, metadata: got.Metadata };
}

const request = (from: string, to: string, extra: Partial<MigrationRequest> = {}): MigrationRequest => ({
  migrationId: uniqueId('m'),
  tenant: TENANT,
  source: { bucket: SOURCE_BUCKET, prefix: from },
  destination: { bucket: DESTINATION_BUCKET, prefix: to },
  objectsPerChunk: 7,
  chunksPerRun: 2,
  ...extra,
});

describe('copying', () => {
  it('copies every object server-side with its metadata and content type, over several runs, and reports each', async () => {
    const from = `${uniqueId('src')}/`;
    const to = `${uniqueId('dst')}/`;
    const objects = await sourceObjects(from, 30, 10_000);
    const handle = await batches.migrate(request(from, to));
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'completed', objectsTotal: 30, objectsCopied: 30, objectsSkipped: 0, objectsFailed: 0 });
    expect(result.bytesCopied).toBe(300_000);
    for (const [key, body] of objects) {
      const copy = await readDestination(`${to}${key.slice(from.length)}`);
      expect(copy.body.equals(body)).toBe(true);
      expect(copy.contentType).toBe('image/x-test');
      expect(copy.metadata?.origin).toMatch(/^n\d+$/);
    }
    // 30 objects, 7 a chunk, 2 chunks a run: three runs at least.
    expect((await handle.progress()).run).toBeGreaterThanOrEqual(3);
    const report = [];
    for await (const line of readMigrationReport(stack.s3, DESTINATION_BUCKET, result.reportPrefix)) report.push(line);
    expect(report.map((l) => l.key).sort()).toEqual([...objects.keys()].sort());
    expect(new Set(report.map((l) => l.status))).toEqual(new Set(['copied']));
  }, 120_000);

  it('skips objects already there with the same size and checksum, and copies those that differ', async () => {
    const from = `${uniqueId('src')}/`;
    const to = `${uniqueId('dst')}/`;
    const objects = await sourceObjects(from, 10, 4096);
    await (await batches.migrate(request(from, to))).result();
    const first = await stamps(to);
    // One source object changes (same size, other bytes): only it is copied again.
    const changed = [...objects.keys()][3]!;
    await stack.s3.send(new PutObjectCommand({ Bucket: SOURCE_BUCKET, Key: changed, Body: randomBytes(4096) }));
    const again = await (await batches.migrate(request(from, to))).result();
    expect(again).toMatchObject({ outcome: 'completed', objectsCopied: 1, objectsSkipped: 9, objectsFailed: 0 });
    const second = await stamps(to);
    const recopied = [...first].filter(([key, stamp]) => second.get(key) !== stamp).map(([key]) => key);
    expect(recopied).toEqual([`${to}${changed.slice(from.length)}`]);
  }, 120_000);

  it('copies an object stored in parts and skips it on the next run (its source ETag travels in its metadata)', async () => {
    const from = `${uniqueId('src')}/`;
    const to = `${uniqueId('dst')}/`;
    const key = `${from}parted.bin`;
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(1000)];
    const { UploadId } = await stack.s3.send(
      new CreateMultipartUploadCommand({ Bucket: SOURCE_BUCKET, Key: key, ContentType: 'video/x-test', Metadata: { origin: 'parted' } }),
    );
    const etags = [];
    for (const [i, body] of parts.entries())
      etags.push(
        (await stack.s3.send(new UploadPartCommand({ Bucket: SOURCE_BUCKET, Key: key, UploadId, PartNumber: i + 1, Body: body }))).ETag,
      );
    await stack.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: SOURCE_BUCKET,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    expect((await batches.migrate(request(from, to)).then((h) => h.result())).objectsCopied).toBe(1);
    const copy = await readDestination(`${to}parted.bin`);
    expect(copy.body.equals(Buffer.concat(parts))).toBe(true);
    expect(copy).toMatchObject({ contentType: 'video/x-test', metadata: { origin: 'parted' } });
    const again = await (await batches.migrate(request(from, to))).result();
    expect(again).toMatchObject({ objectsCopied: 0, objectsSkipped: 1 });
  }, 120_000);

  it('streams objects from a source profile through the worker, verified, with their metadata', async () => {
    const from = `${uniqueId('src')}/`;
    const to = `${uniqueId('dst')}/`;
    const objects = await sourceObjects(from, 5, 20_000);
    const result = await (
      await batches.migrate(request(from, to, { source: { bucket: SOURCE_BUCKET, prefix: from, profile: 'mirror' } }))
    ).result();
    expect(result).toMatchObject({ outcome: 'completed', objectsCopied: 5 });
    for (const [key, body] of objects) {
      const copy = await readDestination(`${to}${key.slice(from.length)}`);
      expect(copy.body.equals(body)).toBe(true);
      expect(copy.contentType).toBe('image/x-test');
      const head = await stack.s3.send(
        new HeadObjectCommand({ Bucket: DESTINATION_BUCKET, Key: `${to}${key.slice(from.length)}`, ChecksumMode: 'ENABLED' }),
      );
      expect(head.ChecksumCRC32C).toBeDefined();
    }
  }, 120_000);

  it('pauses between chunks and resumes', async () => {
    const from = `${uniqueId('src')}/`;
    const to = `${uniqueId('dst')}/`;
    await sourceObjects(from, 40, 1000);
    const handle = await batches.migrate(
      request(from, to, { objectsPerChunk: 2, chunkConcurrency: 1, chunksPerRun: 100, objectConcurrency: 1 }),
    );
    await expect.poll(async () => (await stamps(to)).size, { timeout: 60_000, interval: 20 }).toBeGreaterThan(0);
    const paused = await handle.pause('test');
    expect(paused).toMatchObject({ paused: true, held: true });
    expect((await handle.progress()).phase).toBe('paused');
    const atPause = (await stamps(to)).size;
    expect(atPause).toBeLessThan(40);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await stamps(to)).size).toBe(atPause);
    await handle.resume();
    expect(await handle.result()).toMatchObject({ outcome: 'completed', objectsCopied: 40 });
  }, 120_000);
});

describe('bad input', () => {
  it('refuses a source prefix with no object: MigrationSourceEmpty, nothing written', async () => {
    const to = `${uniqueId('dst')}/`;
    const handle = await batches.migrate(request(`${uniqueId('missing')}/`, to));
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationFailedError);
    expect((err as MigrationFailedError).type).toBe('MigrationSourceEmpty');
    expect((await stamps(to)).size).toBe(0);
  }, 60_000);

  it('refuses a destination prefix outside the tenant prefix: DestinationNotAllowed, nothing written', async () => {
    const from = `tenants/${TENANT}/${uniqueId('src')}/`;
    await sourceObjects(from, 2, 100);
    const to = `tenants/someone-else/${uniqueId('dst')}/`;
    const err = await (await fenced.migrate(request(from, to))).result().catch((e: unknown) => e);
    expect((err as MigrationFailedError).type).toBe('DestinationNotAllowed');
    expect((await stamps(to)).size).toBe(0);
  }, 60_000);

  it('refuses a source prefix outside the tenant prefix in the same store: SourceNotAllowed', async () => {
    const from = `tenants/someone-else/${uniqueId('src')}/`;
    await sourceObjects(from, 1, 100);
    const to = `tenants/${TENANT}/${uniqueId('dst')}/`;
    const err = await (await fenced.migrate(request(from, to))).result().catch((e: unknown) => e);
    expect((err as MigrationFailedError).type).toBe('SourceNotAllowed');
    expect((await stamps(to)).size).toBe(0);
  }, 60_000);

  it('refuses the same bucket with overlapping prefixes before starting', async () => {
    const prefix = `${uniqueId('same')}/`;
    const same = request(prefix, `${prefix}copy/`, { destination: { bucket: SOURCE_BUCKET, prefix: `${prefix}copy/` } });
    const err = await batches.migrate(same).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidMigrationRequestError);
    expect((err as InvalidMigrationRequestError).problems.map((p) => p.field)).toEqual(['destination']);
    await expect(batches.migrate({ ...same, destination: { bucket: SOURCE_BUCKET, prefix } })).rejects.toThrow(/overlaps the source/);
  });

  it('refuses an unknown source profile: SourceNotAllowed', async () => {
    const err = await (
      await batches.migrate(request('x/', `${uniqueId('dst')}/`, { source: { bucket: SOURCE_BUCKET, prefix: 'x/', profile: 'nope' } }))
    )
      .result()
      .catch((e: unknown) => e);
    expect((err as MigrationFailedError).type).toBe('SourceNotAllowed');
  }, 60_000);
});

it('resumes after SIGKILL of the worker mid-migration and copies no copied object again', async () => {
  const from = `${uniqueId('src')}/`;
  const to = `${uniqueId('dst')}/`;
  const total = 160;
  await sourceObjects(from, total, 64 * 1024);
  const taskQueue = uniqueId('migration-crash');
  const env = stackEnv(taskQueue);
  processes.push(await startWorkerProcess(env));
  const crashing = new BatchClient({ client: stack.client, taskQueue });
  const handle = await crashing.migrate(
    request(from, to, { objectsPerChunk: 80, objectConcurrency: 1, chunkConcurrency: 1, chunksPerRun: 10 }),
  );
  // Mid-chunk: the first chunk is done and the second has copied some of its objects.
  await expect.poll(async () => (await stamps(to)).size, { timeout: 240_000, interval: 50 }).toBeGreaterThan(90);
  await processes[0]!.kill('SIGKILL');
  const atKill = await stamps(to);
  expect(atKill.size).toBeLessThan(total);

  processes.push(await startWorkerProcess(env));
  const result = await handle.result();
  expect(result).toMatchObject({ outcome: 'completed', objectsFailed: 0 });
  expect(result.objectsCopied + result.objectsSkipped).toBe(total);
  const after = await stamps(to);
  expect(after.size).toBe(total);
  const recopied = [...atKill].filter(([key, stamp]) => after.get(key) !== stamp).map(([key]) => key);
  expect(recopied).toEqual([]);
}, 600_000);
