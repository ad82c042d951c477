/**
 * Pausing and resuming batches, and the CLI's status, cancel and list of batches, end to end: real
 * Temporal dev server, real MinIO, real activities and the real batch workflow. Source reads are
 * slowed down so that chunks are in flight when the test acts; the PutObject and UploadPart
 * requests the worker sends are counted on its own S3 client.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, workflowPauseProbe } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { BatchClient, BatchFailedError, type BatchHandle } from '../../src/batch-client';
import { PauseRefusedError, UploadClient } from '../../src/client';
import { createS3Client } from '../../src/connections';
import { childUploadId, type BatchRequest } from '../../src/batch/batch-types';
import { WorkerMetrics } from '../../src/metrics/worker-metrics';
import { workflowSpanSinks } from '../../src/telemetry/temporal';
import { uploadMetricsSinks } from '../../src/metrics/worker-sinks';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { UploadPhase } from '../../src/upload/search-attributes';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { runCliInProcess } from '../support/cli-in-process';
import { makeTempDir, MiB } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { keysUnder } from '../support/s3-inspect';
import { slowSource } from '../support/slow-source';

const BUCKET = 'uploads';
const TENANT = uniqueId('bpause');
const QUEUE = uniqueId('bpause-queue');

let stack: TestStack;
let ledger: TemporalQuotaLedger;
let batches: BatchClient;
let tmp: { dir: string; remove(): Promise<void> };
let bundle: ReturnType<typeof bundleUploadWorkflows>;
const workers: RunningWorker[] = [];

/** What one worker sent: the keys of its PutObjects (files and manifests) and its UploadParts. */
interface Counting {
  putKeys: string[];
  uploadParts: () => number;
  stop: () => Promise<void>;
}

/** A worker with the real activities on its own S3 client (counting requests), reads slowed by `delayMs`. */
async function startCountingWorker(delayMs: number): Promise<Counting> {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  const s3: S3Client = createS3Client(stack.config.s3);
  const putKeys: string[] = [];
  let uploadParts = 0;
  s3.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'PutObjectCommand') putKeys.push((args.input as { Key: string }).Key);
      if (context.commandName === 'UploadPartCommand') uploadParts++;
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  const running = runInBackground(
    await createUploadWorker({
      config: stack.config,
      connection: stack.workerConnection,
      client: stack.client,
      s3,
      workflowBundle: await bundle,
      activities: createActivities({
        s3,
        sources: slowSource(new LocalFileResolver({ allowedRoots: stack.config.allowedRoots }), delayMs),
        quota: ledger,
        allowedRoots: stack.config.allowedRoots,
        pauses: workflowPauseProbe(stack.client, 250),
      }),
    }),
  );
  workers.push(running);
  return {
    putKeys,
    uploadParts: () => uploadParts,
    async stop() {
      await running.stop();
      s3.destroy();
    },
  };
}

/** A directory of `count` files of `size` bytes (f0000.bin …), plus any `extra` files; returns its path. */
async function directoryOf(name: string, count: number, size: number, extra: Record<string, number> = {}): Promise<string> {
  const dir = path.join(tmp.dir, name);
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i++) await writeFile(path.join(dir, `f${String(i).padStart(4, '0')}.bin`), randomBytes(size));
  for (const [file, bytes] of Object.entries(extra)) await writeFile(path.join(dir, file), randomBytes(bytes));
  return dir;
}

const request = (dir: string, prefix: string, extra: Partial<BatchRequest> = {}): BatchRequest => ({
  batchId: uniqueId('bp'),
  tenant: TENANT,
  source: { type: 'directory', path: dir },
  destination: { bucket: BUCKET, prefix },
  filesPerChunk: 4,
  fileConcurrency: 1,
  chunkConcurrency: 1,
  chunksPerRun: 2,
  ...extra,
});

const under = (keys: string[], prefix: string) => keys.filter((k) => k.startsWith(prefix));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every run of the batch (continue-as-new) replays on the workflow code. */
async function expectEveryRunReplays(handle: BatchHandle): Promise<number> {
  let runs = 0;
  for await (const info of stack.client.workflow.list({ query: `WorkflowId = '${handle.workflowId}'` })) {
    const history = await stack.client.workflow.getHandle(handle.workflowId, info.runId).fetchHistory();
    await Worker.runReplayHistory(
      { workflowBundle: await bundle, sinks: { ...uploadMetricsSinks(new WorkerMetrics()), ...workflowSpanSinks(undefined) } },
      history,
      handle.workflowId,
    );
    runs++;
  }
  return runs;
}

