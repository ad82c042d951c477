/**
 * The live progress stream across gateway replicas: two in-process gateways sharing the machine's
 * Redis, the real worker, Temporal and MinIO. A stream opened on replica B must show what replica A
 * records (over Redis pub/sub, with B's own poll switched off), and a stream's poll must show what
 * no gateway sees (parts sent straight to S3, an expiry).
 */
import { randomBytes } from 'node:crypto';
import { UploadPartCommand } from '@aws-sdk/client-s3';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progressPlugin } from '../../src/gateway/progress';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { createTusUpload, idOf, startTestGateway, testRedis, testTenant, tusRequest, type TestGateway } from './gateway-harness';
import { openStream } from './progress-stream';

let stack: TestStack;
let worker: RunningWorker;
let redis: Redis;
/** Records chunks (and polls at the default rate). */
let replicaA: TestGateway;
/** Serves streams and never polls after the first read: whatever it shows later came over Redis. */
let replicaB: TestGateway;
const acme = testTenant('progacme');
const beta = testTenant('progbeta');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  redis = testRedis();
  replicaA = await startTestGateway(stack, [acme, beta], { redis, plugins: [progressPlugin()] });
  replicaB = await startTestGateway(stack, [acme, beta], { redis, plugins: [progressPlugin({ pollIntervalMs: 3_600_000 })] });
});

afterAll(async () => {
  await replicaB?.close();
  await replicaA?.close();
  await redis?.quit();
  await worker?.stop();
  await stack?.close();
});

