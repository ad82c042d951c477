/**
 * End-to-end payload encryption on the real dev server and MinIO: uploads run with the AES-GCM
 * codec on worker and clients; their histories, fetched by a client WITHOUT the key, hold no
 * plaintext of the request anywhere (inputs, results, activity arguments and results, local
 * activity markers, memo, summaries, heartbeat details, failure messages) — every payload outside
 * search attributes and headers is `binary/encrypted` — while a client WITH the key reads them all.
 * The codec server then decrypts a payload of that history over HTTP, for a token holder only,
 * and the real `temporal` CLI shows the history decoded through it. Encrypted histories replay.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { UploadClient, UploadFailedError } from '../../src/client';
import {
  AesGcmPayloadCodec,
  EncryptionMisconfiguredError,
  startCodecServer,
  uploadDataConverter,
  type RunningCodecServer,
} from '../../src/codec';
import { ensureServerBinary } from '../../src/embedded';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { quotaLedgerWorkflowId } from '../../src/workflows/quota-ledger';
import { UploadBucket, UploadKey, UploadTenant } from '../../src/upload/search-attributes';
import { historyFromJson } from '../replay/history-json';
import { makeRandomFile, makeTempDir, MiB, type TestFile } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { objectSha256 } from '../support/s3-inspect';
import { slowSource } from '../support/slow-source';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

const KEY = randomBytes(32);
const TOKEN = randomBytes(24).toString('hex');
const TENANT = uniqueId('enc');
const BUCKET = 'uploads';
const UI_ORIGIN = 'http://127.0.0.1:8233';

let stack: TestStack;
let plain: Client; // no codec: what the server, and anyone reading history without the key, sees
let uploads: UploadClient;
let worker: RunningWorker;
let bundle: WorkflowBundleWithSourceMap;
let codecServer: RunningCodecServer;
const codecLog: string[] = [];
let receiver: WebhookReceiver;
let tmp: { dir: string; remove(): Promise<void> };
let file: TestFile;
const codec = new AesGcmPayloadCodec({ encryption: { keys: [{ id: 'test-key', key: KEY }] } });

/** Strings of a request that must never be stored in plain text. */
let secrets: { path: string; key: string; webhook: string };
let completedId: string;
let failedId: string;

beforeAll(async () => {
  stack = await connectTestStack({
    env: {
      UPLOAD_SAGA_ENCRYPTION_KEY: KEY.toString('base64'),
      UPLOAD_SAGA_ENCRYPTION_KEY_ID: 'test-key',
      UPLOAD_SAGA_WEBHOOK_SECRET: 'webhook-secret-0123456789',
    },
  });
  plain = new Client({ connection: stack.connection, namespace: stack.config.temporal.namespace });
  uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
  receiver = await startWebhookReceiver();
  tmp = await makeTempDir();
  file = await makeRandomFile(tmp.dir, `confidential-${uniqueId('src')}.bin`, 12 * MiB);
  secrets = { path: path.basename(file.path), key: `enc/${uniqueId('private-report')}.bin`, webhook: `hook-${uniqueId('w')}` };
  bundle = await bundleUploadWorkflows({ encryptFailureMessages: true });
  // Reads are slowed so the test can watch heartbeats while parts are in flight.
  const activities = createActivities({
    s3: stack.s3,
    sources: slowSource(new LocalFileResolver({ allowedRoots: stack.config.allowedRoots }), 600),
    quota: new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota }),
    webhook: stack.config.webhook,
  });
  worker = runInBackground(
    await createUploadWorker({
      config: stack.config,
      connection: stack.workerConnection,
      client: stack.client,
      s3: stack.s3,
      workflowBundle: bundle,
      activities,
    }),
  );
  codecServer = await startCodecServer({ codec, token: TOKEN, allowedOrigins: [UI_ORIGIN], log: (line) => codecLog.push(line) });
});

afterAll(async () => {
  await worker?.stop();
  await codecServer?.close();
  await receiver?.close();
  await stack?.close();
  await tmp?.remove();
});

