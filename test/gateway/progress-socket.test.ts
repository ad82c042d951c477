/**
 * The WebSocket progress stream across gateway replicas: two in-process gateways sharing the
 * machine's Redis, the real worker, Temporal and MinIO. An upload recorded on replica A is seen
 * over a WebSocket on replica B (whose poll is switched off: what B shows later came over Redis);
 * a cancel sent on B's socket cancels the upload A started; bad frames get error frames; a peer
 * that stops answering pings is dropped.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { progressPlugin, type ProgressEvent } from '../../src/gateway/progress';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { createTusUpload, idOf, startTestGateway, testRedis, testTenant, tusRequest, type TestGateway } from './gateway-harness';

let stack: TestStack;
let worker: RunningWorker;
let redis: Redis;
let replicaA: TestGateway;
let replicaB: TestGateway;
const acme = testTenant('wsacme');
const beta = testTenant('wsbeta');
/** Replica B's gauge of open WebSocket streams, as Prometheus would scrape it. */
async function openWebSocketsOnB(): Promise<number | undefined> {
  const series = 'upload_saga_gateway_open_streams{protocol="websocket"}';
  const line = (await replicaB.app.metrics.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  redis = testRedis();
  replicaA = await startTestGateway(stack, [acme, beta], { redis, plugins: [progressPlugin()] });
  replicaB = await startTestGateway(stack, [acme, beta], {
    redis,
    plugins: [progressPlugin({ pollIntervalMs: 3_600_000, pingIntervalMs: 300 })],
  });
});

afterAll(async () => {
  await replicaB?.close();
  await replicaA?.close();
  await redis?.quit();
  await worker?.stop();
  await stack?.close();
});

type ServerMessage =
  ({ type: 'progress' } & ProgressEvent) | { type: 'cancel-requested' } | { type: 'error'; error: string; message: string };

interface Socket {
  ws: WebSocket;
  messages: ServerMessage[];
  progress(): ProgressEvent[];
  /** Resolves with the close code once the connection is closed. */
  closed: Promise<number>;
}

