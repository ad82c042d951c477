/**
 * Logs and health probes, against the real stack: a worker started the way `upload-saga worker`
 * starts it (a child process of bin/upload-saga.cjs) writes JSON lines about an upload with its
 * tenant, upload id and workflow id, and serves /livez and /readyz; gateways in this process log
 * JSON request lines, point their 500 answers at a logged line, and answer /readyz with 503
 * naming the dependency that is down (an S3 endpoint, a Redis and a Temporal on closed ports)
 * while the others are up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Client, Connection } from '@temporalio/client';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient } from '../src/client';
import { createS3Client } from '../src/connections';
import { findFreePort } from '../src/embedded/free-port';
import type { GatewayPlugin } from '../src/gateway/plugin-types';
import { createGateway } from '../src/gateway/server';
import { createLogger, redactUrl, type LoggingConfig } from '../src/logging';
import { makeRandomFile, makeTempDir, MiB } from './support/files';
import { connectTestStack, startUploadWorker, uniqueId, type TestStack } from './support/harness';
import { testRedis, testTenant } from './gateway/gateway-harness';

const BIN = path.resolve(__dirname, '../bin/upload-saga.cjs');

let stack: TestStack;
const children: ChildProcess[] = [];

beforeAll(async () => {
  stack = await connectTestStack();
});

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  }
  await stack?.close();
});

interface CliWorker {
  health: string;
  lines(): Record<string, unknown>[];
  output(): string;
}

/** `upload-saga worker` in a child process with `extra` over the stack's environment; resolves once /livez answers. */
async function startCliWorker(extra: Record<string, string>): Promise<CliWorker> {
  const port = await findFreePort();
  const child = spawn(process.execPath, [BIN, 'worker'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...stack.env,
      LOG_FORMAT: 'json',
      UPLOAD_SAGA_HEALTH_PORT: String(port),
      UPLOAD_SAGA_HEALTH_HOST: '127.0.0.1',
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const health = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}:\n${output.slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`worker health never answered:\n${output.slice(-2000)}`);
    const live = await fetch(`${health}/livez`).catch(() => undefined);
    if (live?.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    health,
    output: () => output,
    lines: () =>
      output
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A pino logger writing into an array of parsed lines. */
function memoryLogger(config: LoggingConfig) {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger(config, { destination, name: 'gateway' }), lines };
}

async function readyz(
  url: string,
): Promise<{ status: number; body: { status: string; checks: Record<string, { status: string; message?: string }> } }> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: (await response.json()) as never };
}

describe('worker logs and health (upload-saga worker)', () => {
  it('writes JSON lines with tenant, uploadId and workflowId for an upload, and is live and ready', async () => {
    const taskQueue = uniqueId('obs-worker');
    const worker = await startCliWorker({ TEMPORAL_TASK_QUEUE: taskQueue });
    const tmp = await makeTempDir();
    try {
      const file = await makeRandomFile(tmp.dir, 'obs.bin', 6 * MiB);
      const tenant = uniqueId('obs');
      const uploadId = uniqueId('up');
      const uploads = new UploadClient({ client: stack.client, taskQueue });
      const handle = await uploads.start({
        uploadId,
        tenant,
        source: { type: 'file', path: file.path },
        destination: { bucket: 'uploads', key: `obs/${uploadId}.bin` },
        partSize: 5 * MiB,
      });
      await handle.result();
      const ready = await readyz(worker.health);
      expect(ready.status, JSON.stringify(ready.body)).toBe(200);
      expect(ready.body.checks.worker!.status).toBe('up');
      expect(ready.body.checks.s3!.status).toBe('up');

      const deadline = Date.now() + 10_000;
      let stored: Record<string, unknown> | undefined;
      while (!stored && Date.now() < deadline) {
        stored = worker.lines().find((l) => l.msg === 'object stored' && l.uploadId === uploadId);
        if (!stored) await new Promise((r) => setTimeout(r, 200));
      }
      expect(stored, worker.output().slice(-3000)).toBeDefined();
      expect(stored).toMatchObject({
        level: 30,
        name: 'worker',
        tenant,
        uploadId,
        workflowId: handle.workflowId,
        activityType: 'completeUpload',
        taskQueue,
      });
      expect(worker.lines().some((l) => String(l.msg).startsWith('upload-saga worker on task queue'))).toBe(true);
      // info by default: nothing below it
      expect(worker.lines().every((l) => (l.level as number) >= 30)).toBe(true);
    } finally {
      await tmp.remove();
    }
  });

  it('LOG_LEVEL=warn leaves out info lines', async () => {
    const worker = await startCliWorker({ TEMPORAL_TASK_QUEUE: uniqueId('obs-warn'), LOG_LEVEL: 'warn' });
    await new Promise((r) => setTimeout(r, 500));
    expect(worker.lines().filter((l) => (l.level as number) < 40)).toEqual([]);
    expect(worker.output()).not.toContain('upload-saga worker on task queue');
  });

  it('is not ready, naming S3, when S3 does not answer', async () => {
    const closed = await findFreePort();
    const worker = await startCliWorker({ TEMPORAL_TASK_QUEUE: uniqueId('obs-nos3'), S3_ENDPOINT: `http://127.0.0.1:${closed}` });
    const ready = await readyz(worker.health);
    expect(ready.status).toBe(503);
    expect(ready.body.checks.s3!.status).toBe('down');
    expect(ready.body.checks.worker!.status).toBe('up');
    expect((await fetch(`${worker.health}/livez`)).status).toBe(200);
  });
});

