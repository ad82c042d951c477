/**
 * Records the workflow histories that `test/replay.test.ts` replays: `npm run histories:record`
 * (all scenarios) or `npm run histories:record -- completed url-source` (some of them).
 *
 * Why: a replay test only catches a change that would break running uploads if it replays what
 * the real system wrote. So this script starts its own embedded stack (Temporal dev server +
 * MinIO), runs each scenario against the real activities and MinIO — a failure on cue only by
 * wrapping a real activity or the source, as the end-to-end tests do — checks that the run ended
 * the way the scenario says, and writes its full history to `test/histories/<scenario>.json`,
 * overwriting. Files it did not write (e.g. histories exported from production) are left alone.
 *
 * Re-record deliberately, after a workflow change that is *meant* to be incompatible has been
 * made safe (docs/how-to/changing-workflow-code.md); never to make a failing replay test pass.
 * Whatever happens, it leaves nothing running: workers, worker processes, local servers, the
 * stack and the temp files are stopped or removed in reverse order of creation.
 */
import { WIRE_NAMES } from '../src/upload/wire-names';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { CopyObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import {
  createActivities,
  HttpUrlResolver,
  LocalFileResolver,
  SourceRegistry,
  type SourceResolver,
  type UploadActivities,
  workflowPauseProbe,
} from '../src/activities';
import { BatchClient } from '../src/batch-client';
import { childUploadId } from '../src/batch/batch-types';
import { UploadClient, UploadFailedError, type UploadHandle } from '../src/client';
import { loadConfig, type WorkerConfig } from '../src/config';
import { createS3Client } from '../src/connections';
import { startEmbeddedStack } from '../src/embedded';
import { TemporalQuotaLedger } from '../src/quota/temporal-ledger';
import type { UploadOutcomeKind } from '../src/upload/outcome';
import type { UploadRequest } from '../src/upload/request';
import { bundleUploadWorkflows, createUploadWorker } from '../src/worker';
import { quotaLedgerWorkflowId } from '../src/workflows/quota-ledger';
import { historyToJson, type History } from '../test/replay/history-json';
import { GATEWAY_UPLOAD_SCENARIOS, type GatewayUploadScenario } from './gateway-upload-histories';
import { startFileServer } from '../test/support/file-server';
import { slowSource } from '../test/support/slow-source';
import { startTcpCounter } from '../test/support/tcp-counter';
import { makeRandomFile, makeTempDir, MiB } from '../test/support/files';
import { standInUploadActivities } from '../test/support/stand-in-upload-activities';
import { startWebhookReceiver, type WebhookReceiver } from '../test/support/webhook-receiver';
import { startWorkerProcess } from '../test/support/worker-process';

const HISTORY_DIR = path.resolve(__dirname, '../test/histories');
const BUCKET = 'uploads';
/** The main worker's queue: it runs the real activities and hosts every tenant's quota ledger. */
const MAIN_QUEUE = 'upload-saga';
/** The recorder's own local receiver; not a secret of anything. */
const WEBHOOK_SECRET = 'history-recorder-webhook-secret';

/** What a scenario gets: the stack's clients, a main worker, and ways to add workers and servers. */
interface Recorder {
  config: WorkerConfig;
  /** Environment that configures a worker process for this stack. */
  env: Record<string, string>;
  client: Client;
  /** Uploads through the main worker. */
  uploads: UploadClient;
  webhooks: WebhookReceiver;
  /** Temp dir for source files (one of the worker's allowed roots). */
  dir: string;
  /** Starts an in-process worker on its own queue with (wrapped) real activities; returns its client. */
  startWorker(
    taskQueue: string,
    activities: (real: UploadActivities) => UploadActivities,
    options?: { sourceDelayMs?: number },
  ): Promise<UploadClient>;
  /** The task queue's batches, once {@link Recorder.startWorker} started a worker on it. */
  batches(taskQueue: string): BatchClient;
  /** Runs `close` at the end, before the stack stops (last registered, first closed). */
  defer(close: () => Promise<unknown>): void;
  /** The quota ledger of the main queue's tenants. */
  ledger: TemporalQuotaLedger;
}

interface Scenario {
  name: string;
  /** How the run must end; anything else is an error, and nothing is written. */
  outcome: Exclude<UploadOutcomeKind, 'running'>;
  /** An activity that must show a retry in the history, so the run really is what the name says. */
  retried?: { activity: keyof UploadActivities; attempts: number };
  /** Starts the upload and drives it (cancel, crash…); the recorder awaits its end. */
  start(r: Recorder): Promise<UploadHandle>;
}

/** An upload of the scenario's name: fixed ids keep re-recorded histories easy to compare. */
function request(scenario: string, overrides: Partial<UploadRequest> & Pick<UploadRequest, 'source'>): UploadRequest {
  return {
    uploadId: scenario,
    tenant: 'acme',
    destination: { bucket: BUCKET, key: `histories/${scenario}.bin` },
    partSize: 5 * MiB,
    ...overrides,
  };
}

const SCENARIOS: Scenario[] = [
  {
    name: 'completed',
    outcome: 'completed',
    async start(r) {
      const file = await makeRandomFile(r.dir, 'completed.bin', 12 * MiB);
      return r.uploads.start(
        request('completed', {
          source: { type: 'file', path: file.path },
          partsPerActivity: 1,
          expectedChecksum: { algorithm: 'SHA256', value: file.sha256 },
          webhookUrl: r.webhooks.url('/completed'),
        }),
      );
    },
  },
  {
    name: 'compensated-after-retries',
    outcome: 'compensated',
    retried: { activity: 'verifyUpload', attempts: 8 },
    async start(r) {
      // verify's policy allows 8 attempts (about 2 minutes); each one fails retryably, so the policy runs out.
      const client = await r.startWorker('record-verify-retries', (real) => ({
        ...real,
        verifyUpload: async () => {
          throw ApplicationFailure.retryable('injected: ListParts keeps timing out', 'VerifyUnavailable');
        },
      }));
      const file = await makeRandomFile(r.dir, 'retries.bin', 6 * MiB);
      return client.start(request('compensated-after-retries', { source: { type: 'file', path: file.path } }));
    },
  },
  {
    name: 'cancelled-mid-upload',
    outcome: 'cancelled',
    async start(r) {
      const client = await r.startWorker('record-slow-source', (real) => real, { sourceDelayMs: 700 });
      const file = await makeRandomFile(r.dir, 'cancelled.bin', 40 * MiB);
      const handle = await client.start(
        request('cancelled-mid-upload', {
          source: { type: 'file', path: file.path },
          partConcurrency: 1,
          webhookUrl: r.webhooks.url('/cancelled'),
        }),
      );
      await waitUntil('a part is uploaded', async () => (await handle.progress()).partsDone > 0);
      await handle.cancel();
      return handle;
    },
  },
  {
    name: 'resumed-after-worker-crash',
    outcome: 'completed',
    retried: { activity: 'uploadParts', attempts: 2 },
    async start(r) {
      // A worker process behind a slow link to MinIO, so the crash surely lands mid-upload.
      const minio = new URL(r.config.s3.endpoint!);
      const relay = await startTcpCounter({ host: minio.hostname, port: Number(minio.port) }, { bytesPerSecond: 8 * MiB });
      r.defer(() => relay.close());
      const env = { ...r.env, TEMPORAL_TASK_QUEUE: 'record-worker-crash', S3_ENDPOINT: relay.url };
      const first = await startWorkerProcess(env);
      r.defer(() => first.kill());
      const client = new UploadClient({ client: r.client, taskQueue: 'record-worker-crash' });
      const file = await makeRandomFile(r.dir, 'crash.bin', 48 * MiB);
      // Its own tenant: the ledger lives on the queue that first served the tenant (this one).
      const handle = await client.start(
        request('resumed-after-worker-crash', { tenant: 'crash', source: { type: 'file', path: file.path }, partConcurrency: 2 }),
      );
      await waitUntil('two parts are uploaded', async () => (await handle.progress()).partsDone >= 2);
      await first.kill('SIGKILL');
      const second = await startWorkerProcess(env);
      r.defer(() => second.kill('SIGTERM'));
      return handle; // upload-parts is retried after its 30 s heartbeat timeout, on the second worker
    },
  },
  {
    name: 'quota-exceeded',
    outcome: 'compensated',
    async start(r) {
      const file = await makeRandomFile(r.dir, 'too-big.bin', 13 * MiB);
      return r.uploads.start(request('quota-exceeded', { tenant: 'tight', source: { type: 'file', path: file.path } }));
    },
  },
  {
    name: 'paused-and-resumed',
    outcome: 'completed',
    async start(r) {
      // Slow reads, one part at a time, all five parts in one batch: the pause lands inside the
      // batch, which stops after its part in flight and runs again after the resume.
      const client = await r.startWorker('record-pause', (real) => real, { sourceDelayMs: 600 });
      const file = await makeRandomFile(r.dir, 'paused.bin', 25 * MiB);
      const handle = await client.start(
        request('paused-and-resumed', {
          tenant: 'pausing',
          source: { type: 'file', path: file.path },
          partConcurrency: 1,
          partsPerActivity: 5,
        }),
      );
      await waitUntil('a part is uploaded', async () => (await handle.progress()).partsDone > 0);
      await handle.pause({ reason: 'recorded pause' });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await handle.resume();
      return handle;
    },
  },
  {
    name: 'quota-wait',
    outcome: 'completed',
    async start(r) {
      // Tenant "waiting" has 8 MiB; a blocker holds 6 MiB until the upload of 6 MiB waits, then is released.
      await r.ledger.reserve({ tenant: 'waiting', uploadId: 'quota-wait-blocker', bytes: 6 * MiB });
      const file = await makeRandomFile(r.dir, 'quota-wait.bin', 6 * MiB);
      const handle = await r.uploads.start(
        request('quota-wait', { tenant: 'waiting', source: { type: 'file', path: file.path }, onQuota: 'wait', quotaWaitMs: 600_000 }),
      );
      await waitUntil('the upload waits for quota', async () => (await handle.progress()).waitingForQuota !== undefined);
      await r.ledger.release({ tenant: 'waiting', uploadId: 'quota-wait-blocker' });
      return handle;
    },
  },
  {
    name: 'ten-thousand-parts',
    outcome: 'completed',
    async start(r) {
      const client = await r.startWorker('record-ten-thousand-parts', () => standInUploadActivities({ size: 10_000 * 5 * MiB }));
      return client.start(request('ten-thousand-parts', { tenant: 'stand-in', source: { type: 'file', path: '/stand-in/50GiB.bin' } }));
    },
  },
  {
    name: 'url-source',
    outcome: 'completed',
    async start(r) {
      const file = await makeRandomFile(r.dir, 'served.bin', 11 * MiB);
      const server = await startFileServer(await readFile(file.path), { ranges: true });
      r.defer(() => server.close());
      return r.uploads.start(request('url-source', { source: { type: 'url', url: server.url }, declaredSize: file.size }));
    },
  },
  {
    name: 's3-object-source',
    outcome: 'completed',
    async start(r) {
      // An object in the worker's own store: its parts are copied server-side (UploadPartCopy), in two batches.
      const s3 = createS3Client(r.config.s3);
      r.defer(async () => s3.destroy());
      const key = 'histories/sources/s3-object-source.bin';
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: randomBytes(40 * MiB) }));
      return r.uploads.start(request('s3-object-source', { source: { type: 's3', bucket: BUCKET, key }, partsPerActivity: 2 }));
    },
  },
  {
    name: 'checksum-mismatch',
    outcome: 'compensated',
    async start(r) {
      const file = await makeRandomFile(r.dir, 'mismatch.bin', 11 * MiB);
      return r.uploads.start(
        request('checksum-mismatch', {
          source: { type: 'file', path: file.path },
          expectedChecksum: { algorithm: 'SHA256', value: '0'.repeat(64) },
          webhookUrl: r.webhooks.url('/failed'),
        }),
      );
    },
  },
  {
    name: 'webhook-rejected',
    outcome: 'completed',
    async start(r) {
      // After the pivot: the object stays and the result says the notification failed.
      r.webhooks.respondWith.set('/gone', 410);
      const file = await makeRandomFile(r.dir, 'unheard.bin', 3 * MiB);
      return r.uploads.start(
        request('webhook-rejected', { source: { type: 'file', path: file.path }, webhookUrl: r.webhooks.url('/gone') }),
      );
    },
  },
  {
    name: 'one-put-completed',
    outcome: 'completed',
    async start(r) {
      // The small-file fast path: one part, stored with one PutObject; every step local, two workflow tasks.
      const file = await makeRandomFile(r.dir, 'one-put.bin', 1 * MiB);
      return r.uploads.start(
        request('one-put-completed', {
          source: { type: 'file', path: file.path },
          expectedChecksum: { algorithm: 'SHA256', value: file.sha256 },
          webhookUrl: r.webhooks.url('/completed'),
        }),
      );
    },
  },
  {
    name: 'one-put-compensated',
    outcome: 'compensated',
    async start(r) {
      // verify-object fails after the PutObject landed: the compensation deletes the object it wrote.
      const client = await r.startWorker('record-one-put-verify-fails', (real) => ({
        ...real,
        verifyObject: async () => {
          throw ApplicationFailure.nonRetryable('injected: the stored object does not match the source', 'ChecksumMismatch');
        },
      }));
      const file = await makeRandomFile(r.dir, 'one-put-refused.bin', 1 * MiB);
      return client.start(
        request('one-put-compensated', { source: { type: 'file', path: file.path }, webhookUrl: r.webhooks.url('/failed') }),
      );
    },
  },
];

