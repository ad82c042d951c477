/**
 * Pause, resume and waiting for quota, end to end: real Temporal dev server, real MinIO, real
 * activities (the source slowed down so that parts are in flight when the test acts). UploadPart
 * requests are counted on the worker's own S3 client and the parts S3 holds are listed in MinIO.
 */
import { ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, workflowPauseProbe } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { PauseRefusedError, UploadClient, UploadFailedError } from '../../src/client';
import { createS3Client } from '../../src/connections';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import type { UploadRequest } from '../../src/upload/request';
import { UploadPhase } from '../../src/upload/search-attributes';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { runCliInProcess } from '../support/cli-in-process';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { incompleteUploads, objectSha256 } from '../support/s3-inspect';
import { slowSource } from '../support/slow-source';
import { Worker } from '@temporalio/worker';
import { uploadMetricsSinks } from '../../src/metrics/worker-sinks';
import { WorkerMetrics } from '../../src/metrics/worker-metrics';
import type { UploadHandle } from '../../src/client';
import { expectNothingLeftBehind } from '../support/upload-saga-worker';

const BUCKET = 'uploads';
const TENANT = uniqueId('pause');
/** A tenant of 12 MiB, for the quota waits. */
const TIGHT = uniqueId('pause-tight');
/** A tenant of 4 MiB, which a 7 MiB file never fits. */
const TINY = uniqueId('pause-tiny');
const QUEUE = uniqueId('pause-queue');

let stack: TestStack;
let ledger: TemporalQuotaLedger;
let uploads: UploadClient;
let tmp: { dir: string; remove(): Promise<void> };
let bundle: ReturnType<typeof bundleUploadWorkflows>;
const workers: RunningWorker[] = [];

/** A worker with the real activities on its own S3 client, which counts the UploadPart requests it sends. */
async function startCountingWorker(): Promise<{ uploadParts: () => number; stop: () => Promise<void> }> {
  // One worker on the queue at a time: a test that failed midway left its own running.
  await Promise.all(workers.splice(0).map((w) => w.stop()));
  const s3: S3Client = createS3Client(stack.config.s3);
  let uploadParts = 0;
  s3.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'UploadPartCommand') uploadParts++;
      return next(args);
    },
    { step: 'initialize', name: 'countUploadParts' },
  );
  const activities = createActivities({
    s3,
    sources: slowSource(new LocalFileResolver({ allowedRoots: stack.config.allowedRoots }), 600),
    quota: ledger,
    pauses: workflowPauseProbe(stack.client, 250),
  });
  const running = runInBackground(
    await createUploadWorker({
      config: stack.config,
      connection: stack.workerConnection,
      client: stack.client,
      s3,
      activities,
      workflowBundle: await bundle,
    }),
  );
  workers.push(running);
  return {
    uploadParts: () => uploadParts,
    async stop() {
      await running.stop();
      s3.destroy();
    },
  };
}

async function partsInMinio(req: UploadRequest, multipartUploadId: string): Promise<number> {
  const page = await stack.s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: req.destination.key, UploadId: multipartUploadId }));
  return page.Parts?.length ?? 0;
}

/** The CLI in this process, against this file's stack. */
const runCli = (...argv: string[]) => runCliInProcess(stack.env, argv);

/** The upload's whole history replays on the workflow code: what a worker that lost its cache does. */
async function expectReplays(handle: UploadHandle): Promise<void> {
  const history = await handle.workflow.fetchHistory();
  await Worker.runReplayHistory(
    { workflowBundle: await bundle, sinks: uploadMetricsSinks(new WorkerMetrics()) },
    history,
    handle.workflowId,
  );
}

function request(overrides: Partial<UploadRequest> & { source: UploadRequest['source'] }): UploadRequest {
  const uploadId = uniqueId('up');
  return { uploadId, tenant: TENANT, destination: { bucket: BUCKET, key: `tests/pause/${uploadId}.bin` }, partSize: 5 * MiB, ...overrides };
}