/** The CLI in this process, against this file's stack. */
const runCli = (...argv: string[]) => runCliInProcess(stack.env, argv);

beforeAll(async () => {
  stack = await connectTestStack({ taskQueue: QUEUE });
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: QUEUE, limits: stack.config.quota });
  batches = new BatchClient({ client: stack.client, taskQueue: QUEUE });
  tmp = await makeTempDir('upload-saga-batch-pause-');
  bundle = bundleUploadWorkflows();
}, 120_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await stack?.close();
  await tmp?.remove();
});

describe('pausing a batch', () => {
  it('pauses between chunks: the chunk in flight finishes, no PutObject while paused, across a worker restart; resume stores every file once', async () => {
    const first = await startCountingWorker(250);
    const dir = await directoryOf('paused', 24, 3000);
    const prefix = `${uniqueId('paused')}/`;
    const handle = await batches.start(request(dir, prefix));
    await expect.poll(async () => (await handle.progress()).filesDone, { timeout: 60_000, interval: 200 }).toBeGreaterThan(0);

    const paused = await handle.pause({ reason: 'test: maintenance' });
    expect(paused).toMatchObject({ paused: true, held: true, reason: 'test: maintenance' });
    // Held: the chunk in flight finished (whole chunks of 4 files stored), and nothing follows.
    const atPause = under(first.putKeys, prefix);
    expect(atPause.length % 4).toBe(0);
    expect(atPause.length).toBeLessThan(24);
    expect((await handle.progress()).filesDone).toBe(atPause.length);
    expect((await keysUnder(stack.s3, BUCKET, prefix)).length).toBe(atPause.length);
    await sleep(3_000); // > 2 chunks' worth of slowed reads
    expect(under(first.putKeys, prefix)).toEqual(atPause);
    expect((await handle.workflow.describe()).typedSearchAttributes.get(UploadPhase)).toBe('paused');
    expect((await handle.progress()).pause).toMatchObject({ paused: true, held: true });

    // The pause is in the workflow's history: a new worker finds the batch still paused.
    await first.stop();
    const second = await startCountingWorker(250);
    expect(await handle.pauseState()).toMatchObject({ paused: true, held: true });
    await sleep(1_500);
    expect(second.putKeys).toEqual([]);
    expect(await handle.pause()).toMatchObject({ paused: true }); // pausing again is a no-op

    expect(await handle.resume()).toMatchObject({ paused: false });
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'completed', filesDone: 24, filesFailed: 0 });
    const stored = await keysUnder(stack.s3, BUCKET, prefix);
    expect(stored).toHaveLength(24);
    // No file sent twice: what the first worker sent and what the second sent are apart, and together all.
    const sent = [...atPause, ...under(second.putKeys, prefix)];
    expect(new Set(sent).size).toBe(sent.length);
    expect(sent.sort()).toEqual(stored.sort());
    expect((await handle.workflow.describe()).typedSearchAttributes.get(UploadPhase)).toBe('done');
    expect(await expectEveryRunReplays(handle)).toBeGreaterThanOrEqual(3);
    await second.stop();
  }, 240_000);

  it('pauses its running child upload too, and resumes it', async () => {
    const worker = await startCountingWorker(2500);
    const dir = await directoryOf('child', 2, 2000, { 'a-large.bin': 60 * MiB });
    const prefix = `${uniqueId('child')}/`;
    const req = request(dir, prefix, { partSize: 5 * MiB, chunkConcurrency: 2 });
    const handle = await batches.start(req);
    const child = new UploadClient({ client: stack.client, taskQueue: QUEUE }).getHandle(TENANT, childUploadId(req.batchId, 0));
    // Each read takes 2.5 s: the child's first parts are in flight once it is in upload-parts.
    await expect
      .poll(async () => (await child.progress().catch(() => undefined))?.phase, { timeout: 60_000, interval: 200 })
      .toBe('upload-parts');

    await handle.pause({ reason: 'test: child' });
    // The child was told to pause by signal: it holds once its parts in flight finished.
    await expect.poll(async () => (await child.pauseState()).held, { timeout: 30_000, interval: 200 }).toBe(true);
    expect((await child.pauseState()).reason).toBe('test: child');
    const partsAtHold = worker.uploadParts();
    expect(partsAtHold).toBeLessThan(12);
    await sleep(3_000);
    expect(worker.uploadParts()).toBe(partsAtHold);
    expect((await child.workflow.describe()).typedSearchAttributes.get(UploadPhase)).toBe('paused');

    await handle.resume();
    await expect.poll(async () => (await child.pauseState()).paused, { timeout: 30_000, interval: 200 }).toBe(false);
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'completed', filesDone: 3 });
    expect(worker.uploadParts()).toBe(12); // no part sent twice
    expect((await keysUnder(stack.s3, BUCKET, prefix)).sort()).toContain(`${prefix}a-large.bin`);
    await expectEveryRunReplays(handle);
    await worker.stop();
  }, 240_000);

  it('the CLI pauses, shows, lists, resumes and cancels a batch; a paused batch that is cancelled is undone', async () => {
    const worker = await startCountingWorker(300);
    const dir = await directoryOf('cli', 40, 2000);
    const prefix = `${uniqueId('cli')}/`;
    const req = request(dir, prefix, { mode: 'atomic' });
    const handle = await batches.start(req);
    await expect.poll(async () => (await handle.progress()).filesDone, { timeout: 60_000, interval: 200 }).toBeGreaterThan(0);

    const notPaused = await handle.resume().catch((e: unknown) => e);
    expect(notPaused).toBeInstanceOf(PauseRefusedError);
    expect((notPaused as Error).message).toMatch(/^cannot resume: the batch is not paused/);

    const pause = await runCli('pause', TENANT, req.batchId, '--reason', 'from the CLI');
    expect(pause, pause.output).toMatchObject({
      code: 0,
      output: expect.stringContaining(`paused ${handle.workflowId}: chunks in flight finished`),
    });
    const status = await runCli('status', TENANT, req.batchId);
    expect(status.code, status.output).toBe(0);
    expect(status.output).toContain(`${handle.workflowId} (batch)`);
    expect(status.output).toMatch(/phase\s+paused/);
    expect(status.output).toMatch(/progress\s+\d+ of 40 files, [\d.]+ KiB of 78\.1 KiB/);
    expect(status.output).toMatch(/paused\s+since \S+ — from the CLI/);
    await expect
      .poll(async () => (await runCli('list', '--tenant', TENANT, '--kind', 'batches')).output, { timeout: 30_000, interval: 500 })
      .toMatch(new RegExp(`${handle.workflowId}\\s+${TENANT}\\s+s3://${BUCKET}/${prefix}\\s+78\\.1 KiB\\s+paused\\s+running\\s+RUNNING`));
    expect(await runCli('resume', TENANT, req.batchId)).toMatchObject({
      code: 0,
      output: expect.stringContaining(`resumed ${handle.workflowId}`),
    });
    const again = await runCli('resume', TENANT, req.batchId);
    expect(again.code).toBe(1);
    expect(again.output).toContain('cannot resume: the batch is not paused');

    await handle.pause();
    const cancel = await runCli('cancel', TENANT, req.batchId, '--wait');
    expect(cancel.code, cancel.output).toBe(0);
    expect(cancel.output).toContain(`cancellation requested for ${handle.workflowId}`);
    expect(cancel.output).toMatch(/cancelled: batch .* was cancelled/);
    const error = await handle.result().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchFailedError);
    // Atomic: the files stored before the pause were undone.
    expect(await keysUnder(stack.s3, BUCKET, prefix)).toEqual([]);
    const ended = await runCli('status', TENANT, req.batchId);
    expect(ended.output).toMatch(/status\s+CANCELLED/);
    expect(ended.output).toMatch(/outcome\s+cancelled/);
    const refused = await runCli('pause', TENANT, req.batchId);
    expect(refused.code).toBe(1);
    expect(refused.output).toMatch(/cannot pause: .* has ended \(CANCELLED\)/);
    expect((await runCli('status', TENANT, 'no-such-batch')).output).toContain('no such upload, batch or migration');
    await expectEveryRunReplays(handle);
    await worker.stop();
  }, 240_000);
});