/** The quota ledger of one tenant through a few reserves, releases and commits, refusals included. */
async function recordQuotaLedger(r: Recorder): Promise<{ workflowId: string; refused: string[] }> {
  const tenant = 'ledger';
  const ledger = new TemporalQuotaLedger({ client: r.client, taskQueue: MAIN_QUEUE, limits: { defaultBytes: 10 * MiB } });
  const refused = async (type: string, work: Promise<unknown>): Promise<string> => {
    const err = await work.then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof ApplicationFailure) || err.type !== type)
      throw new Error(`the ledger should refuse with ${type}, but ${err ? String(err) : 'it accepted'}`);
    return type;
  };
  await ledger.reserve({ tenant, uploadId: 'a', bytes: 4 * MiB });
  await ledger.reserve({ tenant, uploadId: 'a', bytes: 4 * MiB }); // a retried reserve: already held
  await ledger.reserve({ tenant, uploadId: 'b', bytes: 4 * MiB });
  const overQuota = await refused('QuotaExceeded', ledger.reserve({ tenant, uploadId: 'c', bytes: 4 * MiB }));
  await ledger.release({ tenant, uploadId: 'a' });
  await ledger.commit({ tenant, uploadId: 'b' });
  await ledger.commit({ tenant, uploadId: 'b' }); // a repeated commit: no-op
  await ledger.reserve({ tenant, uploadId: 'c', bytes: 4 * MiB });
  await ledger.release({ tenant, uploadId: 'c' });
  const settled = await refused('ReservationSettled', ledger.reserve({ tenant, uploadId: 'a', bytes: 1 * MiB }));
  // Made in one tick, these leave as one batch each: a reserveBatch update with two reservations
  // (one refused), then one settleReservations signal with a commit and a release.
  const [d, e] = await Promise.allSettled([
    ledger.reserve({ tenant, uploadId: 'd', bytes: 2 * MiB }),
    ledger.reserve({ tenant, uploadId: 'e', bytes: 5 * MiB }),
  ]);
  if (d.status !== 'fulfilled' || e.status !== 'rejected' || (e.reason as ApplicationFailure).type !== 'QuotaExceeded')
    throw new Error('the batch of d and e should grant d and refuse e');
  await Promise.all([ledger.commit({ tenant, uploadId: 'd' }), ledger.release({ tenant, uploadId: 'never-reserved' })]);
  const usage = await ledger.usage(tenant);
  if (usage.usedBytes !== 6 * MiB || usage.reservedBytes !== 0) throw new Error(`unexpected ledger usage ${JSON.stringify(usage)}`);
  return { workflowId: quotaLedgerWorkflowId(tenant), refused: [overQuota, settled] };
}