/** Every payload in `value` with its path, skipping none. */
function payloadsIn(value: unknown, at = ''): { at: string; payload: Payload }[] {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array) return [];
  const record = value as Record<string, unknown>;
  const metadata = record.metadata as Record<string, unknown> | undefined;
  if (metadata && typeof metadata === 'object' && Object.values(metadata).every((v) => v instanceof Uint8Array) && 'encoding' in metadata) {
    return [{ at, payload: record as Payload }];
  }
  return Object.entries(record).flatMap(([k, v]) => payloadsIn(v, `${at}/${k}`));
}

const encodingOf = (p: Payload) => Buffer.from(p.metadata?.encoding ?? []).toString();
/**
 * Never passed through codecs: search attributes (the server indexes them), headers (the saga's retry
 * settings), and what the SDK core writes into markers itself — a patch marker's patch id, a local
 * activity marker's `data` (activity type, id, attempt, times). A local activity's result is encrypted.
 */
const neverEncoded = (at: string) =>
  /\/(searchAttributes|upsertedSearchAttributes|indexedFields)\//i.test(at) ||
  /\/header\/fields\//.test(at) ||
  /\/markerRecordedEventAttributes\/details\/(patch-data|data)\//.test(at);

function expectNoPlaintext(bytes: Buffer, what: string): void {
  for (const [name, value] of Object.entries(secrets))
    expect(bytes.includes(Buffer.from(value)), `${what} contains the ${name} in plain text`).toBe(false);
}

async function rawHistory(workflowId: string): Promise<temporal.api.history.v1.IHistory> {
  return plain.workflow.getHandle(workflowId).fetchHistory();
}

