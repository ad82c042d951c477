/**
 * The fault-injection suite's framework: what a scenario is, and the context it runs in.
 *
 * HOW TO ADD A SCENARIO
 * 1. Create `test/faults/scenarios/NN-short-name.ts` (NN: the issue's scenario number, two digits;
 *    scenarios beyond the issue's list take the next free number). Export either
 *    `export const scenario: FaultScenario = { name, proves, run }` or `export const scenarios: FaultScenario[]`.
 *    `name` is kebab-case; the runner prints `✓ NN name (12.3 s)`.
 * 2. `run(ctx)` gets servers of its own, started fresh for it and torn down after it (a Temporal
 *    dev server with SQLite persistence — or the real server on PostgreSQL, with `temporal:
 *    'postgres'` in the scenario or UPLOAD_SAGA_TEST_TEMPORAL=postgres for the run — and a MinIO
 *    with bucket `ctx.bucket`): it may stop, kill
 *    and start them (`ctx.temporal`, `ctx.minio`; same ports, same data dir). Workers are real
 *    processes: `await ctx.startWorker({ env })` — `env` overrides the worker's environment, e.g.
 *    `{ S3_ENDPOINT: proxy.url }` to put a fault proxy between the worker and MinIO (`ctx.minio.endpoint`).
 *    No worker runs unless the scenario starts one.
 * 3. Start uploads with `ctx.startUpload({ file, request })` (`ctx.makeFile(size)` makes a random
 *    source file; the request defaults to the scenario's tenant, bucket, a unique key and upload
 *    id, and `ctx.webhook.url()`). EVERY upload started that way gets the invariants of
 *    `invariants.ts` asserted after `run` returns: byte-identical or absent, no multipart upload
 *    left for the key, no staged object, the reservation committed or released exactly once (and
 *    the tenant's ledger adds up), the webhook event delivered and de-duplicable. Assert what the
 *    scenario expects on top with `await ctx.assertInvariants(upload, { outcome: 'compensated',
 *    causeType: 'S3.AccessDenied' })` — that also marks the upload as checked. An upload started
 *    some other way (the CLI, a gateway) is registered with `ctx.trackUpload(...)`.
 * 4. Fail by throwing (node:assert/strict is fine). `ctx.log()` goes to the scenario's log file,
 *    which the runner names when the scenario fails; `ctx.summary()` adds a short note to the
 *    scenario's result line (measured figures).
 * 5. Clean-up of anything the scenario starts itself (proxies, servers): `ctx.defer(fn)`. A
 *    counting, optionally throttled relay in front of MinIO is `ctx.s3Relay({ bytesPerSecond })`
 *    (closed by the runner; start workers with `env: { S3_ENDPOINT: relay.url }`).
 *    Workers, the webhook sink, the servers and temp files are cleaned up by the runner.
 *    Batches: `ctx.makeBatchDir(sizes)` writes a directory of random files, `ctx.startBatch({ dir })`
 *    starts a directory batch over it (tenant, bucket, a unique batch id and prefix by default);
 *    EVERY batch started that way gets the invariants of `batch-invariants.ts` asserted after `run`
 *    (each stored object byte-identical to its file as it was at the start, what is stored
 *    following from the outcome, no manifest or multipart upload left, the ledger balanced);
 *    `await ctx.assertBatchInvariants(batch, { outcome: 'partial', failures: { [key]: 'SourceChanged' } })`
 *    adds the expectation.
 * 6. Scenarios run two at once by default (`--jobs`): set `exclusive: true` if yours needs the
 *    machine to itself (many processes, or speeds compared with an unfaulted run).
 * Run: `npm run test:faults` (all) or `npm run test:faults -- 03 cancel` (ids or name parts).
 *
 * Why it is built this way: each scenario breaks something for real — kills a server, a worker,
 * the network — so the cheapest reliable isolation is fresh servers per scenario (about 5 s each)
 * rather than repairing shared ones. Workers run as child processes so that a SIGKILL is a real
 * crash. The invariants are checked by the runner for every tracked upload, so a scenario cannot
 * forget them.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { BatchClient } from '../../src/batch-client';
import type { BatchRequest } from '../../src/batch/batch-types';
import { UploadClient, type UploadHandle } from '../../src/client';
import { s3ClientConfig, startEmbeddedStack, type EmbeddedStack, type EmbeddedTemporalKind } from '../../src/embedded';
import type { UploadRequest } from '../../src/upload/request';
import { uploadWorkflowId } from '../../src/upload/request';
import { siblingModule } from '../../src/module-path';
import { makeRandomFile, type TestFile } from '../support/files';
import { startTcpCounterFor, type TcpCounter, type TcpCounterOptions } from '../support/tcp-counter';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { testTemporalKind } from '../support/test-temporal';
import { startWebhookSink, type WebhookSink } from './webhook-sink';
import type { InvariantExpectation, InvariantReport } from './invariants';
import type { BatchExpectation, BatchInvariantReport, BatchSourceFile, TrackedBatch } from './batch-invariants';

/** A directory of random files made by {@link FaultContext.makeBatchDir}. */
export interface BatchDir {
  readonly dir: string;
  /** Its files in listing order (`f0000.bin`, `f0001.bin`, …), with their relative names. */
  readonly files: readonly (TestFile & { readonly name: string })[];
}