/** Waits for an upload to end and names how it ended. */
/** An upload, then its delete through the delete saga, which gives the bytes back: the delete's workflow id. */
async function recordDeletedObject(r: Recorder): Promise<string> {
  const file = await makeRandomFile(r.dir, 'deleted-object.bin', 6 * MiB);
  const uploaded = await (await r.uploads.start(request('deleted-object', { source: { type: 'file', path: file.path } }))).result();
  const deleted = await r.uploads.delete({ tenant: 'acme', bucket: uploaded.bucket, key: uploaded.key });
  if (deleted.outcome !== 'deleted' || deleted.quotaFreedBytes !== uploaded.size)
    throw new Error(`the delete should give ${uploaded.size} bytes back, but ended ${JSON.stringify(deleted)}; nothing written`);
  return deleted.workflowId;
}

async function outcomeOf(handle: UploadHandle): Promise<UploadOutcomeKind> {
  try {
    await handle.result();
    return 'completed';
  } catch (err) {
    if (err instanceof UploadFailedError) return err.outcome;
    throw err;
  }
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The highest attempt at which `activity` started in the history. */
function attemptsOf(history: History, activity: string): number {
  const events = history.events ?? [];
  const scheduled = new Set(
    events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activity).map((e) => Number(e.eventId)),
  );
  const started = events
    .flatMap((e) => e.activityTaskStartedEventAttributes ?? [])
    .filter((a) => scheduled.has(Number(a.scheduledEventId)));
  return Math.max(0, ...started.map((a) => a.attempt ?? 1));
}

