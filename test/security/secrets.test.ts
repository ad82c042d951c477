/**
 * Secrets never leave the worker's configuration: S3 credentials, the webhook secret and the
 * Temporal API key appear nowhere in workflow inputs, results, memos, search attributes,
 * heartbeat details, failure messages or details, worker logs (every level, the Rust core's
 * included), the JSON logs of `upload-saga worker` (a child process) and of a gateway at debug
 * level, CLI output, webhook bodies — nor in the recorded histories in test/histories.
 *
 * Tokens in URLs (a presigned source URL's signature, a token in a webhook URL) are a different
 * matter: the URL *is* the request, so it is stored in the workflow's input, and only there —
 * never in summaries, memos, search attributes, messages, results or logs. This test pins that
 * down to the exact places in history where the tokens may appear.
 *
 * The worker runs in this process, built the way `upload-saga worker` builds it (connections from
 * the configuration, the API key on them), and the CLI runs as a child process with the same
 * environment. Every history is fetched in full and its payloads decoded before scanning.
 */
import { capturedLogText } from '../support/log-capture'; // first: it installs the runtime's logger
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { findFreePorts } from '../../src/embedded/free-port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient, UploadFailedError } from '../../src/client';
import { loadConfig, type WorkerConfig } from '../../src/config';
import { connectClient, connectWorker, createS3Client, createTemporalClient } from '../../src/connections';
import { DEFAULT_MINIO_ROOT_PASSWORD, DEFAULT_MINIO_ROOT_USER } from '../../src/embedded';
import { createUploadWorker } from '../../src/worker';
import { quotaLedgerWorkflowId } from '../../src/workflows/quota-ledger';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { startFileServer, type FileServer } from '../support/file-server';
import { runInBackground, stackEnv, uniqueId, type RunningWorker } from '../support/harness';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';
import { Writable } from 'node:stream';
import { hashToken } from '../../src/gateway/config';
import { startGatewayFromEnv } from '../../src/gateway/run';
import { createLogger } from '../../src/logging';
import { startTus } from '../gateway/gateway-harness';

const WEBHOOK_SECRET = `whsec-${randomBytes(12).toString('hex')}`;
const TEMPORAL_API_KEY = `tmprl-key-${randomBytes(12).toString('hex')}`;
const URL_TOKEN = `urltoken${randomBytes(8).toString('hex')}`;
const HOOK_TOKEN = `hooktoken${randomBytes(8).toString('hex')}`;
const GATEWAY_TOKEN = `gwtoken${randomBytes(12).toString('hex')}`;
const TENANT = uniqueId('secrets');
const BIN = path.resolve(__dirname, '../../bin/upload-saga-dev.cjs');

let env: Record<string, string>;
let config: WorkerConfig;
let client: Client;
let closeAll: (() => Promise<void>)[] = [];
let worker: RunningWorker;
let uploads: UploadClient;
let receiver: WebhookReceiver;
let server: FileServer;
/** Answers after a second: the URL upload stays in upload-parts, heartbeating, long enough to be described. */
let slowServer: FileServer;
let tmp: { dir: string; remove(): Promise<void> };
const workflowIds: string[] = [];
const cliOutput: string[] = [];
/** Descriptions taken while an upload ran, with heartbeat details of its pending activities. */
const runningDescriptions: WorkflowExecutionDescription['raw'][] = [];

beforeAll(async () => {
  env = stackEnv(uniqueId('secrets'), {
    // The dev server ignores the key, but it rides on every connection, as against Temporal Cloud.
    TEMPORAL_API_KEY,
    TEMPORAL_TLS: 'false',
    UPLOAD_SAGA_WEBHOOK_SECRET: WEBHOOK_SECRET,
  });
  config = loadConfig(env);
  const connection = await connectClient(config.temporal);
  const workerConnection = await connectWorker(config.temporal);
  client = createTemporalClient(connection, config);
  const s3 = createS3Client(config.s3);
  closeAll = [async () => s3.destroy(), () => connection.close(), () => workerConnection.close()];
  worker = runInBackground(await createUploadWorker({ config, connection: workerConnection, client, s3 }));
  uploads = new UploadClient({ client, taskQueue: config.temporal.taskQueue });
  receiver = await startWebhookReceiver();
  tmp = await makeTempDir();
  server = await startFileServer(randomBytes(6 * MiB), { ranges: true });
  slowServer = await startFileServer(randomBytes(6 * MiB), { ranges: true, delayMs: 1000 });
});