describe('gateway logs and readiness', () => {
  const tenant = testTenant('obs-gw');
  const throwing: GatewayPlugin = async (app) => {
    app.get('/boom', async () => {
      throw new Error('kaput');
    });
  };

  async function gateway(
    options: { logging?: LoggingConfig; s3Endpoint?: string; redis?: Redis; client?: Client; plugins?: GatewayPlugin[] } = {},
  ) {
    const { logger, lines } = memoryLogger(options.logging ?? { level: 'info', format: 'json' });
    const { hashToken, loadGatewayConfig } = await import('../src/gateway/config');
    const s3 = options.s3Endpoint ? createS3Client({ ...stack.config.s3, endpoint: options.s3Endpoint }) : stack.s3;
    const app = await createGateway({
      config: loadGatewayConfig({ UPLOAD_SAGA_GATEWAY_TOKENS: `${tenant.name}=${hashToken(tenant.token)}` }),
      client: options.client ?? stack.client,
      taskQueue: stack.config.temporal.taskQueue,
      s3,
      ...(options.redis ? { redis: options.redis } : {}),
      plugins: options.plugins ?? [],
      loggerInstance: logger,
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    return {
      url,
      lines,
      close: async () => {
        await app.close();
        if (s3 !== stack.s3) s3.destroy();
      },
    };
  }

  it('logs a JSON line per request, and a 500 answer names the request id of the logged error', async () => {
    const gw = await gateway({ plugins: [throwing] });
    try {
      const answer = await fetch(`${gw.url}/boom?access_token=${tenant.token}`);
      expect(answer.status).toBe(500);
      const body = (await answer.json()) as { requestId: string; message: string };
      expect(body.message).toContain(body.requestId);
      expect(answer.headers.get('x-request-id')).toBe(body.requestId);
      const failed = gw.lines.find((l) => l.msg === 'request failed');
      expect(failed).toMatchObject({ level: 50, reqId: body.requestId, err: { message: 'kaput' } });
      const incoming = gw.lines.find((l) => l.msg === 'incoming request' && l.reqId === body.requestId);
      expect(incoming).toMatchObject({ name: 'gateway', req: { method: 'GET' } });
      // the token in the query is cut from the logged URL
      expect(JSON.stringify(gw.lines)).not.toContain(tenant.token);
      expect(gw.lines.some((l) => l.msg === 'request completed' && (l.res as { statusCode: number }).statusCode === 500)).toBe(true);
    } finally {
      await gw.close();
    }
  });

  it('`upload-saga gateway` logs JSON request lines at info by default, to stderr', async () => {
    const port = await findFreePort();
    const child = spawn(process.execPath, [BIN, 'gateway'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...stack.env, UPLOAD_SAGA_GATEWAY_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const url = `http://127.0.0.1:${port}`;
    for (let waited = 0; ; waited += 200) {
      expect(child.exitCode, stderr).toBeNull();
      expect(waited, stderr).toBeLessThan(30_000);
      if ((await fetch(`${url}/livez`).catch(() => undefined))?.status === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const answer = await fetch(`${url}/files`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', Authorization: 'Bearer nope' } });
    expect(answer.status).toBe(401);
    const requestId = answer.headers.get('x-request-id');
    await new Promise((r) => setTimeout(r, 300));
    const lines = stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(
      lines.find((l) => l.msg === 'incoming request' && l.reqId === requestId),
      stderr,
    ).toMatchObject({
      level: 30,
      name: 'gateway',
      req: { method: 'POST', url: '/files' },
    });
    expect(lines.find((l) => l.msg === 'request completed' && l.reqId === requestId)).toMatchObject({ res: { statusCode: 401 } });
    expect(stderr).not.toContain('Bearer nope');
    // the probes stay out of the info log
    expect(lines.some((l) => (l.req as { url?: string } | undefined)?.url === '/livez')).toBe(false);
  });

  it('a tus request that fails unexpectedly (S3 unreachable) answers 500 naming the request id of the logged error', async () => {
    const worker = await startUploadWorker(stack);
    const gw = await gateway({ s3Endpoint: `http://127.0.0.1:${await findFreePort()}` });
    try {
      const created = await fetch(`${gw.url}/files`, {
        method: 'POST',
        headers: { ...tenant.auth, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(6 * MiB) },
      });
      expect(created.status, await created.text()).toBe(201);
      const answer = await fetch(new URL(created.headers.get('location')!, gw.url), {
        method: 'PATCH',
        headers: { ...tenant.auth, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        body: Buffer.alloc(5 * MiB),
      });
      const text = await answer.text();
      expect(answer.status, text).toBe(500);
      const requestId = answer.headers.get('x-request-id')!;
      expect(text).toContain(`request id ${requestId}`);
      expect(gw.lines.find((l) => l.msg === 'request failed' && l.reqId === requestId)).toMatchObject({ level: 50, err: {} });
    } finally {
      await gw.close();
      await worker.stop();
    }
  });

  it('LOG_LEVEL=warn leaves out request lines', async () => {
    const gw = await gateway({ logging: { level: 'warn', format: 'json' } });
    try {
      expect((await fetch(`${gw.url}/files`, { headers: tenant.auth })).status).toBeGreaterThan(0);
      expect(gw.lines.filter((l) => (l.level as number) < 40)).toEqual([]);
    } finally {
      await gw.close();
    }
  });

  it('/livez and /readyz answer 200 with Temporal, S3 and Redis up', async () => {
    const redis = testRedis();
    const gw = await gateway({ redis });
    try {
      expect((await fetch(`${gw.url}/livez`)).status).toBe(200);
      const ready = await readyz(gw.url);
      expect(ready.status, JSON.stringify(ready.body)).toBe(200);
      expect(ready.body).toEqual({
        status: 'ready',
        checks: { temporal: { status: 'up' }, s3: { status: 'up' }, redis: { status: 'up' } },
      });
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    } finally {
      await gw.close();
      await redis.quit();
    }
  });

  it('/readyz answers 503 naming S3 when its endpoint does not answer', async () => {
    const gw = await gateway({ s3Endpoint: `http://127.0.0.1:${await findFreePort()}` });
    try {
      const ready = await readyz(gw.url);
      expect(ready.status).toBe(503);
      expect(ready.body.checks).toMatchObject({ temporal: { status: 'up' }, s3: { status: 'down' } });
      expect((await fetch(`${gw.url}/livez`)).status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it('/readyz answers 503 naming Redis when it stops answering PING', async () => {
    // The machine's Redis behind a TCP relay of ours, cut once the gateway runs: Redis "goes down".
    const sockets = new Set<Socket>();
    const relay = createServer((socket) => {
      const upstream = connect(6379, '127.0.0.1');
      sockets.add(socket).add(upstream);
      socket.pipe(upstream).pipe(socket);
      const drop = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const redis = new Redis(`redis://127.0.0.1:${(relay.address() as AddressInfo).port}`, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    const gw = await gateway({ redis });
    try {
      expect((await readyz(gw.url)).body.checks.redis).toEqual({ status: 'up' });
      relay.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => setTimeout(r, 1600)); // past the cached answer
      const ready = await readyz(gw.url);
      expect(ready.status).toBe(503);
      expect(ready.body.checks).toMatchObject({ temporal: { status: 'up' }, s3: { status: 'up' }, redis: { status: 'down' } });
    } finally {
      await gw.close().catch(() => undefined);
      redis.disconnect();
    }
  });

  it('/readyz answers 503 naming Temporal when its frontend does not answer', async () => {
    const connection = Connection.lazy({ address: `127.0.0.1:${await findFreePort()}`, connectTimeout: 1000 });
    const client = new Client({ connection, namespace: stack.config.temporal.namespace });
    const gw = await gateway({ client });
    try {
      const ready = await readyz(gw.url);
      expect(ready.status).toBe(503);
      expect(ready.body.checks).toMatchObject({ temporal: { status: 'down' }, s3: { status: 'up' } });
      expect((await fetch(`${gw.url}/livez`)).status).toBe(200);
    } finally {
      await gw.close();
      await connection.close();
    }
  });
});

describe('redactUrl', () => {
  it('cuts credential-bearing query parameters', () => {
    expect(redactUrl('/uploads/x/events?access_token=abc&x=1')).toBe('/uploads/x/events?access_token=[REDACTED]&x=1');
    expect(redactUrl('/a?X-Amz-Signature=s&X-Amz-Credential=c')).toBe('/a?X-Amz-Signature=[REDACTED]&X-Amz-Credential=[REDACTED]');
    expect(redactUrl('/files/abc')).toBe('/files/abc');
  });
});