async function fetchHistory(client: Client, workflowId: string): Promise<History> {
  return client.workflow.getHandle(workflowId).fetchHistory();
}

async function writeHistory(name: string, history: History): Promise<number> {
  await writeFile(path.join(HISTORY_DIR, `${name}.json`), `${historyToJson(history)}\n`);
  return history.events?.length ?? 0;
}

/** A bad command line: reported by its message alone. */
class UsageError extends Error {}

/**
 * A batch of a directory in independent mode, in one run: small files in chunks of 5, a large one
 * through a child upload, and a link out of the roots that fails alone (outcome `partial`).
 */
async function recordBatch(r: Recorder): Promise<string> {
  const dir = path.join(r.dir, 'batch');
  await mkdir(path.join(dir, 'sub'), { recursive: true });
  for (let i = 0; i < 12; i++) await writeFile(path.join(dir, i % 2 ? 'sub' : '', `f${i}.bin`), randomBytes(4096));
  await writeFile(path.join(dir, 'large.bin'), randomBytes(6 * MiB));
  await symlink('/etc/hostname', path.join(dir, 'escape.txt'));
  const batches = new BatchClient({ client: r.client, taskQueue: MAIN_QUEUE });
  const handle = await batches.start({
    batchId: 'batch-partial',
    tenant: 'acme',
    source: { type: 'directory', path: dir },
    destination: { bucket: BUCKET, prefix: 'histories/batch-partial/' },
    partSize: 5 * MiB,
    filesPerChunk: 5,
  });
  const result = await handle.result();
  if (result.outcome !== 'partial' || result.filesFailed !== 1)
    throw new Error(
      `scenario batch-partial ended ${result.outcome} with ${result.filesFailed} failed, expected partial with 1; nothing written`,
    );
  return handle.workflowId;
}

