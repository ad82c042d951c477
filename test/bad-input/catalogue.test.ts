/**
 * The bad-input catalogue, docs/reference/bad-input.md, is the specification: this test reads its
 * tables, and for every row produces the error the row describes from the layer the row names in
 * its "answered by" column — the real client (`UploadClient.start`), the real worker (activities,
 * dev server, MinIO), the real CLI, the real configuration loader — and checks that the answer
 * came from that layer and that every `code span` in the row's error column appears in it (`…`
 * stands for text that varies: paths, ports, ids). An answer from another layer never satisfies a
 * row: a worker row whose request the client already refuses fails, and so does a client row the
 * client lets through to the worker. Cases are keyed by layer and input; a row without a case
 * here, or a case without a row, fails, so the catalogue and the code cannot drift apart.
 *
 * Request rows start from one valid request and change one thing. Command-line rows run the CLI's
 * `main` with captured output. Configuration rows are data:
 * the code spans in their input column are the environment (`NAME=value`). Command-line rows say
 * their exit code, `(exit 2)`.
 */
import { createServer, type RequestListener } from 'node:http';
import { link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type WorkflowFailedError } from '@temporalio/client';
import { type ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectSourceActivity } from '../../src/activities/inspect-source';
import { DeleteFailedError, PauseRefusedError, UploadClient, UploadFailedError, type UploadHandle } from '../../src/client';
import { BatchClient, BatchFailedError, InvalidBatchRequestError, InvalidMigrationRequestError } from '../../src/batch-client';
import { MigrationFailedError } from '../../src/migration-client';
import type { MigrationRequest } from '../../src/migration/migration-types';
import type { BatchRequest } from '../../src/batch/batch-types';
import type { DeleteRequest } from '../../src/upload/delete-request';
import { InvalidDeleteRequestError, InvalidUploadRequestError } from '../../src/upload/errors';
import { ConfigError, loadConfig } from '../../src/config';
import type { SagaFailureReport } from '../../src/saga/workflow';
import { planParts } from '../../src/upload/part-plan';
import { normalizeUploadRequest, type UploadRequest } from '../../src/upload/request';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { runCliInProcess } from '../support/cli-in-process';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { startFileServer } from '../support/file-server';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { codeSpans, fragmentPattern, readRepoFile, tables } from '../support/markdown';

// ---- the catalogue's tables (a code span in an error cell is an assertion: keep prose out of them)

const CATALOGUE = 'docs/reference/bad-input.md';

/** Where an answer comes from; each row names the one whose answer it describes. */
const LAYERS = ['client', 'worker', 'CLI', 'configuration'] as const;
type Layer = (typeof LAYERS)[number];

interface Row {
  table: string;
  input: string;
  layer: Layer;
  error: string;
}

/** What a layer answered: `layer` is where the error really came from, whatever the row expected. */
interface Answer {
  layer: Layer | 'none' | 'threw';
  text: string;
  exitCode?: number | null;
}

function catalogueRows(): Row[] {
  const found = tables(readRepoFile(CATALOGUE)).filter((t) => t.header[0] === 'input');
  expect(found.length, `${CATALOGUE} has tables whose first column is "input"`).toBeGreaterThan(0);
  return found.flatMap((table) => {
    expect(table.header, `${CATALOGUE}, ${table.heading}`).toEqual(['input', 'answered by', 'error']);
    return table.rows.map((cells) => {
      const [input, layer, error] = cells.map((c) => c.replace(/\\\|/g, '|'));
      expect(LAYERS, `row "${input}": "answered by" must be one of ${LAYERS.join(', ')}`).toContain(layer);
      return { table: table.heading, input: input!, layer: layer as Layer, error: error! };
    });
  });
}

// ---- the stack, a worker, and what the worker rows need

const TENANT = uniqueId('catalogue');
const TIGHT = uniqueId('tight');
/** The loopback worker's tenant (a tenant's quota ledger lives on the queue that first served it). */
const LOOPBACK_TENANT = uniqueId('catalogue-loopback');
const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker;
let prefixWorker: RunningWorker;
let uploads: UploadClient;
let prefixUploads: UploadClient;
let batches: BatchClient;
let prefixBatches: BatchClient;
let loopbackWorker: RunningWorker;
/** A worker whose URL sources may reach loopback, where this test's HTTP servers listen. */
let loopbackUploads: UploadClient;
let tmp: { dir: string; remove(): Promise<void> };
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  stack = await connectTestStack({
    env: { UPLOAD_SAGA_QUOTAS: `${TIGHT}=12MiB`, UPLOAD_SAGA_URL_ALLOWED_HOSTS: '', UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS: '' },
  });
  tmp = await makeTempDir();
  // The worker's roots: one directory of the temp dir, so that the rest of it is "outside".
  const rootDir = path.join(tmp.dir, 'root');
  await mkdir(rootDir);
  const config = { ...stack.config, allowedRoots: [rootDir], urlSources: { allowedHosts: [] as string[] } };
  const workflowBundle = await bundleUploadWorkflows();
  worker = runInBackground(
    await createUploadWorker({ config, connection: stack.workerConnection, client: stack.client, s3: stack.s3, workflowBundle }),
  );
  uploads = new UploadClient({ client: stack.client, taskQueue: config.temporal.taskQueue });
  batches = new BatchClient({ client: stack.client, taskQueue: config.temporal.taskQueue });
  const prefixQueue = uniqueId('catalogue-prefix');
  prefixWorker = runInBackground(
    await createUploadWorker({
      config: { ...config, temporal: { ...config.temporal, taskQueue: prefixQueue }, tenantKeyPrefix: 'tenants/{tenant}/' },
      connection: stack.workerConnection,
      client: stack.client,
      s3: stack.s3,
      workflowBundle,
    }),
  );
  prefixUploads = new UploadClient({ client: stack.client, taskQueue: prefixQueue });
  prefixBatches = new BatchClient({ client: stack.client, taskQueue: prefixQueue });
  const loopbackQueue = uniqueId('catalogue-loopback');
  loopbackWorker = runInBackground(
    await createUploadWorker({
      config: { ...config, temporal: { ...config.temporal, taskQueue: loopbackQueue }, urlSources: { allowedHosts: ['127.0.0.1'] } },
      connection: stack.workerConnection,
      client: stack.client,
      s3: stack.s3,
      workflowBundle,
    }),
  );
  loopbackUploads = new UploadClient({ client: stack.client, taskQueue: loopbackQueue });
});

