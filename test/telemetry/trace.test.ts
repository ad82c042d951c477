/**
 * One trace per upload, proven against a real collector: Jaeger v2 (built from its Go module, see
 * src/embedded/jaeger.ts) receives the spans over OTLP/HTTP, and the test reads each trace back
 * through Jaeger's query API (`/api/traces/<traceId>`), as an operator's UI would.
 *
 * In this process: tracing started as `OTEL_EXPORTER_OTLP_ENDPOINT` would start it, then the real
 * upload worker (its activities, the tracing interceptors and the workflow span sink) and an
 * in-process gateway on the shared embedded stack, and a webhook receiver that records headers.
 *
 * - A tus upload through the gateway: its trace starts at the gateway's first request and holds the
 *   workflow, the activities, S3 requests and the webhook, whose `traceparent` names the same trace.
 * - An upload started with UploadClient inside a span of the caller's: the caller's trace continues
 *   through `StartWorkflow` into the workflow, every activity and S3 request.
 * - No span attribute of either trace holds a secret (S3 secret key, webhook secret, bearer token).
 * - Log lines written inside a span carry its trace id.
 * - `upload-saga worker` (the built package, its shipped workflow bundle) with nothing but
 *   `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME` set exports its spans under that name,
 *   and flushes them when it stops.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { context, trace } from '@opentelemetry/api';
import { startJaeger, type JaegerServer } from '../../src/embedded';
import { UploadClient } from '../../src/client';
import { createLogger } from '../../src/logging';
import { startTracing, type Tracing } from '../../src/telemetry/tracing';
import { connectTestStack, startUploadWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';
import { startTestGateway, startTus, idOf, testTenant, type TestGateway } from '../gateway/gateway-harness';
import { SERVER_BUILD_WAIT_MS } from '../support/late-built-servers';

const BIN = path.resolve(__dirname, '../../bin/upload-saga.cjs');
const WEBHOOK_SECRET = `whsec-${randomBytes(12).toString('hex')}`;
const acme = testTenant('trace');

let jaeger: JaegerServer;
let tracing: Tracing;
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
let webhooks: WebhookReceiver;
let temp: Awaited<ReturnType<typeof makeTempDir>>;

beforeAll(async () => {
  temp = await makeTempDir('upload-saga-trace-');
  jaeger = await startJaeger({ dataDir: temp.dir, stopGraceMs: 2_000 });
  // Short batches: the test reads the spans back right after each upload.
  tracing = startTracing({ endpoint: jaeger.otlpEndpoint, serviceName: 'upload-saga-trace-test' }, { scheduledDelayMillis: 200 });
  stack = await connectTestStack({ env: { UPLOAD_SAGA_WEBHOOK_SECRET: WEBHOOK_SECRET } });
  worker = await startUploadWorker(stack);
  webhooks = await startWebhookReceiver();
  gateway = await startTestGateway(stack, [acme], { overrides: { tenants: { [acme.name]: { webhookUrl: webhooks.url('/acme') } } } });
}, SERVER_BUILD_WAIT_MS);

afterAll(async () => {
  await gateway?.close();
  await webhooks?.close();
  await worker?.stop();
  await tracing?.shutdown();
  await stack?.close();
  await jaeger?.stop();
  await temp?.remove();
});

interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  processID: string;
  references?: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; value: unknown }[];
}

const traceIdOf = (traceparent: unknown): string => {
  const match = /^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$/.exec(String(traceparent));
  if (!match) throw new Error(`not a W3C traceparent: ${String(traceparent)}`);
  return match[1]!;
};

/**
 * The spans of `traceId` as Jaeger returns them, once every name in `wanted` is there (spans arrive
 * in batches from the worker's process and the workflow sink). Fails listing what it saw.
 */