/** Options of {@link FaultContext.startBatch}. */
export interface StartBatchOptions {
  /** The source directory (its files are what the objects must match). */
  readonly dir: BatchDir;
  /** Overrides of the request (mode, tenant, chunk sizes, …); the source is the directory. */
  readonly request?: Partial<Omit<BatchRequest, 'source'>>;
}

/** One fault scenario. */
export interface FaultScenario {
  /** kebab-case, unique; printed after the file's number: `03 minio-outage-30s`. */
  readonly name: string;
  /** One sentence: what the scenario proves (listed by `npm run test:faults -- --list`). */
  readonly proves: string;
  /**
   * The runner fails the scenario after this long.
   * @default 360_000 (6 minutes)
   */
  readonly timeoutMs?: number;
  /**
   * The Temporal server the scenario needs, whatever UPLOAD_SAGA_TEST_TEMPORAL says: `postgres` for
   * a scenario about the server a cluster runs (the real server on PostgreSQL).
   * @default the run's choice: UPLOAD_SAGA_TEST_TEMPORAL, else the dev server
   */
  readonly temporal?: EmbeddedTemporalKind;
  /**
   * Run alone, not beside another scenario (the runner runs two at once by default): for a
   * scenario that needs the machine's CPU to itself, many processes or figures compared with an
   * unfaulted run.
   * @default false
   */
  readonly exclusive?: boolean;
  run(ctx: FaultContext): Promise<void>;
}

/** A server the scenario may take away and bring back. */
export interface ControllableServer {
  /** `false` between a stop/kill and the next start. */
  readonly running: boolean;
  /** Process id of the current server process. */
  readonly pid: number;
  /** The server's log file (appended across restarts). */
  readonly logFile: string;
  /** Graceful stop: SIGTERM, then SIGKILL after a grace period; resolves once it has exited. */
  stop(): Promise<void>;
  /** Sends `signal` (default SIGKILL: a crash) and resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports with the same data directory; resolves once it is ready. */
  start(): Promise<void>;
}

/** The scenario's Temporal server (the dev server, or the real server on PostgreSQL). */
export interface FaultTemporal extends ControllableServer {
  /** Which server: `dev-server` (SQLite) or `postgres` (the real server on PostgreSQL). */
  readonly kind: EmbeddedTemporalKind;
  readonly address: string;
  readonly namespace: string;
  /** The Web UI, if the server has one (the dev server; not the server on PostgreSQL). */
  readonly uiUrl: string | undefined;
}