afterAll(async () => {
  await worker?.stop();
  await prefixWorker?.stop();
  await loopbackWorker?.stop();
  for (const close of closers) await close();
  await stack?.close();
  await tmp?.remove();
});

const root = () => path.join(tmp.dir, 'root');

async function fileInRoot(name: string, size: number): Promise<string> {
  return (await makeRandomFile(root(), name, size)).path;
}

function request(source: UploadRequest['source'], extra: Partial<UploadRequest> = {}): UploadRequest {
  const uploadId = uniqueId('row');
  return {
    uploadId,
    tenant: TENANT,
    source,
    destination: { bucket: BUCKET, key: `catalogue/${uploadId}.bin` },
    partSize: 5 * MiB,
    ...extra,
  };
}

/** The worker's answer: a failure's cause as "Type: message" — what the report, the CLI and the Web UI show. */
const fromWorker = (text: string): Answer => ({ layer: 'worker', text });

/**
 * Starts `req` through the real client and says who answered: the client (its validation threw),
 * the worker (the upload failed: its cause), or nobody (the upload completed).
 */
async function answerOf(req: unknown, client = uploads): Promise<Answer> {
  let handle;
  try {
    handle = await client.start(req as UploadRequest);
  } catch (err) {
    if (err instanceof InvalidUploadRequestError)
      return { layer: 'client', text: err.problems.map((p) => `${p.field}: ${p.message}`).join('\n') };
    throw err;
  }
  const err = await handle.result().catch((e: unknown) => e);
  if (err instanceof UploadFailedError) return fromWorker(`${err.report!.cause.type}: ${err.report!.cause.message}`);
  return { layer: 'none', text: `the upload ${err instanceof Error ? `failed: ${String(err)}` : 'completed'}` };
}

const workerError = answerOf;

/** A directory under the worker's root holding `files` (name → bytes), for batch rows. */
async function batchDirectory(name: string, files: Record<string, number> = {}): Promise<string> {
  const dir = path.join(root(), name, uniqueId('d'));
  await mkdir(dir, { recursive: true });
  for (const [file, size] of Object.entries(files)) await writeFile(path.join(dir, file), randomBytes(size));
  return dir;
}

function batchRequest(source: BatchRequest['source'], extra: Partial<BatchRequest> = {}): BatchRequest {
  return {
    batchId: uniqueId('row'),
    tenant: TENANT,
    source,
    destination: { bucket: BUCKET, prefix: `catalogue/${uniqueId('batch')}/` },
    ...extra,
  };
}

/**
 * Starts a batch and says who answered: the client (its validation threw), the worker (the batch
 * failed: its type and message; or it completed listing per-file failures), or nobody.
 */
async function batchAnswerOf(req: BatchRequest, client = batches): Promise<Answer> {
  let handle;
  try {
    handle = await client.start(req);
  } catch (err) {
    if (err instanceof InvalidBatchRequestError)
      return { layer: 'client', text: err.problems.map((p) => `${p.field}: ${p.message}`).join('\n') };
    throw err;
  }
  try {
    const result = await handle.result();
    if (result.failures.length) return fromWorker(result.failures.map((f) => `${f.type}: ${f.message}`).join('\n'));
    return { layer: 'none', text: 'the batch completed without failures' };
  } catch (err) {
    if (err instanceof BatchFailedError) return fromWorker(`${err.type}: ${err.message}`);
    throw err;
  }
}