/**
 * An independent batch of three chunks of 5 MiB that runs out of quota at the third (tenant
 * `tight`, 12 MiB): it
 * stops `failed`, lists the third chunk's files as `QuotaExceeded` and deletes the manifests of the
 * two chunks it kept (patches batch-lists-failed-chunk-files, batch-stopped-deletes-manifests).
 */
async function recordBatchStopped(r: Recorder): Promise<string> {
  const dir = path.join(r.dir, 'batch-stopped');
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < 6; i++) await writeFile(path.join(dir, `f${i}.bin`), randomBytes(2.5 * MiB));
  const batches = new BatchClient({ client: r.client, taskQueue: MAIN_QUEUE });
  const handle = await batches.start({
    batchId: 'batch-quota-stopped',
    tenant: 'tight',
    source: { type: 'directory', path: dir },
    destination: { bucket: BUCKET, prefix: 'histories/batch-quota-stopped/' },
    filesPerChunk: 2,
    chunkConcurrency: 1,
  });
  const failure = await handle.result().then(
    () => undefined,
    (err: unknown) => err,
  );
  const summary = (failure as { type?: string; summary?: { filesFailed: number } } | undefined) ?? {};
  if (summary.type !== 'QuotaExceeded' || summary.summary?.filesFailed !== 2)
    throw new Error(`scenario batch-quota-stopped ended ${String(failure)}, expected QuotaExceeded with 2 files listed; nothing written`);
  return handle.workflowId;
}

/**
 * A batch paused and resumed, in one run: slow reads, chunks of 3 one at a time and a large file
 * (8 parts) through a child upload. The pause lands while a chunk and the child's first parts are in flight: the batch
 * signals the child to pause, lets the chunk finish, holds, and on resume signals the child again.
 */