beforeAll(async () => {
  stack = await connectTestStack({ taskQueue: QUEUE, env: { UPLOAD_SAGA_QUOTAS: `${TIGHT}=12MiB,${TINY}=4MiB` } });
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: QUEUE, limits: stack.config.quota });
  uploads = new UploadClient({ client: stack.client, taskQueue: QUEUE });
  tmp = await makeTempDir();
  bundle = bundleUploadWorkflows();
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await stack?.close();
  await tmp?.remove();
});

describe('pause and resume', () => {
  it('pauses mid-upload: parts in flight finish, no UploadPart while paused, across a worker restart; resume completes without sending a part twice', async () => {
    const first = await startCountingWorker();
    const file = await makeRandomFile(tmp.dir, 'paused.bin', 40 * MiB);
    const req = request({ source: { type: 'file', path: file.path }, partConcurrency: 2 });
    const handle = await uploads.start(req);
    await expect.poll(async () => (await handle.progress()).partsDone, { timeout: 30_000, interval: 200 }).toBeGreaterThan(0);

    const paused = await handle.pause({ reason: 'test: maintenance' });
    expect(paused).toMatchObject({ paused: true, held: true, reason: 'test: maintenance' });
    // Held: every UploadPart sent has finished and is in MinIO, and none follows.
    const multipartUploadId = (await handle.progress()).multipartUploadId!;
    const sentAtPause = first.uploadParts();
    expect(sentAtPause).toBeGreaterThan(0);
    expect(sentAtPause).toBeLessThan(8);
    expect(await partsInMinio(req, multipartUploadId)).toBe(sentAtPause);
    await new Promise((resolve) => setTimeout(resolve, 3_000)); // > 4 parts' reads, > 10 pause polls
    expect(first.uploadParts()).toBe(sentAtPause);
    expect(await partsInMinio(req, multipartUploadId)).toBe(sentAtPause);
    const description = await handle.workflow.describe();
    expect(description.typedSearchAttributes.get(UploadPhase)).toBe('paused');
    expect((await handle.progress()).pause).toMatchObject({ paused: true, held: true });

    // The pause is in the workflow's history: a new worker finds the upload still paused.
    await first.stop();
    const second = await startCountingWorker();
    expect(await handle.pauseState()).toMatchObject({ paused: true, held: true });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(second.uploadParts()).toBe(0);
    expect(await handle.pause()).toMatchObject({ paused: true }); // pausing again is a no-op

    expect(await handle.resume()).toMatchObject({ paused: false, held: false });
    const result = await handle.result();
    expect(result.partCount).toBe(8);
    expect(await objectSha256(stack.s3, BUCKET, req.destination.key)).toBe(file.sha256);
    expect(await incompleteUploads(stack.s3, BUCKET, req.destination.key)).toEqual([]);
    // Parts stored before the pause were not sent again.
    expect(sentAtPause + second.uploadParts()).toBe(8);
    expect((await handle.workflow.describe()).typedSearchAttributes.get(UploadPhase)).toBe('done');
    await expectReplays(handle);
    await second.stop();
  });

  it('refuses to resume a running upload and to pause an ended one; a cancelled paused upload compensates', async () => {
    const worker = await startCountingWorker();
    const file = await makeRandomFile(tmp.dir, 'refused.bin', 30 * MiB);
    const req = request({ source: { type: 'file', path: file.path }, partConcurrency: 1 });
    const handle = await uploads.start(req);
    await expect.poll(async () => (await handle.progress()).partsDone, { timeout: 30_000, interval: 200 }).toBeGreaterThan(0);

    const notPaused = await handle.resume().catch((e: unknown) => e);
    expect(notPaused).toBeInstanceOf(PauseRefusedError);
    expect((notPaused as Error).message).toMatch(/^cannot resume: the upload is not paused/);
    const tooLong = await handle.pause({ reason: 'x'.repeat(201) }).catch((e: unknown) => e);
    expect((tooLong as Error).message).toMatch(/reason must be a string of at most 200 characters/);

    // The CLI: pause (answers once held), status shows it, resume; a second resume is refused with exit 1.
    const pausedByCli = await runCli('pause', TENANT, req.uploadId, '--reason', 'from the CLI');
    expect(pausedByCli).toMatchObject({
      code: 0,
      output: expect.stringContaining(`paused ${handle.workflowId}: parts in flight finished`),
    });
    expect((await runCli('status', TENANT, req.uploadId)).output).toMatch(/paused\s+since \S+ — from the CLI/);
    expect(await runCli('resume', TENANT, req.uploadId)).toMatchObject({
      code: 0,
      output: expect.stringContaining(`resumed ${handle.workflowId}`),
    });
    const again = await runCli('resume', TENANT, req.uploadId);
    expect(again.code).toBe(1);
    expect(again.output).toContain('cannot resume: the upload is not paused');

    await handle.pause();
    await handle.cancel();
    const err = (await handle.result().catch((e: unknown) => e)) as UploadFailedError;
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.outcome).toBe('cancelled');
    await expectNothingLeftBehind(stack, ledger, req);

    const ended = await handle.pause().catch((e: unknown) => e);
    expect(ended).toBeInstanceOf(PauseRefusedError);
    expect((ended as Error).message).toMatch(/^cannot pause: .* has ended \(CANCELLED\)$/);
    await expectReplays(handle);
    await worker.stop();
  });
});