/** Starts a migration and says who answered: the client, the worker (the migration failed: its type and message), or nobody. */
async function migrationAnswerOf(extra: Partial<MigrationRequest>, client = batches): Promise<Answer> {
  const req: MigrationRequest = {
    migrationId: uniqueId('row'),
    tenant: TENANT,
    source: { bucket: BUCKET, prefix: `catalogue/${uniqueId('empty')}/` },
    destination: { bucket: BUCKET, prefix: `catalogue/${uniqueId('migration')}/` },
    ...extra,
  };
  let handle;
  try {
    handle = await client.migrate(req);
  } catch (err) {
    if (err instanceof InvalidMigrationRequestError)
      return { layer: 'client', text: err.problems.map((p) => `${p.field}: ${p.message}`).join('\n') };
    throw err;
  }
  try {
    const result = await handle.result();
    if (result.failures.length) return fromWorker(result.failures.map((f) => `${f.type}: ${f.message}`).join('\n'));
    return { layer: 'none', text: 'the migration completed without failures' };
  } catch (err) {
    if (err instanceof MigrationFailedError) return fromWorker(`${err.type}: ${err.message}`);
    throw err;
  }
}

async function server(handler: RequestListener): Promise<string> {
  const s = createServer(handler);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => s.close(resolve)));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

// ---- the cases, by table and row

const valid: UploadRequest = {
  uploadId: 'invoice-2026-11',
  tenant: 'acme',
  source: { type: 'file', path: '/data/in.bin' },
  destination: { bucket: 'uploads', key: 'invoices/2026/11.pdf' },
};

/** A valid request with one change: `{ 'destination.key': '' }` sets a nested field, `undefined` removes one. */
function changed(patch: Record<string, unknown>): unknown {
  const copy = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
  for (const [dotted, value] of Object.entries(patch)) {
    const parts = dotted.split('.');
    let target = copy;
    for (const part of parts.slice(0, -1)) target = target[part] as Record<string, unknown>;
    if (value === undefined) delete target[parts.at(-1)!];
    else target[parts.at(-1)!] = value;
  }
  return copy;
}

/** A client row about a delete rather than an upload: answered by `UploadClient.delete`. */
class DeleteCase {
  constructor(readonly request: unknown) {}
}

/** `UploadClient.delete` of `req`, and who answered: the client (validation), the worker (a refusal), or nobody. */
async function deleteAnswerOf(req: unknown, client = uploads): Promise<Answer> {
  try {
    const result = await client.delete(req as DeleteRequest);
    return { layer: 'none', text: `the delete ended ${result.outcome}` };
  } catch (err) {
    if (err instanceof InvalidDeleteRequestError)
      return { layer: 'client', text: err.problems.map((p) => `${p.field}: ${p.message}`).join('\n') };
    if (err instanceof DeleteFailedError) return fromWorker(`${err.type}: ${err.message.replace(/^delete of s3:\/\/\S+ failed: /, '')}`);
    throw err;
  }
}