afterAll(async () => {
  await worker?.stop();
  for (const close of closeAll) await close();
  await receiver?.close();
  await server?.close();
  await slowServer?.close();
  await tmp?.remove();
});

function runCli(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      cliOutput.push(output); // the output only: the command line itself holds the URLs
      resolve({ code, output });
    });
  });
}

/** A history (or description) as text, with every payload's bytes decoded (no codec here: JSON). */
function decoded(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => {
    if (key === 'data' && typeof v === 'string') return Buffer.from(v, 'base64').toString('utf8');
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
    return v;
  });
}

/** Every place in `tree` (decoded) whose string contains `needle`: event type and field path. */
function placesOf(tree: unknown, needle: string): string[] {
  const places: string[] = [];
  const walk = (node: unknown, trail: string[]) => {
    if (typeof node === 'string') {
      if (node.includes(needle)) places.push(trail.join('.'));
    } else if (Array.isArray(node)) {
      node.forEach((child, i) => walk(child, [...trail, /^\d+$/.test(String(i)) && trail.at(-1) === 'events' ? '*' : String(i)]));
    } else if (node && typeof node === 'object') {
      for (const [k, child] of Object.entries(node)) walk(child, [...trail, k]);
    }
  };
  walk(JSON.parse(decoded(tree)), []);
  return places;
}