/** Opens `GET /uploads/:id/socket` on a gateway and collects its messages. */
async function openSocket(
  gateway: TestGateway,
  uploadId: string,
  headers: Record<string, string>,
  options: WebSocket.ClientOptions = {},
  query = '',
): Promise<Socket> {
  const ws = new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/uploads/${uploadId}/socket${query}`, { headers, ...options });
  const messages: ServerMessage[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data)) as ServerMessage));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    messages,
    closed,
    progress: () => messages.filter((m): m is { type: 'progress' } & ProgressEvent => m.type === 'progress'),
  };
}

/** The HTTP status a refused upgrade answered with. */
function refusedStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => undefined);
  });
}

describe('the WebSocket progress stream across replicas', () => {
  it('shows on replica B, over Redis, every chunk replica A records, then the final event, and closes with 1000', async () => {
    const url = await createTusUpload(replicaA, acme, 8 * MiB, 'socket.bin');
    const uploadId = idOf(url);
    const socket = await openSocket(replicaB, uploadId, acme.auth);
    await expect.poll(() => socket.progress().length).toBeGreaterThan(0);
    expect(await openWebSocketsOnB()).toBe(1);
    expect(socket.progress()[0]).toMatchObject({ uploadId, phase: 'receive-parts', bytes: 0, totalBytes: 8 * MiB, outcome: 'running' });

    const data = randomBytes(8 * MiB);
    for (let offset = 0; offset < data.length; offset += 4 * MiB) {
      const patch = await tusRequest(
        url,
        'PATCH',
        { ...acme.auth, 'Upload-Offset': String(offset) },
        data.subarray(offset, offset + 4 * MiB),
      );
      expect(patch.status).toBe(204);
      await expect.poll(() => socket.progress().some((e) => e.bytes === offset + 4 * MiB), { timeout: 10_000, interval: 5 }).toBe(true);
    }
    expect(await socket.closed).toBe(1000);
    const last = socket.progress().at(-1)!;
    expect(last).toMatchObject({ outcome: 'completed', phase: 'done', bytes: 8 * MiB, object: { bucket: 'uploads', size: 8 * MiB } });
    expect(socket.progress().filter((e) => e.outcome !== 'running')).toHaveLength(1);
    await expect.poll(() => openWebSocketsOnB()).toBe(0);
  });

  it('cancels, on replica B, an upload started on replica A, and shows the cancelled outcome', async () => {
    const url = await createTusUpload(replicaA, acme, 10 * MiB, 'cancelled.bin');
    const uploadId = idOf(url);
    expect((await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': '0' }, randomBytes(6 * MiB))).status).toBe(204);
    const socket = await openSocket(replicaB, uploadId, acme.auth);
    await expect.poll(() => socket.progress().length).toBeGreaterThan(0);
    socket.ws.send(JSON.stringify({ type: 'cancel' }));
    expect(await socket.closed).toBe(1000);
    expect(socket.messages).toContainEqual({ type: 'cancel-requested' });
    const last = socket.progress().at(-1)!;
    expect(last.outcome).toBe('cancelled');
    // The upload is gone for every replica: A answers its tus HEAD with 410.
    expect((await tusRequest(url, 'HEAD', acme.auth)).status).toBe(410);
  });

  it('answers bad frames with error frames and stays open; a frame over 4 KiB closes with 1009', async () => {
    const url = await createTusUpload(replicaA, acme, 1 * MiB, 'bad-frames.bin');
    const uploadId = idOf(url);
    const socket = await openSocket(replicaB, uploadId, acme.auth);
    socket.ws.send('not json');
    socket.ws.send(JSON.stringify({ type: 'pause' }));
    socket.ws.send(JSON.stringify([1, 2]));
    socket.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await expect.poll(() => socket.messages.filter((m) => m.type === 'error').length).toBe(4);
    expect(socket.messages.filter((m) => m.type === 'error').map((m) => (m as { error: string }).error)).toEqual([
      'InvalidMessage',
      'UnknownMessageType',
      'InvalidMessage',
      'InvalidMessage',
    ]);
    expect(socket.ws.readyState).toBe(WebSocket.OPEN);
    // Still served: the upload's completion arrives on the same connection.
    expect((await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': '0' }, randomBytes(1 * MiB))).status).toBe(204);
    expect(await socket.closed).toBe(1000);
    expect(socket.progress().at(-1)).toMatchObject({ outcome: 'completed' });

    const other = await openSocket(replicaB, idOf(await createTusUpload(replicaA, acme, 1024, 'big-frame.bin')), acme.auth);
    other.ws.send(JSON.stringify({ type: 'cancel', padding: 'x'.repeat(5000) }));
    expect(await other.closed).toBe(1009);
  });

  it('has the SSE stream’s rules: no token is a 401, another tenant’s upload a 404, the access_token query parameter works', async () => {
    const uploadId = idOf(await createTusUpload(replicaA, acme, 1024, 'auth.bin'));
    const base = `${replicaB.url.replace(/^http/, 'ws')}/uploads/${uploadId}/socket`;
    expect(await refusedStatus(base)).toBe(401);
    expect(await refusedStatus(base, beta.auth)).toBe(404);
    expect(await refusedStatus(`${replicaB.url.replace(/^http/, 'ws')}/uploads/${uploadId}/socket?access_token=${beta.token}`)).toBe(404);
    const socket = await openSocket(replicaB, uploadId, {}, {}, `?access_token=${acme.token}`);
    await expect.poll(() => socket.progress().length).toBe(1);
    // Another tenant cannot cancel it either: its socket was never opened, and the upload still runs.
    socket.ws.close();
    expect((await tusRequest(`${replicaA.url}/files/${uploadId}`, 'HEAD', acme.auth)).status).toBe(200);
    await tusRequest(`${replicaA.url}/files/${uploadId}`, 'DELETE', acme.auth);
  });

  it('drops a peer that does not answer pings, and keeps one that does', async () => {
    const uploadId = idOf(await createTusUpload(replicaA, acme, 1024, 'ping.bin'));
    const silent = await openSocket(replicaB, uploadId, acme.auth, { autoPong: false });
    const answering = await openSocket(replicaB, uploadId, acme.auth);
    const started = Date.now();
    // Ping every 300 ms: the silent peer is dropped at the second tick without a close frame (1006).
    expect(await silent.closed).toBe(1006);
    const droppedAfter = Date.now() - started;
    expect(droppedAfter).toBeLessThan(2_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(answering.ws.readyState).toBe(WebSocket.OPEN);
    answering.ws.close();
    await answering.closed;
    process.stderr.write(`[progress] silent WebSocket peer dropped after ${droppedAfter} ms (ping every 300 ms)\n`);
    await tusRequest(`${replicaA.url}/files/${uploadId}`, 'DELETE', acme.auth);
  });
});