const requestCases: Record<string, unknown> = {
  'not an object': null,
  'an unknown field': changed({ partsize: 5 * MiB }),
  'an unknown field inside `source` or `destination`': changed({
    'destination.region': 'eu',
    source: { type: 's3', bucket: 'uploads', key: 'k', accessKeyId: 'AKIA' },
  }),
  '`uploadId` missing': changed({ uploadId: undefined }),
  '`uploadId` empty': changed({ uploadId: '' }),
  '`uploadId` over 128 characters': changed({ uploadId: 'u'.repeat(129) }),
  '`uploadId` with other characters (`:`, `/`, spaces, …)': changed({ uploadId: 'a/b' }),
  '`tenant` empty': changed({ tenant: '' }),
  '`tenant` over 63 characters': changed({ tenant: 't'.repeat(64) }),
  '`tenant` with other characters': changed({ tenant: 'a b' }),
  '`source` missing or of an unknown type': changed({ source: { type: 'ftp', path: '/x' } }),
  '`source.path` relative': changed({ 'source.path': 'in.bin' }),
  '`source.path` with control characters': changed({ 'source.path': '/a\u0000b' }),
  '`source.path` over 4096 bytes': changed({ 'source.path': `/${'p'.repeat(4096)}` }),
  '`source.url` not http(s), or with credentials': changed({ source: { type: 'url', url: 'https://user:pw@example.com/f.bin' } }),
  '`source.url` over 2048 characters': changed({ source: { type: 'url', url: `https://example.com/${'x'.repeat(2048)}` } }),
  '`destination` missing': changed({ destination: undefined }),
  '`destination.bucket` shorter than 3 or longer than 63 characters': changed({ 'destination.bucket': 'ab' }),
  '`destination.bucket` with capitals, `_` or other characters': changed({ 'destination.bucket': 'My_Bucket' }),
  '`destination.bucket` with `..`': changed({ 'destination.bucket': 'a..b' }),
  '`destination.bucket` like an IP address': changed({ 'destination.bucket': '10.0.0.1' }),
  '`destination.bucket` with a prefix S3 reserves (`xn--`, `sthree-`, `amzn-s3-demo-`)': changed({ 'destination.bucket': 'xn--uploads' }),
  '`destination.bucket` with a suffix S3 reserves (`-s3alias`, `--ol-s3`, `.mrap`, `--x-s3`, `--table-s3`)': changed({
    'destination.bucket': 'uploads-s3alias',
  }),
  '`destination.key` empty': changed({ 'destination.key': '' }),
  '`destination.key` over 1024 bytes of UTF-8': changed({ 'destination.key': 'é'.repeat(513) }),
  '`destination.key` with control characters': changed({ 'destination.key': 'a\nb' }),
  '`destination.key` with an unpaired surrogate': changed({ 'destination.key': 'a\ud800b' }),
  '`destination.key` with U+FFFE or U+FFFF': changed({ 'destination.key': 'a\uffffb' }),
  '`destination.key` starting with `/`': changed({ 'destination.key': '/a' }),
  '`destination.key` ending with `/`': changed({ 'destination.key': 'dir/' }),
  '`destination.key` with `//`': changed({ 'destination.key': 'a//b' }),
  '`destination.key` with `.` or `..` segments': changed({ 'destination.key': 'a/../b' }),
  '`destination.key` with a segment over 255 bytes': changed({ 'destination.key': `a/${'s'.repeat(256)}` }),
  '`destination.key` under `.upload-saga/`': changed({ 'destination.key': '.upload-saga/x' }),
  '`declaredSize` not a number': changed({ declaredSize: '10MB' }),
  '`declaredSize` negative': changed({ declaredSize: -1 }),
  '`declaredSize` fractional': changed({ declaredSize: 1.5 }),
  '`declaredSize` over 5 TiB': changed({ declaredSize: 5 * 1024 ** 4 + 1 }),
  '`expectedChecksum` not `{ algorithm, value }`': changed({ expectedChecksum: 'abc' }),
  '`expectedChecksum.algorithm` unknown': changed({ expectedChecksum: { algorithm: 'MD5', value: 'x' } }),
  '`expectedChecksum` SHA-256 malformed': changed({ expectedChecksum: { algorithm: 'SHA256', value: 'abc' } }),
  '`expectedChecksum` CRC malformed': changed({ expectedChecksum: { algorithm: 'CRC32C', value: 'abc' } }),
  '`checksumAlgorithm` other than a CRC given as `expectedChecksum`': changed({
    expectedChecksum: { algorithm: 'CRC32C', value: '3q2+7w==' },
    checksumAlgorithm: 'SHA256',
  }),
  '`partSize` below 5 MiB or above 5 GiB': changed({ partSize: 1024 }),
  '`partSize` fractional': changed({ partSize: 5 * MiB + 0.5 }),
  '`partSize` not a number': changed({ partSize: '8MiB' }),
  '`partConcurrency` below 1': changed({ partConcurrency: 0 }),
  '`partConcurrency` above 64': changed({ partConcurrency: 65 }),
  '`checksumAlgorithm` unknown': changed({ checksumAlgorithm: 'MD5' }),
  '`contentType` not a MIME type': changed({ contentType: 'pdf' }),
  '`contentType` with non-ASCII parameters': changed({ contentType: 'text/plain; name=ü' }),
  '`contentType` over 255 characters': changed({ contentType: `text/${'x'.repeat(260)}` }),
  '`metadata` key with other characters': changed({ metadata: { 'a b': 'v' } }),
  '`metadata` value not printable ASCII': changed({ metadata: { k: 'ü' } }),
  '`metadata` over 1831 bytes': changed({ metadata: { big: 'x'.repeat(1832) } }),
  '`metadata` key starting with `upload-saga-`': changed({ metadata: { 'Upload-Saga-Upload': 'upload:acme:forged' } }),
  'delete with a malformed tenant, bucket or key': new DeleteCase({ tenant: 'acme:1', bucket: 'No_Bucket', key: 'a/../b' }),
  'delete with a malformed `uploadId`': new DeleteCase({ tenant: 'acme', bucket: 'uploads', key: 'k', uploadId: 'not an id' }),
  '`metadata` keys that differ only in case': changed({ metadata: { Project: 'a', project: 'b' } }),
  '`webhookUrl` not an http(s) URL, or with credentials': changed({ webhookUrl: 'ftp://example.com/hook' }),
  '`webhookUrl` over 2048 characters': changed({ webhookUrl: `https://example.com/${'x'.repeat(2048)}` }),
  '`failIfExists` not a boolean': changed({ failIfExists: 'yes' }),
  '`partsPerActivity` below 1 or above 10000': changed({ partsPerActivity: 0 }),
  '`verify` unknown': changed({ verify: 'never' }),
  '`onQuota` unknown': changed({ onQuota: 'queue' }),
  '`quotaWaitMs` without `onQuota: "wait"`': changed({ quotaWaitMs: 60_000 }),
  '`quotaWaitMs` below one second or above 30 days': changed({ onQuota: 'wait', quotaWaitMs: 10 }),
};

/** What a pause or resume answered: the workflow's refusal (PauseRefusedError), or nothing. */
async function pauseAnswer(act: () => Promise<unknown>): Promise<Answer> {
  try {
    await act();
    return { layer: 'none', text: 'accepted' };
  } catch (err) {
    if (err instanceof PauseRefusedError) return fromWorker(`${err.name}: ${err.message}`);
    throw err;
  }
}

/** An upload that stays running: tenant TIGHT has no room for 13 MiB, and it waits for quota. Cancelled by `done`. */
async function waitingUpload(name: string): Promise<UploadHandle> {
  const handle = await uploads.start(
    request({ type: 'file', path: await fileInRoot(name, 13 * MiB) }, { tenant: TIGHT, onQuota: 'wait', quotaWaitMs: 600_000 }),
  );
  closers.push(() => handle.cancel().catch(() => undefined));
  await expect.poll(async () => (await handle.progress()).waitingForQuota, { timeout: 60_000 }).toBeDefined();
  return handle;
}