describe('payload encryption, end to end', () => {
  it('completes an upload; the key holder reads progress, result, memo and the decoded history', async () => {
    const handle = await uploads.start({
      uploadId: uniqueId('ok'),
      tenant: TENANT,
      source: { type: 'file', path: file.path },
      destination: { bucket: BUCKET, key: secrets.key },
      partSize: 5 * MiB,
      partConcurrency: 1,
      webhookUrl: receiver.url(`/${secrets.webhook}`),
    });
    completedId = handle.workflowId;

    // Heartbeat details of the running batch are stored encrypted; progress() decrypts them.
    let heartbeat: Payload | undefined;
    for (let i = 0; i < 100 && !heartbeat; i++) {
      const pending = (await handle.workflow.describe()).raw.pendingActivities ?? [];
      heartbeat = pending.find((a) => a.activityType?.name === 'uploadParts')?.heartbeatDetails?.payloads?.[0] ?? undefined;
      if (!heartbeat) await new Promise((r) => setTimeout(r, 200));
    }
    expect(heartbeat, 'no heartbeat seen while parts were in flight').toBeDefined();
    expect(encodingOf(heartbeat!)).toBe('binary/encrypted');
    await expect.poll(async () => (await handle.progress()).bytesDone, { timeout: 20_000 }).toBeGreaterThan(0);

    const result = await handle.result();
    expect(result).toMatchObject({ bucket: BUCKET, key: secrets.key, size: file.size, partCount: 3 });
    expect(await objectSha256(stack.s3, BUCKET, secrets.key)).toBe(file.sha256);
    expect((await handle.workflow.describe()).memo).toEqual({ source: `file:${file.path}`, destination: `s3://${BUCKET}/${secrets.key}` });
    expect(await (await handle.workflow.describe()).staticSummary()).toContain(secrets.key);
    await expect.poll(() => receiver.received.length).toBeGreaterThan(0);
  });

  it('stores no plaintext of the request in that history: every payload but search attributes and headers is encrypted', async () => {
    const history = await rawHistory(completedId);
    const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
    expectNoPlaintext(bytes, 'the raw history');

    const payloads = payloadsIn(history);
    const encrypted = payloads.filter((p) => !neverEncoded(p.at));
    // Input, memo, summary and details, activity arguments and results, local activity markers, the result…
    expect(encrypted.length).toBeGreaterThan(10);
    expect(encrypted.filter((p) => encodingOf(p.payload) !== 'binary/encrypted').map((p) => `${p.at}: ${encodingOf(p.payload)}`)).toEqual(
      [],
    );
    const expectedPlaces = [
      'workflowExecutionStartedEventAttributes/input',
      'workflowExecutionStartedEventAttributes/memo',
      'userMetadata/summary', // static summary, and each activity's summary
      'activityTaskScheduledEventAttributes/input',
      'activityTaskCompletedEventAttributes/result',
      'markerRecordedEventAttributes/details/result', // local activities: inspect-source, reserve-space, commit-quota, notify
      'workflowExecutionCompletedEventAttributes/result',
    ];
    for (const where of expectedPlaces) {
      expect(
        encrypted.some((p) => p.at.includes(where)),
        `an encrypted payload under ${where}`,
      ).toBe(true);
    }

    // Search attributes stay plain (the server indexes them): the tenant is there, the destination is not.
    // (The SDK's describe() would fail here: it decodes the memo, which needs the key.)
    const described = await plain.workflowService.describeWorkflowExecution({
      namespace: stack.config.temporal.namespace,
      execution: { workflowId: completedId },
    });
    const indexed = described.workflowExecutionInfo?.searchAttributes?.indexedFields ?? {};
    expect(defaultPayloadConverter.fromPayload(indexed[UploadTenant.name]!)).toBe(TENANT);
    expect(Object.keys(indexed)).not.toContain(UploadBucket.name);
    expect(Object.keys(indexed)).not.toContain(UploadKey.name);
    expect(encodingOf(described.workflowExecutionInfo!.memo!.fields!.destination!)).toBe('binary/encrypted');
    expectNoPlaintext(
      Buffer.from(temporal.api.workflowservice.v1.DescribeWorkflowExecutionResponse.encode(described).finish()),
      'the description',
    );

    // With the key, each payload decrypts: the workflow input is the request.
    const started = history.events?.[0]?.workflowExecutionStartedEventAttributes;
    const [input] = await codec.decode(started!.input!.payloads!);
    expect(defaultPayloadConverter.fromPayload(input!)).toMatchObject({
      tenant: TENANT,
      source: { type: 'file', path: file.path },
      destination: { bucket: BUCKET, key: secrets.key },
    });
  });

  it('fails an upload and encrypts its failure messages and report too; the key holder reads them', async () => {
    const handle = await uploads.start({
      uploadId: uniqueId('bad'),
      tenant: TENANT,
      source: { type: 'file', path: file.path },
      destination: { bucket: BUCKET, key: `${secrets.key}.2` },
      partSize: 5 * MiB,
      expectedChecksum: { algorithm: 'SHA256', value: '0'.repeat(64) },
    });
    failedId = handle.workflowId;
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UploadFailedError);
    const failure = error as UploadFailedError;
    expect(failure.outcome).toBe('compensated');
    expect(failure.message).toContain('ChecksumMismatch');
    expect(failure.report?.cause.message).toContain(file.path);

    const history = await rawHistory(failedId);
    expectNoPlaintext(Buffer.from(temporal.api.history.v1.History.encode(history).finish()), 'the failed upload’s history');
    const failed = history.events?.find((e) => e.workflowExecutionFailedEventAttributes)?.workflowExecutionFailedEventAttributes?.failure;
    expect(failed?.message).toBe('Encoded failure');
    expect(failed?.stackTrace).toBe('');
    expect(encodingOf(failed!.encodedAttributes!)).toBe('binary/encrypted');
    const activityFailure = history.events?.find((e) => e.activityTaskFailedEventAttributes)?.activityTaskFailedEventAttributes?.failure;
    expect(activityFailure?.message).toBe('Encoded failure');
    // Without the key, the failure cannot even be converted.
    await expect(plain.workflow.getHandle(failedId).result()).rejects.toThrow('Unknown encoding: binary/encrypted');
  });

  it('keeps the quota ledger’s update arguments and state encrypted', async () => {
    const history = await rawHistory(quotaLedgerWorkflowId(TENANT));
    const payloads = payloadsIn(history).filter((p) => !neverEncoded(p.at));
    expect(payloads.length).toBeGreaterThan(3);
    expect(payloads.filter((p) => encodingOf(p.payload) !== 'binary/encrypted').map((p) => p.at)).toEqual([]);
  });

  it('replays the encrypted histories with the key, as a worker taking them over would', async () => {
    const dataConverter = uploadDataConverter({ keys: [{ id: 'test-key', key: KEY }] })!;
    for (const workflowId of [completedId, failedId]) {
      await Worker.runReplayHistory({ workflowBundle: bundle, dataConverter }, await rawHistory(workflowId), workflowId);
    }
  });

  it('replays a history recorded before encryption on an encrypting worker (turning encryption on mid-flight)', async () => {
    const { readFileSync } = await import('node:fs');
    const history = historyFromJson(JSON.parse(readFileSync(path.join(__dirname, '..', 'histories', 'completed.json'), 'utf8')));
    const dataConverter = uploadDataConverter({ keys: [{ id: 'test-key', key: KEY }] })!;
    await Worker.runReplayHistory({ workflowBundle: bundle, dataConverter }, history);
  });

  it('refuses to start an encrypting worker on a bundle that would leave failure messages in plain text', async () => {
    await expect(
      createUploadWorker({
        config: stack.config,
        connection: stack.workerConnection,
        client: stack.client,
        s3: stack.s3,
        workflowBundle: { code: '/* bundled without the converter */', sourceMap: '' },
      }),
    ).rejects.toBeInstanceOf(EncryptionMisconfiguredError);
  });
});