describe('waiting for quota', () => {
  it('waits while the tenant is full and continues by itself once space is released', async () => {
    const worker = await startCountingWorker();
    const blocker = uniqueId('blocker');
    await ledger.reserve({ tenant: TIGHT, uploadId: blocker, bytes: 8 * MiB });
    const file = await makeRandomFile(tmp.dir, 'waits.bin', 6 * MiB);
    const req = request({ tenant: TIGHT, source: { type: 'file', path: file.path }, onQuota: 'wait', quotaWaitMs: 600_000 });
    const handle = await uploads.start(req);
    await expect
      .poll(async () => (await handle.progress()).waitingForQuota?.reason, { timeout: 30_000, interval: 200 })
      .toMatch(/has 4194304 of 12582912 bytes left/);
    expect((await handle.workflow.describe()).typedSearchAttributes.get(UploadPhase)).toBe('waiting-for-quota');

    const releasedAt = Date.now();
    await ledger.release({ tenant: TIGHT, uploadId: blocker });
    const result = await handle.result();
    // Woken by the ledger, not by its one-minute poll.
    expect(Date.now() - releasedAt).toBeLessThan(30_000);
    expect(result.size).toBe(file.size);
    expect(await objectSha256(stack.s3, BUCKET, req.destination.key)).toBe(file.sha256);
    expect(await ledger.usage(TIGHT)).toMatchObject({ usedBytes: 6 * MiB, reservedBytes: 0 });
    await expectReplays(handle);
    await worker.stop();
  });

  it('gives up at its deadline and is compensated with QuotaWaitExpired', async () => {
    const worker = await startCountingWorker();
    const file = await makeRandomFile(tmp.dir, 'expires.bin', 7 * MiB);
    const req = request({ tenant: TINY, source: { type: 'file', path: file.path }, onQuota: 'wait', quotaWaitMs: 2_000 });
    const err = (await (await uploads.start(req)).result().catch((e: unknown) => e)) as UploadFailedError;
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.outcome).toBe('compensated');
    expect(err.message).toMatch(/step "reserve-space" failed: QuotaWaitExpired: waited \d+ s for quota, until the deadline/);
    expect(err.report?.compensations).toEqual([{ step: 'reserve-space', activity: 'releaseReservation', status: 'compensated' }]);
    await expectNothingLeftBehind(stack, ledger, req);
    await worker.stop();
  });
});