const workerCases: Record<string, () => Promise<Answer>> = {
  'a batch directory with an unreadable file (FIFO, socket, device)': async () => {
    const dir = await batchDirectory('batch-fifo', { 'ok.bin': 1000 });
    execFileSync('mkfifo', [path.join(dir, 'pipe')]);
    return batchAnswerOf(batchRequest({ type: 'directory', path: dir }));
  },
  'a batch directory with a symlink leaving the allowed roots': async () => {
    const dir = await batchDirectory('batch-link', { 'ok.bin': 1000 });
    await writeFile(path.join(tmp.dir, 'outside-batch.bin'), randomBytes(100));
    await symlink(path.join(tmp.dir, 'outside-batch.bin'), path.join(dir, 'escape.bin'));
    return batchAnswerOf(batchRequest({ type: 'directory', path: dir }));
  },
  'a batch manifest line that is not valid JSON': async () => {
    const dir = await batchDirectory('batch-manifest', { 'a.bin': 100 });
    const manifest = path.join(dir, 'batch.jsonl');
    await writeFile(manifest, `${JSON.stringify({ path: path.join(dir, 'a.bin') })}\n{"path": oops}\n`);
    return batchAnswerOf(batchRequest({ type: 'manifest', path: manifest }));
  },
  'two batch sources mapping to one key': async () => {
    const one = await batchDirectory('batch-dup', { 'same.bin': 100 });
    const two = await batchDirectory('batch-dup', { 'same.bin': 100 });
    return batchAnswerOf(batchRequest({ type: 'list', paths: [path.join(one, 'same.bin'), path.join(two, 'same.bin')] }));
  },
  "a batch prefix outside the tenant's prefix (with `UPLOAD_SAGA_TENANT_KEY_PREFIX`)": async () => {
    const dir = await batchDirectory('batch-prefix', { 'a.bin': 100 });
    return batchAnswerOf(
      batchRequest({ type: 'directory', path: dir }, { destination: { bucket: BUCKET, prefix: 'tenants/someone-else/' } }),
      prefixBatches,
    );
  },
  'an empty batch directory': async () => batchAnswerOf(batchRequest({ type: 'directory', path: await batchDirectory('batch-empty') })),
  'a batch directory outside the allowed roots': async () => {
    const dir = path.join(tmp.dir, uniqueId('outside-dir'));
    await mkdir(dir);
    await writeFile(path.join(dir, 'a.bin'), randomBytes(100));
    return batchAnswerOf(batchRequest({ type: 'directory', path: dir }));
  },
  'an atomic batch with a file larger than its `partSize`': async () => {
    const dir = await batchDirectory('batch-large', { 'large.bin': 6 * MiB });
    return batchAnswerOf(batchRequest({ type: 'directory', path: dir }, { mode: 'atomic', partSize: 5 * MiB }));
  },
  'a migration source prefix with no object': () => migrationAnswerOf({}),
  'a migration from a bucket that does not exist': () => migrationAnswerOf({ source: { bucket: 'no-such-bucket', prefix: 'x/' } }),
  "a migration destination prefix outside the tenant's prefix (with `UPLOAD_SAGA_TENANT_KEY_PREFIX`)": () =>
    migrationAnswerOf(
      {
        source: { bucket: BUCKET, prefix: `tenants/${TENANT}/${uniqueId('src')}/` },
        destination: { bucket: BUCKET, prefix: `tenants/someone-else/${uniqueId('dst')}/` },
      },
      prefixBatches,
    ),
  "a migration source prefix in the worker's store outside the tenant's prefix (with `UPLOAD_SAGA_TENANT_KEY_PREFIX`)": () =>
    migrationAnswerOf(
      {
        source: { bucket: BUCKET, prefix: `tenants/someone-else/${uniqueId('src')}/` },
        destination: { bucket: BUCKET, prefix: `tenants/${TENANT}/${uniqueId('dst')}/` },
      },
      prefixBatches,
    ),
  'a migration from a source profile the worker does not have': () =>
    migrationAnswerOf({ source: { bucket: BUCKET, prefix: 'x/', profile: 'nope' } }),
  'a request that bypassed the client': async () => {
    const bad = { ...request({ type: 'file', path: await fileInRoot('bypass.bin', MiB) }), partSize: 1024 };
    const handle = await stack.client.workflow.start('uploadWorkflow', {
      workflowId: `upload:${TENANT}:${bad.uploadId}`,
      taskQueue: stack.config.temporal.taskQueue,
      args: [bad],
    });
    const err = await handle.result().catch((e: unknown) => e);
    const report = ((err as WorkflowFailedError).cause as ApplicationFailure).details?.[0] as SagaFailureReport;
    return fromWorker(`${report.cause.type}: ${report.cause.message}`);
  },
  'source file missing': () => workerError(request({ type: 'file', path: path.join(root(), 'missing.bin') })),
  'source is a directory, FIFO or device': () => workerError(request({ type: 'file', path: root() })),
  'source file outside the allowed roots': async () =>
    workerError(request({ type: 'file', path: (await makeRandomFile(tmp.dir, 'outside.bin', MiB)).path })),
  'source file reaching outside through a symlink or `..`': async () => {
    await makeRandomFile(tmp.dir, 'target.bin', MiB);
    return workerError(request({ type: 'file', path: `${root()}/../target.bin` }));
  },
  'source file that is a hard link to a file outside the allowed roots': async () => {
    const outside = await makeRandomFile(tmp.dir, 'linked-outside.bin', MiB);
    const inside = path.join(root(), 'hard-link.bin');
    await link(outside.path, inside);
    return workerError(request({ type: 'file', path: inside }));
  },
  '`declaredSize` different from the source': async () =>
    workerError(request({ type: 'file', path: await fileInRoot('sized.bin', MiB) }, { declaredSize: 2 * MiB })),
  'an object over 5 TiB (size not declared)': async () => {
    const huge = {
      description: 'file /data/huge.bin',
      stat: () => Promise.resolve({ size: 5 * 1024 ** 4 + 1, version: 'v' }),
      read: () => Promise.reject(new Error('never read')),
      close: () => Promise.resolve(),
    };
    const inspect = inspectSourceActivity({ s3: stack.s3, sources: { open: () => Promise.resolve(huge) }, quota: undefined as never });
    const err = (await inspect(normalizeUploadRequest(request({ type: 'file', path: '/data/huge.bin' }))).catch(
      (e: unknown) => e,
    )) as ApplicationFailure;
    return fromWorker(`${err.type}: ${err.message}`);
  },
  // What inspect-source's part planner decides (pure, so no upload of 60 GiB is needed).
  'more than 10,000 parts at the requested part size': () =>
    Promise.resolve(fromWorker(planParts(12_288 * 5 * MiB, 5 * MiB).adjusted!.reason)),
  'bucket missing': async () =>
    workerError(
      request({ type: 'file', path: await fileInRoot('nobucket.bin', MiB) }, { destination: { bucket: 'no-such-bucket', key: 'k' } }),
    ),
  "key outside the tenant's prefix (with `UPLOAD_SAGA_TENANT_KEY_PREFIX`)": async () =>
    workerError(
      request(
        { type: 'file', path: await fileInRoot('prefix.bin', MiB) },
        { destination: { bucket: BUCKET, key: 'tenants/someone-else/x.bin' } },
      ),
      prefixUploads,
    ),
  "delete of a key outside the tenant's prefix (with `UPLOAD_SAGA_TENANT_KEY_PREFIX`)": () =>
    deleteAnswerOf({ tenant: TENANT, bucket: BUCKET, key: 'tenants/someone-else/x.bin' }, prefixUploads),
  'delete of an object an upload of another tenant stored': async () => {
    const stored = request({ type: 'file', path: await fileInRoot('owned.bin', MiB) });
    const { key } = await (await uploads.start(stored)).result();
    const other = uniqueId('catalogue-other');
    // A tenant's ledger lives on the queue of its first upload: this tenant never uploads, so it has none.
    return deleteAnswerOf({ tenant: other, bucket: BUCKET, key });
  },
  'delete in a bucket that does not exist': () => deleteAnswerOf({ tenant: TENANT, bucket: 'no-such-bucket', key: 'k' }),
  'tenant over quota': async () => workerError(request({ type: 'file', path: await fileInRoot('quota.bin', 13 * MiB) }, { tenant: TIGHT })),
  'tenant over quota until the deadline of `onQuota: "wait"`': async () =>
    workerError(
      request({ type: 'file', path: await fileInRoot('quota-wait.bin', 13 * MiB) }, { tenant: TIGHT, onQuota: 'wait', quotaWaitMs: 1_000 }),
    ),
  '`pause` of an upload that ended': async () => {
    const req = request({ type: 'file', path: path.join(root(), 'ended.bin') });
    const handle = await uploads.start(req);
    await handle.result().catch(() => undefined);
    return pauseAnswer(() => handle.pause());
  },
  '`pause` of a batch that ended': async () => {
    const dir = await batchDirectory('batch-ended', { 'one.bin': 1000 });
    const handle = await batches.start(batchRequest({ type: 'directory', path: dir }));
    await handle.result();
    return pauseAnswer(() => handle.pause());
  },
  '`pause` of a migration that ended': async () => {
    const from = `catalogue/${uniqueId('mig-ended')}/`;
    await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${from}one.bin`, Body: 'one' }));
    const handle = await batches.migrate({
      migrationId: uniqueId('row'),
      tenant: TENANT,
      source: { bucket: BUCKET, prefix: from },
      destination: { bucket: BUCKET, prefix: `catalogue/${uniqueId('mig-ended-copy')}/` },
    });
    await handle.result();
    return pauseAnswer(() => handle.pause());
  },
  '`resume` of an upload that is not paused': async () => pauseAnswer(async () => (await waitingUpload('not-paused.bin')).resume()),
  'a pause reason over 200 characters': async () =>
    pauseAnswer(async () => (await waitingUpload('long-reason.bin')).pause({ reason: 'x'.repeat(201) })),
  'URL answering 404 or 410': async () =>
    workerError(
      request(
        { type: 'url', url: `${await server((_q, s) => ((s.statusCode = 404), s.end()))}/gone.bin?token=t` },
        { tenant: LOOPBACK_TENANT },
      ),
      loopbackUploads,
    ),
  'URL without a Content-Length': async () => {
    const base = await server((_q, s) => {
      s.setHeader('Transfer-Encoding', 'chunked');
      s.end();
    });
    return workerError(request({ type: 'url', url: `${base}/stream.bin` }, { tenant: LOOPBACK_TENANT }), loopbackUploads);
  },
  'URL to a loopback, private, link-local, CGNAT or other non-public address': async () =>
    workerError(request({ type: 'url', url: 'http://127.0.0.1:9/admin?token=t' })),
  'URL whose host name resolves to a non-public address': async () =>
    workerError(request({ type: 'url', url: 'http://localhost:9/admin' })),
  'URL redirecting more than 5 times': async () => {
    const looping = await server((q, s) => {
      s.statusCode = 302;
      s.setHeader('Location', `${q.url}x`);
      s.end();
    });
    // The worker may reach this server (on loopback): only the hop count stops it.
    return workerError(request({ type: 'url', url: `${looping}/r` }, { tenant: LOOPBACK_TENANT }), loopbackUploads);
  },
  'webhook URL to a non-public address': async () =>
    workerError(request({ type: 'file', path: await fileInRoot('hook.bin', MiB) }, { webhookUrl: 'http://127.0.0.1:9/hook?sig=s' })),
  'expected SHA-256 wrong': async () => {
    const file = await fileInRoot('sum.bin', 6 * MiB);
    const sha = await workerError(
      request({ type: 'file', path: file }, { expectedChecksum: { algorithm: 'SHA256', value: '0'.repeat(64) } }),
    );
    const crc = await workerError(request({ type: 'file', path: file }, { expectedChecksum: { algorithm: 'CRC32C', value: '3q2+7w==' } }));
    return { layer: sha.layer === crc.layer ? sha.layer : 'threw', text: `${sha.text}\n${crc.text}` };
  },
  'object exists and `failIfExists`': async () => {
    const req = request({ type: 'file', path: await fileInRoot('exists.bin', MiB) }, { failIfExists: true });
    await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: req.destination.key, Body: 'already here' }));
    return workerError(req);
  },
  'S3 source object missing': () => workerError(request({ type: 's3', bucket: BUCKET, key: `catalogue/${uniqueId('absent')}.bin` })),
  'S3 source profile not configured on the worker': () =>
    workerError(request({ type: 's3', bucket: BUCKET, key: 'catalogue/any.bin', profile: 'elsewhere' })),
  'source changed during the upload': async () => {
    // The file on the server changes after its first part was read.
    const files = await startFileServer(randomBytes(30 * MiB), { ranges: true });
    closers.push(() => files.close());
    const handle = await loopbackUploads.start(request({ type: 'url', url: files.url }, { partConcurrency: 1, tenant: LOOPBACK_TENANT }));
    await expect.poll(() => files.requests.filter((r) => r.range).length, { timeout: 60_000, interval: 20 }).toBeGreaterThan(0);
    files.setContent(randomBytes(30 * MiB));
    const err = (await handle.result().catch((e: unknown) => e)) as UploadFailedError;
    return fromWorker(`${err.report!.cause.type}: ${err.report!.cause.message}`);
  },
};

const cliCases: Record<string, string[]> = {
  'an unknown command': ['uplaod'],
  'a missing argument': ['upload', '--bucket', 'b', '--key', 'k', '--tenant', 't'],
  'a migration onto its own source (same bucket, overlapping prefixes)': [
    'migrate',
    's3://uploads/photos/',
    '--bucket',
    'uploads',
    '--prefix',
    'photos/copy/',
    '--tenant',
    't',
  ],
  'a migration source that is not an `s3://` URL': ['migrate', 'uploads/photos/', '--bucket', 'uploads', '--tenant', 't'],
  'a missing required option': ['upload', './x.bin', '--key', 'k', '--tenant', 't'],
  '`--part-size` not a size': ['upload', './x.bin', '--bucket', 'uploads', '--key', 'k', '--tenant', 't', '--part-size', '8 bananas'],
  '`--concurrency`, `--limit` not a whole number ≥ 1': [
    'upload',
    './x.bin',
    '--bucket',
    'uploads',
    '--key',
    'k',
    '--tenant',
    't',
    '--concurrency',
    '0',
  ],
  '`--checksum`, `--outcome` not one of the choices': [
    'upload',
    './x.bin',
    '--bucket',
    'uploads',
    '--key',
    'k',
    '--tenant',
    't',
    '--checksum',
    'MD5',
  ],
  '`--quota-wait-deadline` not a duration': [
    'upload',
    './x.bin',
    '--bucket',
    'uploads',
    '--key',
    'k',
    '--tenant',
    't',
    '--on-quota',
    'wait',
    '--quota-wait-deadline',
    'soon',
  ],
  '`list --kind` not uploads, batches or migrations': ['list', '--kind', 'files'],
  '`pause --expiry` not runs or stops': ['pause', 'acme', 'u1', '--expiry', 'soon'],
  '`--meta` not key=value': ['upload', './x.bin', '--bucket', 'uploads', '--key', 'k', '--tenant', 't', '--meta', 'project'],
  'an invalid request (any row of the first table)': ['upload', './x.bin', '--bucket', 'uploads', '--key', 'a/../b', '--tenant', 't'],
  '`status`, `cancel` or `list --tenant` with a malformed tenant or upload id': ['status', 'acme:1', 'x'],
  '`status` of an upload that does not exist': ['status', 'acme', 'no-such-upload'],
  '`delete` with a malformed tenant, bucket or key': ['delete', 'acme:1', '--bucket', 'uploads', '--key', 'k'],
  'an invalid configuration (any row of the last table)': ['list'],
  'a batch prefix with `..` segments': ['upload', './x.bin', '--bucket', 'uploads', '--prefix', 'a/../', '--tenant', 't'],
};

/**
 * The CLI loaded the way bin/upload-saga-dev.cjs loads it (tsx's CommonJS hook, then src/cli/main.ts),
 * in this process — a child process per row costs seconds each on a loaded 2-core machine — and
 * run with exactly `env`, its stdout and stderr captured. test/cli.test.ts runs the real binary.
 */
function runCli(argv: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  return runCliInProcess(env, argv);
}

async function actual(row: Row): Promise<Answer> {
  switch (row.layer) {
    case 'client': {
      if (!(row.input in requestCases)) throw new Error(`no client case for row "${row.input}"`);
      const input = requestCases[row.input];
      return input instanceof DeleteCase ? deleteAnswerOf(input.request) : answerOf(input);
    }
    case 'worker': {
      const run = workerCases[row.input];
      if (!run) throw new Error(`no worker case for row "${row.input}"`);
      return run();
    }
    case 'CLI': {
      const argv = cliCases[row.input];
      if (!argv) throw new Error(`no CLI case for row "${row.input}"`);
      const env = row.input.startsWith('an invalid configuration') ? { ...stack.env, TEMPORAL_ADDRESS: 'nonsense' } : stack.env;
      const { code, output } = await runCli(argv, env);
      return { layer: 'CLI', text: output, exitCode: code };
    }
    case 'configuration': {
      const env = Object.fromEntries(
        codeSpans(row.input)
          .filter((span) => span.includes('='))
          .map((assignment) => [assignment.slice(0, assignment.indexOf('=')), assignment.slice(assignment.indexOf('=') + 1)]),
      );
      expect(Object.keys(env).length, `configuration row "${row.input}" names no NAME=value`).toBeGreaterThan(0);
      try {
        loadConfig(env);
      } catch (err) {
        if (err instanceof ConfigError) return { layer: 'configuration', text: err.problems.join('\n') };
        throw err;
      }
      return { layer: 'none', text: `the configuration ${JSON.stringify(env)} was accepted` };
    }
  }
}

/** Why `answer` does not satisfy `row`, or nothing: it must come from the row's layer and contain every fragment. */
function mismatches(row: Row, answer: Answer): string[] {
  if (answer.layer !== row.layer)
    return [`${row.input}\n  the catalogue says the ${row.layer} answers, but the answer came from: ${answer.layer}\n  ${answer.text}`];
  return [
    ...codeSpans(row.error)
      .filter((fragment) => !fragmentPattern(fragment).test(answer.text))
      .map((fragment) => `${row.input}\n  the catalogue says: ${fragment}\n  ${row.layer} answered: ${answer.text}`),
    ...(row.layer === 'CLI' && answer.exitCode !== Number(/\(exit (\d+)/.exec(row.error)?.[1])
      ? [`${row.input}\n  the catalogue says ${row.error}\n  exit code: ${answer.exitCode}`]
      : []),
  ];
}

const rows = catalogueRows();

describe(`the bad-input catalogue (${CATALOGUE})`, () => {
  it('has a case here for every row, and a row for every case here, of the same layer', () => {
    const documented = (layer: Layer) =>
      rows
        .filter((r) => r.layer === layer)
        .map((r) => r.input)
        .sort();
    expect(documented('client')).toEqual(Object.keys(requestCases).sort());
    expect(documented('worker')).toEqual(Object.keys(workerCases).sort());
    expect(documented('CLI')).toEqual(Object.keys(cliCases).sort());
    expect(documented('configuration').length).toBeGreaterThan(0);
    for (const row of rows) expect(codeSpans(row.error).length, `row "${row.input}" shows no error in a code span`).toBeGreaterThan(0);
  });

  it.each(rows.filter((r) => r.layer === 'client' || r.layer === 'configuration').map((r) => [`${r.layer}: ${r.input}`, r] as const))(
    '%s',
    async (_name, row) => {
      expect(mismatches(row, await actual(row)).join('\n\n')).toBe('');
    },
  );

  // These rows run real uploads or connect to the dev server: concurrently, to keep the file's time reasonable.
  it.each(['CLI', 'worker'] as const)('%s: every row (uploads through the real worker, dev server and MinIO)', async (layer) => {
    const results = await Promise.all(
      rows
        .filter((r) => r.layer === layer)
        .map(async (row) => ({
          row,
          answer: await actual(row).catch((e: unknown): Answer => ({ layer: 'threw', text: `threw ${String(e)}` })),
        })),
    );
    expect(results.flatMap(({ row, answer }) => mismatches(row, answer)).join('\n\n')).toBe('');
  });
});