describe('codec server, over HTTP', () => {
  const toJson = (p: Payload) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });

  it('decodes the workflow input of that history for a token holder', async () => {
    const input = (await rawHistory(completedId)).events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const response = await fetch(`${codecServer.url}/decode`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Namespace': inject('namespace'), Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ payloads: [toJson(input!)] }),
    });
    expect(response.status).toBe(200);
    const [decoded] = ((await response.json()) as { payloads: { metadata: Record<string, string>; data: string }[] }).payloads;
    expect(Buffer.from(decoded!.metadata.encoding!, 'base64').toString()).toBe('json/plain');
    expect(JSON.parse(Buffer.from(decoded!.data, 'base64').toString())).toMatchObject({
      tenant: TENANT,
      destination: { bucket: BUCKET, key: secrets.key },
      source: { path: file.path },
    });
  });

  it('refuses to decode without the token', async () => {
    const input = (await rawHistory(completedId)).events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const response = await fetch(`${codecServer.url}/decode`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ payloads: [toJson(input!)] }),
    });
    expect(response.status).toBe(401);
    expect(await response.text()).not.toContain(secrets.key);
  });

  it('answers the CORS preflight of the Web UI’s origin', async () => {
    const response = await fetch(`${codecServer.url}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: UI_ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(response.headers.get('access-control-allow-credentials')).toBe('true');
  });

  it('lets the temporal CLI show the history decoded, with --codec-auth, and not without', async () => {
    const temporalCli = await ensureServerBinary('temporal');
    const show = (...extra: string[]) =>
      promisify(execFile)(
        temporalCli,
        [
          'workflow',
          'show',
          '--workflow-id',
          completedId,
          '--address',
          inject('temporalAddress'),
          '--namespace',
          inject('namespace'),
          '--output',
          'json',
          '--codec-endpoint',
          codecServer.url,
          ...extra,
        ],
        { maxBuffer: 64 * MiB },
      );
    // JSON output shows each payload as stored after decoding: metadata and data in base64.
    const payloadData = (json: string) =>
      [...json.matchAll(/"data": "([A-Za-z0-9+/=]+)"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('utf8')).join('\n');
    const decoded = await show('--codec-auth', `Bearer ${TOKEN}`);
    expect(payloadData(decoded.stdout)).toContain(secrets.key);
    expect(payloadData(decoded.stdout)).toContain(file.path);
    const refused = await show().then(
      (r) => r.stdout + r.stderr,
      (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
    );
    expect(payloadData(refused)).not.toContain(secrets.key);
    expect(codecLog.some((line) => line.startsWith('POST /decode') && line.includes('→ 401'))).toBe(true);
  });
});
