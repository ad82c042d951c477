/**
 * Live progress of uploads started from application code (UploadClient, no gateway): the real
 * worker publishes each activity's phase and upload-parts' bytes on the machine's Redis, and
 * `watchUpload` (what `upload-saga upload` runs) follows them from the bus instead of polling. And
 * the publisher's promise: with Redis unreachable, publishing neither throws nor waits nor grows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { UploadClient, type LiveProgress } from '../../src/client';
import { createProgressRedis } from '../../src/connections';
import { createUploadWorker } from '../../src/worker';
import { createProgressBus, type ProgressBus } from '../../src/progress/bus';
import { createProgressPublisher, type ProgressPublisher } from '../../src/progress/publisher';
import type { ProgressObservation } from '../../src/progress/view';
import { watchUpload } from '../../src/cli/watch-upload';
import { connectTestStack, runInBackground, stackEnv, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { startWorkerProcess } from '../support/worker-process';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { progressPlugin, type ProgressEvent } from '../../src/gateway/progress';
import { startTestGateway, testRedis, testTenant } from '../gateway/gateway-harness';

let stack: TestStack;
let worker: RunningWorker;
let publisherRedis: Redis;
let publisher: ProgressPublisher;
let subscriberRedis: Redis;
let bus: ProgressBus;
let tmp: Awaited<ReturnType<typeof makeTempDir>>;
let uploads: UploadClient;
// A prefix of its own: nothing else on the machine's Redis reaches these channels.
const channelPrefix = `${uniqueId('test')}:`;

beforeAll(async () => {
  stack = await connectTestStack();
  publisherRedis = createProgressRedis('redis://127.0.0.1:6379', { publishOnly: true });
  await new Promise<void>((resolve) => publisherRedis.once('ready', () => resolve()));
  publisher = createProgressPublisher({ redis: publisherRedis, channelPrefix });
  worker = runInBackground(
    await createUploadWorker({
      config: stack.config,
      connection: stack.workerConnection,
      client: stack.client,
      s3: stack.s3,
      progress: publisher,
    }),
  );
  subscriberRedis = createProgressRedis('redis://127.0.0.1:6379');
  bus = createProgressBus({ redis: subscriberRedis, channelPrefix });
  tmp = await makeTempDir();
  uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
});

afterAll(async () => {
  await worker?.stop();
  await publisher?.close();
  await bus?.close();
  publisherRedis?.disconnect();
  subscriberRedis?.disconnect();
  await stack?.close();
  await tmp?.remove();
});

describe('live progress of uploads started from application code', () => {
  it('publishes each phase and the bytes of every part; watchUpload follows the bus and polls at most once', async () => {
    const tenant = 'acme';
    const uploadId = uniqueId('live');
    const file = await makeRandomFile(tmp.dir, `${uploadId}.bin`, 40 * MiB);
    // Everything the bus carries for this upload, from before it starts.
    const observed: ProgressObservation[] = [];
    const unsubscribe = await bus.subscribe(tenant, uploadId, (o) => observed.push(o));

    const handle = await uploads.start({
      uploadId,
      tenant,
      source: { type: 'file', path: file.path },
      destination: { bucket: 'uploads', key: `live/${uploadId}.bin` },
      partSize: 5 * MiB,
      partConcurrency: 1,
    });
    // Counts the workflow reads: polling every minute would show at most one value in this upload.
    let polls = 0;
    const counted = { result: () => handle.result(), progress: () => (polls++, handle.progress()) };
    const updates: { at: number; progress: LiveProgress }[] = [];
    const sink = {
      update: (progress: LiveProgress) => updates.push({ at: Date.now(), progress }),
      finish: () => undefined,
      stop: () => undefined,
    };
    const result = await watchUpload(counted, { sink, intervalMs: 60_000, bus: { bus, tenant, uploadId } });
    await unsubscribe();

    expect(result.size).toBe(40 * MiB);
    expect(polls).toBeLessThanOrEqual(1);
    // The bar moved part by part: several distinct byte counts, rising, up to the whole file.
    const bytes = [...new Set(updates.map((u) => u.progress.bytesDone))];
    expect(bytes.length).toBeGreaterThanOrEqual(4);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(bytes.at(-1)).toBe(40 * MiB);
    // What the worker published: the phases the activities stand for, in order, and every part's bytes.
    const phases = observed.map((o) => o.phase).filter((p, i, all) => p !== all[i - 1]);
    expect(phases).toEqual(expect.arrayContaining(['upload-parts', 'verify', 'merge']));
    expect(phases.indexOf('upload-parts')).toBeLessThan(phases.indexOf('verify'));
    expect(phases.indexOf('verify')).toBeLessThan(phases.indexOf('merge'));
    const partBytes = observed.filter((o) => o.phase === 'upload-parts' && o.bytes !== undefined).map((o) => o.bytes);
    // One per finished part (observations queued during a send merge into the latest: at least half arrive one by one).
    expect(new Set(partBytes.filter((b) => b! > 0 && b! % (5 * MiB) === 0)).size).toBeGreaterThanOrEqual(4);
    expect(partBytes).toContain(40 * MiB);
    expect(
      observed.every((o) => o.tenant === tenant && o.uploadId === uploadId && (o.totalBytes === undefined || o.totalBytes === 40 * MiB)),
    ).toBe(true);
    const spacing = updates.slice(1).map((u, i) => u.at - updates[i]!.at);
    process.stderr.write(
      `[live-progress] ${updates.length} bar updates over ${updates.at(-1)!.at - updates[0]!.at} ms from the bus (median gap ${spacing.sort((a, b) => a - b)[spacing.length >> 1]} ms), ${polls} workflow read(s); ${publisher.stats.sent} observations sent\n`,
    );
  });

  it('falls back to polling when the bus cannot subscribe', async () => {
    const uploadId = uniqueId('fallback');
    const file = await makeRandomFile(tmp.dir, `${uploadId}.bin`, 6 * MiB);
    const handle = await uploads.start({
      uploadId,
      tenant: 'acme',
      source: { type: 'file', path: file.path },
      destination: { bucket: 'uploads', key: `live/${uploadId}.bin` },
      partSize: 5 * MiB,
    });
    const broken: ProgressBus = {
      publish: async () => false,
      subscribe: () => Promise.reject(new Error('Redis is away')),
      close: async () => undefined,
    };
    let polls = 0;
    const counted = { result: () => handle.result(), progress: () => (polls++, handle.progress()) };
    const sink = { update: () => undefined, finish: () => undefined, stop: () => undefined };
    const result = await watchUpload(counted, { sink, intervalMs: 20, bus: { bus: broken, tenant: 'acme', uploadId } });
    expect(result.size).toBe(6 * MiB);
    // Polled every 20 ms for the whole upload, where the bus would have read the workflow once.
    expect(polls).toBeGreaterThan(2);
  });
});

describe('a worker started from the environment', () => {
  it('with UPLOAD_SAGA_PROGRESS_REDIS_URL publishes on the gateway’s channels (default prefix), and stops cleanly', async () => {
    const taskQueue = uniqueId('progress-env');
    const worker = await startWorkerProcess(
      stackEnv(taskQueue, { UPLOAD_SAGA_PROGRESS_REDIS_URL: 'redis://127.0.0.1:6379', LOG_LEVEL: 'info', LOG_FORMAT: 'json' }),
    );
    const defaultBus = createProgressBus({ redis: subscriberRedis });
    try {
      const tenant = uniqueId('envtenant');
      const uploadId = uniqueId('env');
      const observed: ProgressObservation[] = [];
      const unsubscribe = await defaultBus.subscribe(tenant, uploadId, (o) => observed.push(o));
      const file = await makeRandomFile(tmp.dir, `${uploadId}.bin`, 12 * MiB);
      const handle = await new UploadClient({ client: stack.client, taskQueue }).start({
        uploadId,
        tenant,
        source: { type: 'file', path: file.path },
        destination: { bucket: 'uploads', key: `live/${uploadId}.bin` },
        partSize: 5 * MiB,
      });
      await handle.result();
      await expect.poll(() => observed.some((o) => o.phase === 'merge')).toBe(true);
      await unsubscribe();
      expect(observed.filter((o) => o.phase === 'upload-parts').map((o) => o.bytes)).toContain(12 * MiB);
      expect(worker.output()).not.toContain('live progress not published');
    } finally {
      await defaultBus.close();
      await worker.kill('SIGTERM');
    }
    expect(worker.child.exitCode).toBe(0);
  });
});

describe('a gateway progress stream of an upload started from application code', () => {
  it('shows the worker’s part-by-part bytes from the bus between its polls, then the final event with the object', async () => {
    const tenant = testTenant('liveapp');
    const gatewayRedis = testRedis();
    // Polls every 2 s (the default): the upload's one batch of parts is reported by the workflow only once it is done.
    const gateway = await startTestGateway(stack, [tenant], { redis: gatewayRedis, plugins: [progressPlugin({ channelPrefix })] });
    try {
      const uploadId = uniqueId('sse');
      const file = await makeRandomFile(tmp.dir, `${uploadId}.bin`, 40 * MiB);
      const handle = await uploads.start({
        uploadId,
        tenant: tenant.name,
        source: { type: 'file', path: file.path },
        destination: { bucket: 'uploads', key: `live/${uploadId}.bin` },
        partSize: 5 * MiB,
        partConcurrency: 1,
      });
      const response = await fetch(`${gateway.url}/uploads/${uploadId}/events`, { headers: tenant.auth });
      expect(response.status).toBe(200);
      const events: ProgressEvent[] = [];
      let buffer = '';
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += Buffer.from(chunk).toString('utf8');
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const data = /^data: (.*)$/m.exec(buffer.slice(0, end))?.[1];
          buffer = buffer.slice(end + 2);
          if (data) events.push(JSON.parse(data) as ProgressEvent);
        }
      }
      await handle.result();
      const running = [...new Set(events.filter((e) => e.outcome === 'running' && e.phase === 'upload-parts').map((e) => e.bytes))];
      expect(running.filter((b) => b > 0 && b < 40 * MiB).length).toBeGreaterThanOrEqual(2);
      expect(events.at(-1)).toMatchObject({
        outcome: 'completed',
        bytes: 40 * MiB,
        object: { bucket: 'uploads', key: `live/${uploadId}.bin`, size: 40 * MiB },
      });
      // Another tenant's token finds nothing under that id.
      const other = testTenant('liveother');
      const foreign = await startTestGateway(stack, [other], { redis: gatewayRedis, plugins: [progressPlugin({ channelPrefix })] });
      try {
        expect((await fetch(`${foreign.url}/uploads/${uploadId}/events`, { headers: other.auth })).status).toBe(404);
      } finally {
        await foreign.close();
      }
    } finally {
      await gateway.close();
      await gatewayRedis.quit();
    }
  });
});

describe('a gateway progress stream of a failed upload started from application code', () => {
  it('sends one final event with the outcome and the cause', async () => {
    const tenant = testTenant('livefail');
    const gatewayRedis = testRedis();
    const gateway = await startTestGateway(stack, [tenant], { redis: gatewayRedis, plugins: [progressPlugin({ channelPrefix })] });
    try {
      const uploadId = uniqueId('missing');
      const handle = await uploads.start({
        uploadId,
        tenant: tenant.name,
        source: { type: 'file', path: `${tmp.dir}/missing.bin` },
        destination: { bucket: 'uploads', key: `live/${uploadId}.bin` },
      });
      await handle.result().catch(() => undefined);
      const response = await fetch(`${gateway.url}/uploads/${uploadId}/events`, { headers: tenant.auth });
      expect(response.status).toBe(200);
      const data = [...(await response.text()).matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as ProgressEvent);
      expect(data).toHaveLength(1);
      expect(data[0]).toMatchObject({ uploadId, phase: 'done', error: expect.stringContaining('SourceNotFound') });
      expect(['compensated', 'failed']).toContain(data[0]!.outcome);
      expect(data[0]!.object).toBeUndefined();
    } finally {
      await gateway.close();
      await gatewayRedis.quit();
    }
  });
});

describe('the progress publisher', () => {
  it('with Redis unreachable: never throws or waits, keeps at most maxQueued uploads, reports errors rate-limited', async () => {
    const unreachable = createProgressRedis('redis://127.0.0.1:1', { publishOnly: true });
    const errors: { error: Error; suppressed: number }[] = [];
    const offline = createProgressPublisher({
      redis: unreachable,
      maxQueued: 100,
      onError: (error, suppressed) => errors.push({ error, suppressed }),
    });
    try {
      const started = performance.now();
      for (let i = 0; i < 1_000; i++) offline.publish({ tenant: 'acme', uploadId: `u${i}`, at: Date.now(), bytes: i });
      // The same upload again: merged into its queued observation, not a new entry.
      for (let i = 0; i < 1_000; i++) offline.publish({ tenant: 'acme', uploadId: 'u999', at: Date.now(), bytes: i });
      const elapsedMs = performance.now() - started;
      expect(elapsedMs).toBeLessThan(500);
      expect(offline.stats.dropped).toBe(900);
      await expect.poll(() => offline.stats.failed).toBe(100);
      expect(offline.stats.sent).toBe(0);
      // One report for the 100 failures (the rest are suppressed within the interval).
      expect(errors).toHaveLength(1);
      expect(errors[0]!.error.message).toMatch(/Stream isn't writeable|enableOfflineQueue|Connection is closed/i);
      process.stderr.write(`[live-progress] 2,000 publishes with Redis unreachable: ${elapsedMs.toFixed(1)} ms\n`);
    } finally {
      await offline.close();
      unreachable.disconnect();
    }
  });
});