async function recordPausedBatch(r: Recorder): Promise<string> {
  const dir = path.join(r.dir, 'batch-paused');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'a-large.bin'), randomBytes(40 * MiB));
  for (let i = 0; i < 9; i++) await writeFile(path.join(dir, `f${i}.bin`), randomBytes(4096));
  const uploads = await r.startWorker('record-batch-pause', (real) => real, { sourceDelayMs: 1500 });
  const handle = await r.batches('record-batch-pause').start({
    batchId: 'batch-paused',
    tenant: 'pausing',
    source: { type: 'directory', path: dir },
    destination: { bucket: BUCKET, prefix: 'histories/batch-paused/' },
    partSize: 5 * MiB,
    filesPerChunk: 3,
    fileConcurrency: 1,
    chunkConcurrency: 2,
  });
  // Pause while the child's first parts are in flight: it is told to pause and holds after them.
  const child = uploads.getHandle('pausing', childUploadId('batch-paused', 0));
  await waitUntil('the child uploads parts', async () => (await child.progress().catch(() => undefined))?.phase === 'upload-parts');
  await handle.pause({ reason: 'recorded pause' });
  await waitUntil('the child holds', async () => (await child.pauseState()).held);
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  await handle.resume();
  const result = await handle.result();
  if (result.outcome !== 'completed' || result.filesDone !== 10)
    throw new Error(
      `scenario batch-paused ended ${result.outcome} with ${result.filesDone} files, expected completed with 10; nothing written`,
    );
  return handle.workflowId;
}

/**
 * A migration within the bucket, in one run: 12 objects in chunks of 5, 3 of them already at the
 * destination (skipped), the others copied server-side.
 */
async function recordMigration(r: Recorder, s3: S3Client): Promise<string> {
  const from = 'histories/migration-src/';
  const to = 'histories/migration-dst/';
  for (let i = 0; i < 12; i++) {
    const body = randomBytes(4096);
    const name = `o${String(i).padStart(2, '0')}.bin`;
    await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: `${from}${name}`, Body: body, ContentType: 'text/plain', Metadata: { n: String(i) } }),
    );
    if (i % 4 === 0) await s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: `${to}${name}`, CopySource: `${BUCKET}/${from}${name}` }));
  }
  const handle = await new BatchClient({ client: r.client, taskQueue: MAIN_QUEUE }).migrate({
    migrationId: 'migration-completed',
    tenant: 'acme',
    source: { bucket: BUCKET, prefix: from },
    destination: { bucket: BUCKET, prefix: to },
    objectsPerChunk: 5,
  });
  const result = await handle.result();
  if (result.outcome !== 'completed' || result.objectsCopied !== 9 || result.objectsSkipped !== 3)
    throw new Error(
      `scenario migration-completed ended ${result.outcome} with ${result.objectsCopied} copied and ${result.objectsSkipped} skipped, expected 9 and 3; nothing written`,
    );
  return handle.workflowId;
}

function selectScenarios(names: string[]): {
  uploads: Scenario[];
  ledger: boolean;
  batch: boolean;
  batchStopped: boolean;
  pausedBatch: boolean;
  migration: boolean;
  deletedObject: boolean;
  gatewayUploads: GatewayUploadScenario[];
} {
  const known = [
    ...SCENARIOS.map((s) => s.name),
    'quota-ledger',
    'batch-partial',
    'batch-quota-stopped',
    'batch-paused',
    'migration-completed',
    'deleted-object',
    ...GATEWAY_UPLOAD_SCENARIOS.map((s) => s.name),
  ];
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) throw new UsageError(`unknown scenario ${unknown.join(', ')}; known: ${known.join(', ')}`);
  const wanted = (name: string) => names.length === 0 || names.includes(name);
  return {
    uploads: SCENARIOS.filter((s) => wanted(s.name)),
    ledger: wanted('quota-ledger'),
    batch: wanted('batch-partial'),
    batchStopped: wanted('batch-quota-stopped'),
    pausedBatch: wanted('batch-paused'),
    migration: wanted('migration-completed'),
    deletedObject: wanted('deleted-object'),
    gatewayUploads: GATEWAY_UPLOAD_SCENARIOS.filter((s) => wanted(s.name)),
  };
}