/** The scenario's MinIO. */
export interface FaultMinio extends ControllableServer {
  /** MinIO's own S3 endpoint (workers use it unless told otherwise). */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** A worker process started by {@link FaultContext.startWorker}. */
export interface FaultWorker {
  readonly label: string;
  readonly pid: number;
  /** `false` once the process has exited. */
  readonly running: boolean;
  /** The environment it was started with (overrides included). */
  readonly env: Readonly<Record<string, string>>;
  /** Everything it wrote to stdout and stderr. */
  output(): string;
  /** Sends `signal` (default SIGKILL) and resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** An upload started (or registered) by the scenario; the runner asserts its invariants. */
export interface TrackedUpload {
  readonly tenant: string;
  readonly uploadId: string;
  readonly workflowId: string;
  readonly bucket: string;
  readonly key: string;
  /** What the object must equal if it exists: the source as it was when the upload started. */
  readonly source: { readonly size: number; readonly sha256: string };
  /** The webhook URL of the request, if any. */
  readonly webhookUrl?: string;
  readonly handle: UploadHandle;
  /** Set once its invariants were asserted. */
  checked: boolean;
}

/** Options of {@link FaultContext.startUpload}. */
export interface StartUploadOptions {
  /** The source file; its size and SHA-256 are what the object must match. */
  readonly file: TestFile;
  /** Overrides of the request (tenant, key, part size, …). */
  readonly request?: Partial<UploadRequest>;
  /**
   * Add `webhookUrl: ctx.webhook.url()` to the request.
   * @default true
   */
  readonly webhook?: boolean;
}

/** Options of {@link FaultContext.waitFor}. */
export interface WaitOptions {
  /** @default 60_000 */
  readonly timeoutMs?: number;
  /** @default 250 */
  readonly intervalMs?: number;
}

/** What a scenario gets. */
export interface FaultContext {
  /** `NN name`. */
  readonly name: string;
  readonly temporal: FaultTemporal;
  readonly minio: FaultMinio;
  /** Temporal client (reconnects by itself after a server restart). */
  readonly client: Client;
  /** Upload client on {@link FaultContext.taskQueue}. */
  readonly uploads: UploadClient;
  /** S3 client with MinIO's root credentials, straight to MinIO (no proxy), for setup and checks. */
  readonly s3: S3Client;
  /** A bucket created for the scenario. */
  readonly bucket: string;
  /** The task queue workers started by {@link FaultContext.startWorker} poll. */
  readonly taskQueue: string;
  /** A tenant of this scenario alone (its ledger starts empty). */
  readonly tenant: string;
  /** The webhook secret workers sign with (the invariants check signatures). */
  readonly webhookSecret: string;
  /** A webhook receiver that can be taken down and brought back on the same URL. */
  readonly webhook: WebhookSink;
  /** A temp directory for source files, inside the workers' allowed roots. */
  readonly tmpDir: string;
  /** Worker processes started so far (running or not). */
  readonly workers: readonly FaultWorker[];
  /** Uploads the runner will check. */
  readonly tracked: readonly TrackedUpload[];
  /** Batch client on {@link FaultContext.taskQueue}. */
  readonly batches: BatchClient;
  /** Batches the runner will check. */
  readonly trackedBatches: readonly TrackedBatch[];
  /** A directory in {@link FaultContext.tmpDir} with one random file of each size in `sizes`. */
  makeBatchDir(sizes: readonly number[]): Promise<BatchDir>;
  /** Starts a directory batch and tracks it. */
  startBatch(options: StartBatchOptions): Promise<TrackedBatch>;
  /** Waits for the batch to end, then asserts every batch invariant plus `expectation`; marks it checked. */
  assertBatchInvariants(batch: TrackedBatch, expectation?: BatchExpectation): Promise<BatchInvariantReport>;
  /**
   * The environment a worker gets: this scenario's servers and queue, `tmpDir` as allowed root, the
   * webhook secret, loopback allowed for webhooks and URL sources; plus `overrides`.
   */
  workerEnv(overrides?: Record<string, string>): Record<string, string>;
  /** Starts a worker process (real `src/worker.ts`) and waits until it polls. */
  startWorker(options?: { env?: Record<string, string>; label?: string }): Promise<FaultWorker>;
  /** A file of random bytes in {@link FaultContext.tmpDir}. */
  makeFile(size: number, name?: string): Promise<TestFile>;
  /** `prefix-<8 hex>`. */
  uniqueId(prefix?: string): string;
  /** Starts an upload and tracks it. */
  startUpload(options: StartUploadOptions): Promise<TrackedUpload>;
  /** Registers an upload started some other way, so that its invariants are checked. */
  trackUpload(upload: Omit<TrackedUpload, 'handle' | 'checked' | 'workflowId'>): TrackedUpload;
  /** Waits for the upload to end, then asserts every invariant plus `expectation`; marks it checked. */
  assertInvariants(upload: TrackedUpload, expectation?: InvariantExpectation): Promise<InvariantReport>;
  /** Polls `probe` until it returns something other than `undefined`/`false`; throws after the timeout naming `what`. */
  waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, options?: WaitOptions): Promise<T>;
  sleep(ms: number): Promise<void>;
  /** A line in the scenario's log file. */
  log(message: string): void;
  /** A short note for the result line (e.g. a measured figure). */
  summary(note: string): void;
  /** Runs `cleanup` after the scenario (last registered, first run), whatever happened. */
  defer(cleanup: () => Promise<unknown> | unknown): void;
  /**
   * A TCP relay in front of this scenario's MinIO that counts the bytes sent through it and, with
   * `bytesPerSecond`, throttles each connection (to make an upload last long enough to act in
   * the middle of it). Closed after the scenario; it survives MinIO restarts (same port).
   */
  s3Relay(options?: TcpCounterOptions): Promise<TcpCounter>;
}

/** The runner's side of a context. */
export interface FaultContextHandle {
  readonly ctx: FaultContext;
  readonly logFile: string;
  readonly notes: readonly string[];
  /** The stack's data directory (server logs, SQLite, objects). */
  readonly dataDir: string;
  /** Stops everything the scenario started; keeps the data directory when `keep`. */
  dispose(options?: { keep?: boolean }): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Wraps an embedded-stack server handle (MinIO or the dev server, both with `restart()`), plus `facts`. */
function controllable<F extends object>(
  server: {
    readonly pid: number;
    readonly logFile: string;
    readonly exited: Promise<unknown>;
    stop(): Promise<void>;
    kill(signal?: NodeJS.Signals): boolean;
    restart(): Promise<void>;
  },
  facts: F,
): ControllableServer & F {
  let running = true;
  const watch = () => {
    const pid = server.pid;
    void server.exited.then(() => {
      if (server.pid === pid) running = false;
    });
  };
  watch();
  return {
    ...facts,
    get running() {
      return running;
    },
    get pid() {
      return server.pid;
    },
    logFile: server.logFile,
    async stop() {
      await server.stop();
      running = false;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      server.kill(signal);
      await server.exited;
      running = false;
    },
    async start() {
      await server.restart();
      running = true;
      watch();
    },
  };
}

/**
 * Starts fresh servers and everything else a scenario gets. Called by the runner, once per
 * scenario; `logDir` receives the scenario's log file.
 */
export async function createFaultContext(options: {
  name: string;
  logDir: string;
  /** A pre-built workflow bundle for the worker processes (see bundled-worker.ts). @default each worker bundles */
  workflowBundlePath?: string;
  /** @default UPLOAD_SAGA_TEST_TEMPORAL, else the dev server */
  temporal?: EmbeddedTemporalKind;
}): Promise<FaultContextHandle> {
  const slug = options.name.replace(/[^a-z0-9-]+/gi, '-');
  const logFile = path.join(options.logDir, `${slug}.log`);
  await fsp.mkdir(options.logDir, { recursive: true });
  const logStream = fs.createWriteStream(logFile, { flags: 'w' });
  const started = Date.now();
  const log = (message: string) => logStream.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}\n`);
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const notes: string[] = [];

  const tmpDir = await fsp.mkdtemp(path.join(os.tmpdir(), `upload-saga-faults-${slug.slice(0, 20)}-`));
  const bucket = 'uploads';
  let stack: EmbeddedStack;
  try {
    // The data dir is ours and removed at the end, so a PostgreSQL-backed run's
    // (UPLOAD_SAGA_TEST_TEMPORAL=postgres) databases are dropped with the stack.
    stack = await startEmbeddedStack({
      buckets: [bucket],
      dataDir: path.join(tmpDir, 'stack'),
      temporal: options.temporal ?? testTemporalKind(),
      keepDatabases: false,
    });
  } catch (error) {
    await fsp.rm(tmpDir, { recursive: true, force: true });
    logStream.end();
    throw error;
  }
  log(
    `servers: temporal ${stack.temporal.kind} ${stack.temporal.address} (ui ${stack.temporal.uiUrl ?? 'none'}), minio ${stack.s3.endpoint}, data ${stack.dataDir}`,
  );

  const connection = await Connection.connect({ address: stack.temporal.address });
  const client = new Client({ connection, namespace: stack.temporal.namespace });
  const taskQueue = `faults-${randomUUID().slice(0, 8)}`;
  const uploads = new UploadClient({ client, taskQueue });
  const s3 = new S3Client(s3ClientConfig(stack.s3));
  const webhook = await startWebhookSink();
  const webhookSecret = `fault-suite-secret-${randomUUID()}`;
  const tenant = `t-${slug.slice(0, 40)}-${randomUUID().slice(0, 6)}`.replace(/-+/g, '-').slice(0, 63);
  const workers: (FaultWorker & { process: WorkerProcess })[] = [];
  const tracked: TrackedUpload[] = [];
  const batches = new BatchClient({ client, taskQueue });
  const trackedBatches: TrackedBatch[] = [];

  const temporal: FaultTemporal = controllable(stack.temporal, {
    kind: stack.temporal.kind,
    address: stack.temporal.address,
    namespace: stack.temporal.namespace,
    uiUrl: stack.temporal.uiUrl,
  });
  const minio: FaultMinio = controllable(stack.s3, {
    endpoint: stack.s3.endpoint,
    region: stack.s3.region,
    accessKeyId: stack.s3.accessKeyId,
    secretAccessKey: stack.s3.secretAccessKey,
  });

  const uniqueId = (prefix = 'id') => `${prefix}-${randomUUID().slice(0, 8)}`;

  const workerEnv = (overrides: Record<string, string> = {}): Record<string, string> => ({
    TEMPORAL_ADDRESS: stack.temporal.address,
    TEMPORAL_NAMESPACE: stack.temporal.namespace,
    TEMPORAL_TASK_QUEUE: taskQueue,
    S3_ENDPOINT: stack.s3.endpoint,
    S3_REGION: stack.s3.region,
    S3_ACCESS_KEY_ID: stack.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
    UPLOAD_SAGA_ALLOWED_ROOTS: tmpDir,
    UPLOAD_SAGA_WEBHOOK_SECRET: webhookSecret,
    // The webhook sink, file servers and relays of the scenarios listen on loopback.
    UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    UPLOAD_SAGA_URL_ALLOWED_HOSTS: '127.0.0.1',
    ...overrides,
  });

  // Imported lazily: invariants.ts imports this module's types.
  const { assertUploadInvariants } = await import('./invariants');
  const { assertBatchInvariants } = await import('./batch-invariants');

  const ctx: FaultContext = {
    name: options.name,
    temporal,
    minio,
    client,
    uploads,
    s3,
    bucket,
    taskQueue,
    tenant,
    webhookSecret,
    webhook,
    tmpDir,
    workers,
    tracked,
    batches,
    trackedBatches,
    workerEnv,
    async startWorker(workerOptions = {}) {
      const env = workerEnv(workerOptions.env);
      const label = workerOptions.label ?? `worker-${workers.length + 1}`;
      const startedAt = Date.now();
      const process = options.workflowBundlePath
        ? await startWorkerProcess(
            { ...env, FAULTS_WORKFLOW_BUNDLE: options.workflowBundlePath },
            { entry: siblingModule(__dirname, './bundled-worker') },
          )
        : await startWorkerProcess(env);
      const pid = process.child.pid ?? -1;
      log(
        `${label} (pid ${pid}) polling ${env.TEMPORAL_TASK_QUEUE} after ${((Date.now() - startedAt) / 1000).toFixed(1)} s${workerOptions.env ? ` with ${Object.keys(workerOptions.env).join(', ')} overridden` : ''}`,
      );
      const worker = {
        label,
        pid,
        env,
        process,
        get running() {
          return process.child.exitCode === null && process.child.signalCode === null;
        },
        output: () => process.output(),
        async kill(signal: NodeJS.Signals = 'SIGKILL') {
          log(`${label} (pid ${pid}): ${signal}`);
          await process.kill(signal);
        },
      };
      workers.push(worker);
      return worker;
    },
    async makeBatchDir(sizes) {
      const dir = await fsp.mkdtemp(path.join(tmpDir, 'batch-'));
      const files: BatchDir['files'][number][] = [];
      for (const [i, size] of sizes.entries()) {
        const name = `f${String(i).padStart(4, '0')}.bin`;
        files.push({ ...(await makeRandomFile(dir, name, size)), name });
      }
      return { dir, files };
    },
    async startBatch({ dir, request = {} }) {
      const batchId = request.batchId ?? uniqueId('batch');
      const full: BatchRequest = {
        batchId,
        tenant,
        destination: { bucket, prefix: `batches/${batchId}/` },
        ...request,
        source: { type: 'directory', path: dir.dir },
      };
      const handle = await batches.start(full);
      const files: BatchSourceFile[] = dir.files.map((f) => ({
        path: f.path,
        key: `${full.destination.prefix}${f.name}`,
        size: f.size,
        sha256: f.sha256,
      }));
      const batch: TrackedBatch = {
        tenant: full.tenant,
        batchId,
        workflowId: handle.workflowId,
        bucket: full.destination.bucket,
        prefix: full.destination.prefix,
        mode: full.mode ?? 'independent',
        files,
        handle,
        checked: false,
      };
      trackedBatches.push(batch);
      log(`batch ${batch.workflowId} started (${batch.mode}): ${files.length} files → s3://${batch.bucket}/${batch.prefix}`);
      return batch;
    },
    async assertBatchInvariants(batch, expectation = {}) {
      const report = await assertBatchInvariants(ctx, batch, expectation);
      batch.checked = true;
      log(
        `invariants hold for ${batch.workflowId}: ${report.settled.outcome}, ${report.stored.length} of ${batch.files.length} files stored, ${report.failures.length} listed failures`,
      );
      return report;
    },
    makeFile: (size, name) => makeRandomFile(tmpDir, name ?? `${uniqueId('src')}.bin`, size),
    uniqueId,
    async startUpload({ file, request = {}, webhook: withWebhook = true }) {
      const full: UploadRequest = {
        uploadId: uniqueId('up'),
        tenant,
        source: { type: 'file', path: file.path },
        destination: { bucket, key: `faults/${uniqueId('obj')}.bin` },
        ...(withWebhook ? { webhookUrl: webhook.url() } : {}),
        ...request,
      };
      const handle = await uploads.start(full);
      const upload: TrackedUpload = {
        tenant: full.tenant,
        uploadId: full.uploadId,
        workflowId: handle.workflowId,
        bucket: full.destination.bucket,
        key: full.destination.key,
        source: { size: file.size, sha256: file.sha256 },
        ...(full.webhookUrl ? { webhookUrl: full.webhookUrl } : {}),
        handle,
        checked: false,
      };
      tracked.push(upload);
      log(`upload ${upload.workflowId} started: ${file.size} bytes → s3://${upload.bucket}/${upload.key}`);
      return upload;
    },
    trackUpload(upload) {
      const workflowId = uploadWorkflowId(upload.tenant, upload.uploadId);
      const entry: TrackedUpload = { ...upload, workflowId, handle: uploads.getHandle(upload.tenant, upload.uploadId), checked: false };
      tracked.push(entry);
      return entry;
    },
    async assertInvariants(upload, expectation = {}) {
      const report = await assertUploadInvariants(ctx, upload, expectation);
      upload.checked = true;
      log(
        `invariants hold for ${upload.workflowId}: ${report.outcome}${report.failedStep ? ` at ${report.failedStep} (${report.causeType})` : ''}, ledger ${report.reservation}, ${report.deliveries} webhook deliveries`,
      );
      return report;
    },
    async waitFor(what, probe, waitOptions = {}) {
      const timeoutMs = waitOptions.timeoutMs ?? 60_000;
      const deadline = Date.now() + timeoutMs;
      let lastError: unknown;
      for (;;) {
        try {
          const value = await probe();
          if (value !== undefined && value !== false) return value;
          lastError = undefined;
        } catch (error) {
          lastError = error;
        }
        if (Date.now() > deadline) {
          const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
          throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}${last}`);
        }
        await sleep(waitOptions.intervalMs ?? 250);
      }
    },
    sleep,
    log,
    summary: (note) => notes.push(note),
    defer: (cleanup) => cleanups.push(cleanup),
    s3Relay: async (relayOptions) => {
      const relay = await startTcpCounterFor(minio.endpoint, relayOptions);
      cleanups.push(() => relay.close());
      return relay;
    },
  };

  return {
    ctx,
    logFile,
    notes,
    dataDir: stack.dataDir,
    async dispose({ keep = false } = {}) {
      for (const cleanup of cleanups.reverse()) {
        try {
          await cleanup();
        } catch (error) {
          log(`cleanup failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      for (const worker of workers) {
        if (worker.running) await worker.process.kill('SIGKILL');
        log(`--- output of ${worker.label} (pid ${worker.pid}), last 4000 characters ---\n${worker.output().slice(-4000)}`);
      }
      await webhook.close().catch(() => undefined);
      s3.destroy();
      await connection.close().catch(() => undefined);
      await stack.stop().catch((error: unknown) => log(`stopping the servers: ${error instanceof Error ? error.message : String(error)}`));
      if (!keep) await fsp.rm(tmpDir, { recursive: true, force: true, maxRetries: 3 });
      await new Promise<void>((resolve) => logStream.end(resolve));
    },
  };
}