async function traceWith(
  traceId: string,
  wanted: RegExp[],
): Promise<{ spans: JaegerSpan[]; raw: string; services: Record<string, string> }> {
  await tracing.forceFlush();
  const deadline = Date.now() + 20_000;
  let spans: JaegerSpan[] = [];
  let raw = '';
  for (;;) {
    const response = await fetch(`${jaeger.queryUrl}/api/traces/${traceId}`);
    if (response.ok) {
      raw = await response.text();
      const data = (JSON.parse(raw) as { data: { spans: JaegerSpan[]; processes: Record<string, { serviceName: string }> }[] }).data;
      spans = data.flatMap((t) => t.spans);
      // processID → service.name
      const services = Object.fromEntries(data.flatMap((t) => Object.entries(t.processes).map(([id, p]) => [id, p.serviceName])));
      if (wanted.every((re) => spans.some((s) => re.test(s.operationName)))) return { spans, raw, services };
    } else {
      await response.arrayBuffer();
    }
    if (Date.now() > deadline) {
      const names = [...new Set(spans.map((s) => s.operationName))].sort();
      throw new Error(
        `trace ${traceId} lacks ${wanted.filter((re) => !names.some((n) => re.test(n))).join(', ')}; it has: ${names.join(', ')}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
    await tracing.forceFlush();
  }
}

/** No secret of this test's configuration anywhere in the trace as Jaeger stores it (names, attributes, events). */
function expectNoSecrets(raw: string): void {
  expect(raw).not.toContain(stack.config.s3.credentials!.secretAccessKey);
  expect(raw).not.toContain(WEBHOOK_SECRET);
  expect(raw).not.toContain(acme.token);
  expect(raw.toLowerCase()).not.toContain('bearer ');
  expect(raw).not.toMatch(/x-amz-signature=[0-9a-f]/i);
}

const tag = (span: JaegerSpan, key: string) => span.tags.find((t) => t.key === key)?.value;

describe('one trace per upload, read back from Jaeger', () => {
  it('a tus upload: the gateway request, the workflow, its activities, S3 requests and the webhook share one trace id', async () => {
    const data = randomBytes(6 * MiB);
    const run = startTus(data, {
      endpoint: `${gateway.url}/files`,
      chunkSize: 3 * MiB,
      headers: acme.auth,
      metadata: { filename: 'traced.bin' },
    });
    await run.done;
    const uploadId = idOf(run.upload.url);
    // The finishing PATCH answers at the merge: the webhook follows before the saga ends.
    const state = await gateway.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(state.outcome).toBe('completed');

    const hook = webhooks.received.find((w) => w.json.uploadId === uploadId);
    expect(hook, 'webhook delivered').toBeDefined();
    const traceId = traceIdOf(hook!.headers.traceparent);

    const { spans, raw } = await traceWith(traceId, [
      /^POST \/files/, // the gateway's first request
      /^UpdateWithStartWorkflow:/, // the gateway's client starting the workflow
      /^RunWorkflow:/,
      /^StartActivity:/,
      /^RunActivity:completeUpload$/,
      /^RunActivity:notify$/,
      /^S3\.CompleteMultipartUpload$/,
    ]);
    expect(spans.every((s) => s.traceID === traceId)).toBe(true);
    // The gateway's request span is the root: the trace starts there.
    const root = spans.find((s) => s.operationName.startsWith('POST /files'))!;
    expect(root.references ?? []).toEqual([]);
    expect(tag(root, 'http.route')).toBe('/files');
    // The webhook POST was sent from inside the notify activity's span.
    const notify = spans.find((s) => s.operationName === 'RunActivity:notify')!;
    expect(hook!.headers.traceparent).toContain(`-${notify.spanID}-`);
    expect(
      tag(
        spans.find((s) => s.operationName === 'S3.CompleteMultipartUpload')!,
        'rpc.system',
      ),
    ).toBe('aws-api');
    expectNoSecrets(raw);
  });

  it('an upload started with UploadClient inside a caller span: StartWorkflow, the workflow, every activity and S3 request join the caller trace', async () => {
    const file = await makeRandomFile(temp.dir, 'client.bin', 6 * MiB);
    const uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
    const uploadId = uniqueId('traced');
    const { traceId, result } = await tracing.tracer.startActiveSpan('test: upload with UploadClient', async (span) => {
      try {
        const handle = await uploads.start({
          tenant: acme.name,
          uploadId,
          source: { type: 'file', path: file.path },
          destination: { bucket: 'uploads', key: `${acme.name}/${uploadId}/client.bin` },
          partSize: 5 * MiB,
          webhookUrl: webhooks.url('/client'),
        });
        return { traceId: span.spanContext().traceId, result: await handle.result() };
      } finally {
        span.end();
      }
    });
    expect(result.size).toBe(6 * MiB);

    const hook = webhooks.received.find((w) => w.path === '/client' && w.json.uploadId === uploadId);
    expect(traceIdOf(hook?.headers.traceparent)).toBe(traceId);
    const { spans, raw } = await traceWith(traceId, [
      /^test: upload with UploadClient$/,
      /^StartWorkflow:uploadWorkflow$/,
      /^RunWorkflow:uploadWorkflow$/,
      /^RunActivity:inspectSource$/,
      /^RunActivity:uploadParts$/,
      /^RunActivity:completeUpload$/,
      /^RunActivity:notify$/,
      /^S3\.CreateMultipartUpload$/,
      /^S3\.UploadPart$/,
      /^S3\.CompleteMultipartUpload$/,
    ]);
    // Two 5 MiB-or-less parts: one UploadPart span each (retries would be inside them, not beside).
    expect(spans.filter((s) => s.operationName === 'S3.UploadPart')).toHaveLength(2);
    expectNoSecrets(raw);
  });

  it('log lines written inside a span carry its trace id, and none outside one', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', format: 'json' }, { destination: { write: (line: string) => lines.push(line) } });
    const traceId = tracing.tracer.startActiveSpan('test: log line', (span) => {
      logger.info('inside');
      span.end();
      return span.spanContext().traceId;
    });
    context.with(trace.deleteSpan(context.active()), () => logger.info('outside'));
    const [inside, outside] = lines.map((l) => JSON.parse(l) as { traceId?: string });
    expect(inside?.traceId).toBe(traceId);
    expect(outside?.traceId).toBeUndefined();
  });

  it('`upload-saga worker` with OTEL_EXPORTER_OTLP_ENDPOINT exports its spans under OTEL_SERVICE_NAME, flushed when it stops', async () => {
    const taskQueue = uniqueId('traced-cli');
    const serviceName = uniqueId('upload-saga-worker-cli');
    const child = spawn(process.execPath, [BIN, 'worker'], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...stack.env,
        TEMPORAL_TASK_QUEUE: taskQueue,
        UPLOAD_SAGA_WEBHOOK_SECRET: WEBHOOK_SECRET,
        OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
        OTEL_SERVICE_NAME: serviceName,
        LOG_FORMAT: 'json',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const file = await makeRandomFile(temp.dir, 'cli.bin', 1 * MiB);
      const uploads = new UploadClient({ client: stack.client, taskQueue });
      const uploadId = uniqueId('traced-cli');
      const traceId = await tracing.tracer.startActiveSpan('test: upload on upload-saga worker', async (span) => {
        try {
          const handle = await uploads.start({
            tenant: acme.name,
            uploadId,
            source: { type: 'file', path: file.path },
            destination: { bucket: 'uploads', key: `${acme.name}/${uploadId}/cli.bin` },
            webhookUrl: webhooks.url('/cli'),
          });
          expect((await handle.result()).size).toBe(1 * MiB);
          return span.spanContext().traceId;
        } finally {
          span.end();
        }
      });
      child.kill('SIGTERM'); // the worker flushes its spans as it stops
      expect(await exited, output.slice(-2000)).toBe(0);
      expect(output).toContain(`"tracing":"${jaeger.otlpEndpoint}"`);

      const hook = webhooks.received.find((w) => w.path === '/cli' && w.json.uploadId === uploadId);
      expect(traceIdOf(hook?.headers.traceparent)).toBe(traceId);
      const { spans, services, raw } = await traceWith(traceId, [
        /^RunWorkflow:uploadWorkflow$/,
        /^RunActivity:notify$/,
        // 1 MiB is one part: the small-file fast path's one PutObject.
        /^RunActivity:putObject$/,
        /^S3\.PutObject$/,
      ]);
      // The workflow's spans (from the shipped bundle, through the sink) and the activities' come from the worker process.
      for (const name of ['RunWorkflow:uploadWorkflow', 'RunActivity:putObject', 'S3.PutObject']) {
        const span = spans.find((s) => s.operationName === name);
        expect(services[span!.processID], name).toBe(serviceName);
      }
      expectNoSecrets(raw);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
  });
});