async function main(names: string[]): Promise<void> {
  const selected = selectScenarios(names);
  try {
    // Scenarios fail activities on purpose; the SDK would log each failure with its stack.
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // a runtime exists already
  }
  const closers: (() => Promise<unknown>)[] = [];
  const defer = (close: () => Promise<unknown>) => void closers.push(close);
  try {
    const started = Date.now();
    process.stdout.write('starting Temporal + MinIO and bundling the workflows…\n');
    const stack = await startEmbeddedStack({ buckets: [BUCKET] });
    defer(() => stack.stop());
    const tmp = await makeTempDir('upload-saga-histories-');
    defer(() => tmp.remove());
    const env = {
      TEMPORAL_ADDRESS: stack.temporal.address,
      TEMPORAL_NAMESPACE: stack.temporal.namespace,
      TEMPORAL_TASK_QUEUE: MAIN_QUEUE,
      S3_ENDPOINT: stack.s3.endpoint,
      S3_REGION: stack.s3.region,
      S3_ACCESS_KEY_ID: stack.s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
      UPLOAD_SAGA_ALLOWED_ROOTS: tmp.dir,
      UPLOAD_SAGA_QUOTAS: 'tight=12MiB,waiting=8MiB',
      UPLOAD_SAGA_WEBHOOK_SECRET: WEBHOOK_SECRET,
      // The scenarios' file server and webhook receiver listen on loopback, refused by default.
      UPLOAD_SAGA_URL_ALLOWED_HOSTS: '127.0.0.0/8',
      UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS: '127.0.0.0/8',
    };
    const config = loadConfig(env);
    const connection = await Connection.connect({ address: config.temporal.address });
    defer(() => connection.close());
    const workerConnection = await NativeConnection.connect({ address: config.temporal.address });
    defer(() => workerConnection.close());
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const s3 = createS3Client(config.s3);
    defer(async () => s3.destroy());
    const webhooks = await startWebhookReceiver();
    defer(() => webhooks.close());
    const bundle: WorkflowBundleWithSourceMap = await bundleUploadWorkflows();
    const ledger = new TemporalQuotaLedger({ client, taskQueue: MAIN_QUEUE, limits: config.quota });

    const run = (worker: Worker) => {
      const running = worker.run();
      defer(async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await running;
      });
    };
    run(await createUploadWorker({ config, connection: workerConnection, client, s3, workflowBundle: bundle }));

    const recorder: Recorder = {
      config,
      env,
      client,
      uploads: new UploadClient({ client, taskQueue: MAIN_QUEUE }),
      webhooks,
      dir: tmp.dir,
      defer,
      ledger,
      async startWorker(taskQueue, activities, options = {}) {
        const files: SourceResolver = new LocalFileResolver({ allowedRoots: config.allowedRoots });
        const real = createActivities({
          s3,
          sources: new SourceRegistry({
            file: options.sourceDelayMs ? slowSource(files, options.sourceDelayMs) : files,
            url: new HttpUrlResolver({ allowedHosts: config.urlSources.allowedHosts }),
          }),
          quota: ledger,
          webhook: config.webhook,
          pauses: workflowPauseProbe(client, 500),
          allowedRoots: config.allowedRoots,
        });
        const queueConfig = { ...config, temporal: { ...config.temporal, taskQueue } };
        run(
          await createUploadWorker({
            config: queueConfig,
            connection: workerConnection,
            client,
            s3,
            workflowBundle: bundle,
            activities: activities(real),
          }),
        );
        return new UploadClient({ client, taskQueue });
      },
      batches: (taskQueue) => new BatchClient({ client, taskQueue }),
    };
    process.stdout.write(`ready in ${seconds(started)}; recording into ${path.relative(process.cwd(), HISTORY_DIR)}/\n`);

    await mkdir(HISTORY_DIR, { recursive: true });
    const written = new Set<string>();
    for (const scenario of selected.uploads) {
      const t0 = Date.now();
      const handle = await scenario.start(recorder);
      const outcome = await outcomeOf(handle);
      if (outcome !== scenario.outcome)
        throw new Error(`scenario ${scenario.name} ended ${outcome}, expected ${scenario.outcome}; nothing written`);
      const history = await fetchHistory(client, handle.workflowId);
      const retried = scenario.retried;
      if (retried && attemptsOf(history, retried.activity) < retried.attempts) {
        throw new Error(
          `scenario ${scenario.name}: ${retried.activity} ran ${attemptsOf(history, retried.activity)} attempt(s), expected ${retried.attempts}; nothing written`,
        );
      }
      const events = await writeHistory(scenario.name, history);
      written.add(`${scenario.name}.json`);
      process.stdout.write(
        `${scenario.name.padEnd(28)} ${outcome.padEnd(12)} ${String(events).padStart(4)} events  ${seconds(t0).padStart(6)}\n`,
      );
    }
    if (selected.ledger) {
      const t0 = Date.now();
      const { workflowId, refused } = await recordQuotaLedger(recorder);
      const events = await writeHistory('quota-ledger', await fetchHistory(client, workflowId));
      written.add('quota-ledger.json');
      process.stdout.write(
        `${'quota-ledger'.padEnd(28)} ${'running'.padEnd(12)} ${String(events).padStart(4)} events  ${seconds(t0).padStart(6)}  (refused: ${refused.join(', ')})\n`,
      );
    }
    if (selected.batchStopped) {
      const t0 = Date.now();
      const events = await writeHistory('batch-quota-stopped', await fetchHistory(client, await recordBatchStopped(recorder)));
      written.add('batch-quota-stopped.json');
      process.stdout.write(
        `${'batch-quota-stopped'.padEnd(28)} ${'failed'.padEnd(12)} ${String(events).padStart(4)} events  ${seconds(t0).padStart(6)}\n`,
      );
    }
    if (selected.batch) {
      const t0 = Date.now();
      const events = await writeHistory('batch-partial', await fetchHistory(client, await recordBatch(recorder)));
      written.add('batch-partial.json');
      process.stdout.write(
        `${'batch-partial'.padEnd(28)} ${'partial'.padEnd(12)} ${String(events).padStart(4)} events  ${seconds(t0).padStart(6)}\n`,
      );
    }
    if (selected.pausedBatch) {
      const t0 = Date.now();
      const events = await writeHistory('batch-paused', await fetchHistory(client, await recordPausedBatch(recorder)));
      written.add('batch-paused.json');
      process.stdout.write(
        `${'batch-paused'.padEnd(28)} ${'completed'.padEnd(12)} ${String(events).padStart(4)} events  ${seconds(t0).padStart(6)}\n`,
      );
    }
    if (selected.migration) {
      const t0 = Date.now();
      const events = await writeHistory('migration-completed', await fetchHistory(client, await recordMigration(recorder, s3)));
      written.add('migration-completed.json');
      process.stdout.write(
        `${'migration-completed'.padEnd(28)} ${'completed'.padEnd(12)} ${String(events).padStart(4)} events  ${seconds(t0).padStart(6)}\n`,
      );
    }
    if (selected.deletedObject) {
      const t0 = Date.now();
      const workflowId = await recordDeletedObject(recorder);
      const events = await writeHistory('deleted-object', await fetchHistory(client, workflowId));
      written.add('deleted-object.json');
      process.stdout.write(
        `${'deleted-object'.padEnd(28)} ${'completed'.padEnd(12)} ${String(events).padStart(4)} events  ${seconds(t0).padStart(6)}\n`,
      );
    }
    for (const scenario of selected.gatewayUploads) {
      // Gateway uploads through an in-process HTTP gateway on the main queue (scripts/gateway-upload-histories.ts).
      const t0 = Date.now();
      const workflowId = await scenario.run({ client, s3, taskQueue: MAIN_QUEUE, webhookUrl: webhooks.url('/client') });
      // A finishing PATCH answers once the object is merged: the saga may still run its last steps.
      const handle = client.workflow.getHandle(workflowId);
      await client.withDeadline(Date.now() + 60_000, () => handle.result()).catch(() => undefined);
      const state = await handle.query<{ outcome: string }>(WIRE_NAMES.gatewayUploadStateQuery);
      if (state.outcome !== scenario.outcome)
        throw new Error(`scenario ${scenario.name} ended ${state.outcome}, expected ${scenario.outcome}; nothing written`);
      const events = await writeHistory(scenario.name, await fetchHistory(client, workflowId));
      written.add(`${scenario.name}.json`);
      process.stdout.write(
        `${scenario.name.padEnd(28)} ${state.outcome.padEnd(12)} ${String(events).padStart(4)} events  ${seconds(t0).padStart(6)}\n`,
      );
    }
    const others = (await readdir(HISTORY_DIR)).filter((f) => f.endsWith('.json') && !written.has(f));
    if (others.length) process.stdout.write(`left as they were: ${others.join(', ')}\n`);
  } finally {
    for (const close of closers.reverse()) {
      await close().catch((err: unknown) => process.stderr.write(`cleanup: ${err instanceof Error ? err.message : String(err)}\n`));
    }
  }
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`${err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