describe('the progress stream across replicas', () => {
  it('shows on replica B, over Redis, every chunk replica A records, then the final event with the object', async () => {
    const url = await createTusUpload(replicaA, acme, 12 * MiB, 'watched.bin');
    const uploadId = idOf(url);
    const stream = await openStream(replicaB, uploadId, acme.auth);
    try {
      expect(stream.status).toBe(200);
      expect(stream.contentType).toMatch(/^text\/event-stream/);
      await expect.poll(() => stream.events.length).toBeGreaterThan(0);
      expect(stream.events[0]).toMatchObject({ uploadId, phase: 'receive-parts', bytes: 0, totalBytes: 12 * MiB, outcome: 'running' });

      const data = randomBytes(12 * MiB);
      const delays: number[] = [];
      for (let offset = 0; offset < data.length; offset += 4 * MiB) {
        const patch = await tusRequest(
          url,
          'PATCH',
          { ...acme.auth, 'Upload-Offset': String(offset) },
          data.subarray(offset, offset + 4 * MiB),
        );
        expect(patch.status).toBe(204);
        const answered = Date.now();
        // B shows the recorded offset without polling: it came from A over Redis.
        await expect.poll(() => stream.events.some((e) => e.bytes === offset + 4 * MiB), { timeout: 10_000, interval: 5 }).toBe(true);
        delays.push(Date.now() - answered);
      }
      // A figure, not an assertion: how long after A answered a PATCH its offset reached B's stream.
      process.stderr.write(`[progress] PATCH answered on A → event on B's stream: ${delays.map((d) => `${d} ms`).join(', ')}\n`);
      await stream.ended;
    } finally {
      stream.close();
    }

    // Every recorded offset, in order: each PATCH's end, and parts recorded within a PATCH (10 MiB).
    const bytesSeen = [...new Set(stream.events.map((e) => e.bytes))];
    expect(bytesSeen).toEqual([...bytesSeen].sort((a, b) => a - b));
    expect(bytesSeen).toEqual(expect.arrayContaining([0, 4 * MiB, 8 * MiB, 12 * MiB]));
    expect(stream.events.some((e) => e.outcome === 'running' && e.rateBytesPerSecond > 0)).toBe(true);
    const last = stream.events[stream.events.length - 1]!;
    expect(last).toMatchObject({
      outcome: 'completed',
      phase: 'done',
      bytes: 12 * MiB,
      rateBytesPerSecond: 0,
      object: { bucket: 'uploads', key: `${acme.name}/${uploadId}/watched.bin`, size: 12 * MiB },
    });
    // Two parts: the first 4 MiB staged, folded with the next PATCH's 4 MiB into an 8 MiB part; the last 4 MiB.
    expect(last.object!.etag).toMatch(/-2"?$/);
    expect(stream.events.filter((e) => e.outcome !== 'running')).toHaveLength(1);
  });

  it('polls what no gateway sees: parts sent straight to S3 (ListParts), then the upload’s expiry as the final event', async () => {
    const expiring = testTenant('progexpire');
    const short = await startTestGateway(stack, [expiring], {
      redis,
      plugins: [progressPlugin({ pollIntervalMs: 500 })],
      overrides: { uploadExpiryMs: 8_000 },
    });
    try {
      const state = await short.app.uploads.create({ tenant: expiring.name, mode: 'presigned', filename: 'direct.bin', length: 10 * MiB });
      const stream = await openStream(short, state.uploadId, expiring.auth);
      try {
        // A browser's PUT with a presigned URL: S3 only, no gateway involved.
        await stack.s3.send(
          new UploadPartCommand({
            Bucket: state.bucket,
            Key: state.key,
            UploadId: state.multipartUploadId!,
            PartNumber: 1,
            Body: randomBytes(5 * MiB),
          }),
        );
        await expect.poll(() => stream.events.some((e) => e.bytes === 5 * MiB && e.outcome === 'running'), { timeout: 10_000 }).toBe(true);
        await stream.ended;
      } finally {
        stream.close();
      }
      const last = stream.events[stream.events.length - 1]!;
      expect(last).toMatchObject({ outcome: 'expired', phase: 'done', error: expect.stringContaining('UploadExpired') });
      expect(last.object).toBeUndefined();
    } finally {
      await short.close();
    }
  });

  it('is tenant-scoped: another tenant’s upload is a 404, no token a 401; a stream on an ended upload sends only its final event', async () => {
    const url = await createTusUpload(replicaA, acme, 1024, 'small.bin');
    const uploadId = idOf(url);
    const foreign = await fetch(`${replicaB.url}/uploads/${uploadId}/events`, { headers: beta.auth });
    expect(foreign.status).toBe(404);
    expect(await foreign.json()).toMatchObject({ error: 'UploadNotFound' });
    expect((await fetch(`${replicaB.url}/uploads/${uploadId}/events`)).status).toBe(401);
    expect((await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': '0' }, randomBytes(1024))).status).toBe(204);
    // The PATCH answered at the merge; the saga ends after it.
    await replicaA.app.uploads.waitForEnd(acme.name, uploadId, 30_000);

    const stream = await openStream(replicaB, uploadId, acme.auth);
    await stream.ended;
    expect(stream.events).toHaveLength(1);
    expect(stream.events[0]).toMatchObject({ outcome: 'completed', bytes: 1024, object: { size: 1024 } });
  });

  it('learns the end at once when a merged upload’s mark still says running (nobody saw the end), though B never polls', async () => {
    const url = await createTusUpload(replicaA, acme, 1024, 'marked.bin');
    const uploadId = idOf(url);
    expect((await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': '0' }, randomBytes(1024))).status).toBe(204);
    const ended = await replicaA.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(ended.outcome).toBe('completed');
    // The mark as the finishing PATCH left it, as if no replica had seen the end since.
    const { result: _result, ...merged } = ended;
    await redis.set(
      `upload-saga:merged:${acme.name}:${uploadId}`,
      JSON.stringify({ ...merged, phase: 'notify', outcome: 'running', merged: true }),
      'PX',
      60_000,
    );
    const stream = await openStream(replicaB, uploadId, acme.auth);
    try {
      await expect.poll(() => stream.events.length, { timeout: 10_000 }).toBe(2);
      await stream.ended;
      // At once from the mark, then the workflow's answer (B's interval poll is an hour: this is the poll at the start).
      expect(stream.events.map((e) => e.outcome)).toEqual(['running', 'completed']);
      expect(stream.events[0]).toMatchObject({ bytes: 1024, totalBytes: 1024 });
      expect(stream.events[1]).toMatchObject({ bytes: 1024, object: { size: 1024 } });
    } finally {
      stream.close();
    }
  });

  it('ends its open streams when the gateway stops, so stopping does not wait for them', async () => {
    const stopping = await startTestGateway(stack, [acme], { redis, plugins: [progressPlugin()] });
    const url = await createTusUpload(stopping, acme, 2 * MiB, 'interrupted.bin');
    const stream = await openStream(stopping, idOf(url), acme.auth);
    await expect.poll(() => stream.events.length).toBe(1);
    const started = Date.now();
    await stopping.close();
    await stream.ended;
    // A figure for the log, the assertion is that close() returned at all (a stream lives for 24 h).
    process.stderr.write(`[progress] gateway close with an open stream: ${Date.now() - started} ms\n`);
    expect(stream.events.every((e) => e.outcome === 'running')).toBe(true);
    await tusRequest(new URL(new URL(url).pathname, replicaA.url).href, 'DELETE', acme.auth);
  });

  it('does not deliver an observation whose payload names another tenant than its channel', async () => {
    const url = await createTusUpload(replicaA, acme, 2 * MiB, 'guarded.bin');
    const uploadId = idOf(url);
    const stream = await openStream(replicaB, uploadId, acme.auth);
    try {
      await expect.poll(() => stream.events.length).toBe(1);
      // A forged message on acme's channel claiming to be about beta's upload of the same id.
      await redis.publish(
        `upload-saga:progress:${acme.name}:${uploadId}`,
        JSON.stringify({ tenant: beta.name, uploadId, at: Date.now(), bytes: MiB, outcome: 'running' }),
      );
      // A well-formed one on the right channel gets through (so the forged one had its chance).
      await redis.publish(
        `upload-saga:progress:${acme.name}:${uploadId}`,
        JSON.stringify({ tenant: acme.name, uploadId, at: Date.now(), bytes: 1, outcome: 'running' }),
      );
      await expect.poll(() => stream.events.some((e) => e.bytes === 1)).toBe(true);
      expect(stream.events.some((e) => e.bytes === MiB)).toBe(false);
    } finally {
      stream.close();
      await tusRequest(url, 'DELETE', acme.auth);
    }
  });
});