async function uploadAll(): Promise<void> {
  const file = await makeRandomFile(tmp.dir, 'ok.bin', 6 * MiB);
  const hook = `${receiver.url('/hook')}?sig=${HOOK_TOKEN}`;
  const sourceUrl = `${slowServer.url.split('?')[0]}?X-Amz-Signature=${URL_TOKEN}&X-Amz-Credential=${URL_TOKEN}`;
  const base = (name: string) => ({
    uploadId: uniqueId(name),
    tenant: TENANT,
    destination: { bucket: 'uploads', key: `secrets/${uniqueId(name)}.bin` },
    partSize: 5 * MiB,
  });

  // success, with a signed webhook whose URL carries a token
  const ok = await uploads.start({ ...base('ok'), source: { type: 'file', path: file.path }, webhookUrl: hook });
  // failure with compensation (wrong checksum), the failure event sent to the same webhook
  const bad = await uploads.start({
    ...base('bad'),
    source: { type: 'file', path: file.path },
    expectedChecksum: { algorithm: 'SHA256', value: '0'.repeat(64) },
    webhookUrl: hook,
  });
  // a presigned-style URL source, its signature in the query
  const url = await uploads.start({ ...base('url'), source: { type: 'url', url: sourceUrl }, webhookUrl: hook });
  // a URL source that fails (the server answers 404) — its message must not echo the query either
  const missingPath = `/missing?X-Amz-Signature=${URL_TOKEN}`;
  receiver.respondWith.set(missingPath, 404);
  const missing = await uploads.start({ ...base('missing'), source: { type: 'url', url: `${receiver.url('/')}${missingPath.slice(1)}` } });

  // While they run, keep what `describe` shows of them: pending activities with their heartbeat details.
  const watching = [ok, bad, url].map(async (handle) => {
    for (;;) {
      const description = await handle.workflow.describe();
      if (description.status.name !== 'RUNNING') return;
      if (description.raw.pendingActivities?.some((a) => a.heartbeatDetails?.payloads?.length)) runningDescriptions.push(description.raw);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });
  expect((await ok.result()).notification.status).toBe('delivered');
  expect(await bad.result().catch((e: unknown) => e)).toBeInstanceOf(UploadFailedError);
  expect((await url.result()).size).toBe(6 * MiB);
  expect(await missing.result().catch((e: unknown) => e)).toBeInstanceOf(UploadFailedError);
  await Promise.all(watching);
  workflowIds.push(ok.workflowId, bad.workflowId, url.workflowId, missing.workflowId);

  // the CLI, with the same environment: an upload (webhook with a token), status, list, and a bad configuration
  const cliId = uniqueId('cli');
  const up = await runCli([
    'upload',
    file.path,
    '--bucket',
    'uploads',
    '--key',
    `secrets/${cliId}.bin`,
    '--tenant',
    TENANT,
    '--upload-id',
    cliId,
    '--webhook',
    hook,
    '--no-progress',
  ]);
  expect(up.code, up.output).toBe(0);
  workflowIds.push(`upload:${TENANT}:${cliId}`);
  expect((await runCli(['status', TENANT, cliId])).code).toBe(0);
  expect((await runCli(['list', '--tenant', TENANT])).code).toBe(0);
  const badConfig = await runCli(['list'], { UPLOAD_SAGA_WEBHOOK_SECRET: 'short', S3_ACCESS_KEY_ID: '' });
  expect(badConfig.code).toBe(1);
  expect(badConfig.output).toContain('invalid configuration');
  workflowIds.push(quotaLedgerWorkflowId(TENANT));
}

describe('secrets', () => {
  it('appear nowhere: histories (inputs, results, failures), descriptions (memo, search attributes, heartbeat details), logs, CLI output, webhook bodies', async () => {
    await uploadAll();
    const secrets: Record<string, string> = {
      'S3 access key id': config.s3.credentials!.accessKeyId,
      'S3 secret key': config.s3.credentials!.secretAccessKey,
      'webhook secret': WEBHOOK_SECRET,
      'Temporal API key': TEMPORAL_API_KEY,
    };
    expect(config.temporal.apiKey).toBe(TEMPORAL_API_KEY); // the key really was on the connections this worker and client use

    const histories = await Promise.all(workflowIds.map((id) => client.workflow.getHandle(id).fetchHistory()));
    const descriptions = await Promise.all(
      workflowIds.map((id) =>
        client.workflow
          .getHandle(id)
          .describe()
          .then((d) => ({ raw: d.raw, memo: d.memo, searchAttributes: d.typedSearchAttributes })),
      ),
    );
    const sources: Record<string, string> = {
      histories: decoded(histories),
      descriptions: decoded(descriptions),
      'descriptions while running': decoded(runningDescriptions),
      'worker logs': capturedLogText(),
      'CLI output': cliOutput.join('\n'),
      'webhook bodies': receiver.received.map((r) => r.body).join('\n'),
    };
    // The scan reads what it should: decoded payloads, and logs at every level.
    expect(sources.histories).toContain('uploadId');
    expect(sources.histories).toContain(`secrets/`);
    expect(sources['worker logs']).toMatch(/DEBUG|TRACE/);
    expect(sources['worker logs']).toContain('ChecksumMismatch');
    // …and heartbeat details at all: the slow URL upload heartbeats in upload-parts while it is described.
    const heartbeatPayloads = runningDescriptions
      .flatMap((d) => d.pendingActivities ?? [])
      .reduce((n, a) => n + (a.heartbeatDetails?.payloads?.length ?? 0), 0);
    expect(heartbeatPayloads, 'heartbeat-detail payloads scanned').toBeGreaterThan(0);
    expect(sources['descriptions while running']).toContain('multipartUploadId');
    console.log(
      `scanned: ${workflowIds.length} histories, ${runningDescriptions.length} descriptions with ${heartbeatPayloads} heartbeat-detail payloads, ${capturedLogText().split('\n').length} log lines, ${cliOutput.length} CLI runs`,
    );
    const events = receiver.received.filter((r) => r.path.startsWith('/hook'));
    expect(events.length).toBeGreaterThanOrEqual(4);
    expect(events.every((r) => String(r.headers['x-upload-saga-signature']).startsWith('t='))).toBe(true); // the secret was in use

    for (const [what, secret] of Object.entries(secrets)) {
      for (const [where, text] of Object.entries(sources)) expect(text.includes(secret), `${what} found in ${where}`).toBe(false);
    }
  });

  it('URL tokens are stored in the workflow input and only there: not in summaries, memos, search attributes, messages, results or logs', async () => {
    const histories = await Promise.all(
      workflowIds.filter((id) => id.startsWith('upload:')).map((id) => client.workflow.getHandle(id).fetchHistory()),
    );
    const descriptions = await Promise.all(
      workflowIds.map((id) =>
        client.workflow
          .getHandle(id)
          .describe()
          .then((d) => ({ raw: d.raw, memo: d.memo, searchAttributes: d.typedSearchAttributes })),
      ),
    );
    for (const token of [URL_TOKEN, HOOK_TOKEN]) {
      const places = new Set(
        placesOf(histories, token).map((p) => p.replace(/^\d+\.events\.\*\./, '').replace(/\.payloads\.\d+\.data$/, '')),
      );
      // the request (workflow input) and the inputs of the activities that fetch the URL
      expect(places.size, token).toBeGreaterThan(0);
      expect([...places].sort(), token).toEqual(
        [...places]
          .filter((p) => p === 'workflowExecutionStartedEventAttributes.input' || p === 'activityTaskScheduledEventAttributes.input')
          .sort(),
      );
      expect(placesOf(descriptions, token), token).toEqual([]);
      expect(placesOf(runningDescriptions, token), token).toEqual([]);
      expect(capturedLogText().includes(token), `${token} in worker logs`).toBe(false);
      expect(cliOutput.join('\n').includes(token), `${token} in CLI output`).toBe(false);
      expect(
        receiver.received.some((r) => r.body.includes(token)),
        `${token} in a webhook body`,
      ).toBe(false);
    }
  });

  it('appear in no log line and no metric (scrapes of /metrics, tenant label on) of a worker started as `upload-saga worker` or of a gateway, at debug level, during real uploads', async () => {
    const taskQueue = uniqueId('secrets-logs');
    const [workerMetricsPort, gatewayMetricsPort] = await findFreePorts(2);
    const logEnv = {
      ...env,
      TEMPORAL_TASK_QUEUE: taskQueue,
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'json',
      UPLOAD_SAGA_METRICS_HOST: '127.0.0.1',
      UPLOAD_SAGA_METRICS_PORT: String(workerMetricsPort),
      UPLOAD_SAGA_GATEWAY_METRICS_PORT: String(gatewayMetricsPort),
      UPLOAD_SAGA_METRICS_TENANT_LABEL: 'true',
    };
    const scrapes: Record<string, string> = {};
    // The worker as the CLI starts it (its runtime's logger is the pino logger), in a child process.
    const child = spawn(process.execPath, [BIN, 'worker'], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...logEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let workerLog = '';
    child.stdout.on('data', (c: Buffer) => (workerLog += c.toString()));
    child.stderr.on('data', (c: Buffer) => (workerLog += c.toString()));
    const gatewayLines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        gatewayLines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const gateway = await startGatewayFromEnv(
      { ...logEnv, UPLOAD_SAGA_GATEWAY_TOKENS: `${TENANT}=${hashToken(GATEWAY_TOKEN)}`, UPLOAD_SAGA_GATEWAY_PORT: '0' },
      { loggerInstance: createLogger({ level: 'debug', format: 'json' }, { destination, name: 'gateway' }) },
    );
    try {
      for (let waited = 0; !workerLog.includes('upload-saga worker on task queue'); waited += 100) {
        expect(waited, workerLog).toBeLessThan(60_000);
        expect(child.exitCode, workerLog).toBeNull();
        await new Promise((r) => setTimeout(r, 100));
      }
      const logUploads = new UploadClient({ client, taskQueue });
      const file = await makeRandomFile(tmp.dir, 'logs.bin', 6 * MiB);
      const hook = `${receiver.url('/hook')}?sig=${HOOK_TOKEN}`;
      const base = (name: string) => ({
        uploadId: uniqueId(name),
        tenant: TENANT,
        destination: { bucket: 'uploads', key: `secrets/${uniqueId(name)}.bin` },
        partSize: 5 * MiB,
        webhookUrl: hook,
      });
      const sourceUrl = `${server.url.split('?')[0]}?X-Amz-Signature=${URL_TOKEN}&X-Amz-Credential=${URL_TOKEN}`;
      const ok = await logUploads.start({ ...base('log-ok'), source: { type: 'url', url: sourceUrl } });
      const bad = await logUploads.start({
        ...base('log-bad'),
        source: { type: 'file', path: file.path },
        expectedChecksum: { algorithm: 'SHA256', value: '0'.repeat(64) },
      });
      expect((await ok.result()).size).toBe(6 * MiB);
      expect(await bad.result().catch((e: unknown) => e)).toBeInstanceOf(UploadFailedError);
      // Through the gateway: a tus upload with the bearer header, and requests with the token in the query.
      const tusRun = startTus(randomBytes(6 * MiB), {
        endpoint: `${gateway.url}/files`,
        headers: { Authorization: `Bearer ${GATEWAY_TOKEN}` },
        chunkSize: 5 * MiB,
        metadata: { filename: 'logs.bin' },
      });
      await tusRun.done;
      const id = tusRun.upload.url!.split('/').pop()!;
      const events = await fetch(`${gateway.url}/uploads/${id}/events?access_token=${GATEWAY_TOKEN}`, { signal: AbortSignal.timeout(1500) })
        .then((r) => r.body?.cancel())
        .catch(() => undefined);
      void events;
      expect(
        (await fetch(`${gateway.url}/files/${id}?access_token=${GATEWAY_TOKEN}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } }))
          .status,
      ).toBeGreaterThan(0);
      expect(
        (
          await fetch(`${gateway.url}/files`, {
            method: 'POST',
            headers: { Authorization: 'Bearer not-a-token', 'Tus-Resumable': '1.0.0' },
          })
        ).status,
      ).toBe(401);
      // Metric labels after these uploads: the worker's (with the SDK's) and the gateway's.
      scrapes.worker = await (await fetch(`http://127.0.0.1:${workerMetricsPort}/metrics`)).text();
      scrapes.gateway = await (await fetch(gateway.metricsUrl!)).text();
    } finally {
      await gateway.close();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }

    const workerLines = workerLog.split('\n').filter((l) => l.startsWith('{'));
    console.log(`scanned: ${workerLines.length} worker log lines, ${gatewayLines.length} gateway log lines`);
    // The scan reads real log lines: the uploads' own, at debug level, from both.
    expect(workerLines.length).toBeGreaterThan(0);
    expect(gatewayLines.length).toBeGreaterThan(0);
    expect(workerLines.some((l) => l.includes('"object stored"') && l.includes('"uploadId"'))).toBe(true);
    expect(workerLines.some((l) => l.includes('"level":20'))).toBe(true);
    expect(gatewayLines.some((l) => l.includes('"incoming request"') && l.includes('access_token=[REDACTED]'))).toBe(true);
    const secrets: Record<string, string> = {
      'S3 access key id': config.s3.credentials!.accessKeyId,
      'S3 secret key': config.s3.credentials!.secretAccessKey,
      'webhook secret': WEBHOOK_SECRET,
      'Temporal API key': TEMPORAL_API_KEY,
      'gateway bearer token': GATEWAY_TOKEN,
      'URL token': URL_TOKEN,
      'webhook URL token': HOOK_TOKEN,
    };
    // The scan reads real scrapes: the uploads' counters, tenant-labelled, and the SDK's metrics.
    expect(scrapes.worker).toContain(`upload_saga_uploads_ended_total{kind="worker",outcome="completed",tenant="${TENANT}"}`);
    expect(scrapes.worker).toContain('temporal_long_request_total');
    expect(scrapes.gateway).toContain('upload_saga_gateway_http_requests_total{route="/files/*",method="HEAD"');
    for (const [what, secret] of Object.entries(secrets)) {
      expect(workerLog.includes(secret), `${what} in the worker's log`).toBe(false);
      expect(gatewayLines.join('\n').includes(secret), `${what} in the gateway's log`).toBe(false);
      for (const [where, text] of Object.entries(scrapes)) expect(text.includes(secret), `${what} in the ${where}'s metrics`).toBe(false);
    }
  });

  it("the recorded histories in test/histories hold none of the recorder's secrets", async () => {
    const recorder = await readFile(path.resolve(__dirname, '../../scripts/record-histories.ts'), 'utf8');
    const webhookSecret = /const WEBHOOK_SECRET = '([^']+)'/.exec(recorder)?.[1];
    expect(webhookSecret).toBeDefined();
    const dir = path.resolve(__dirname, '../histories');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const text = decoded(JSON.parse(await readFile(path.join(dir, file), 'utf8')));
      expect(text, file).toContain('upload'); // decoded and readable
      for (const secret of [webhookSecret!, DEFAULT_MINIO_ROOT_PASSWORD, DEFAULT_MINIO_ROOT_USER])
        expect(text.includes(secret), `${secret} in ${file}`).toBe(false);
    }
  });
});
