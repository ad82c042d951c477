/**
 * The CLI's status, pause, resume, cancel and list of migrations, end to end: real Temporal dev
 * server, real MinIO (buckets `uploads` and `uploads-other`), real activities and the real
 * migration workflow, the CLI's `main` in this process (as test/batch/batch-pause.test.ts runs it).
 * The worker's CopyObjects are slowed down so that the migration is still running when the test
 * acts; what the destination holds is read from MinIO.
 */
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { BatchClient } from '../../src/batch-client';
import { createS3Client } from '../../src/connections';
import { migrationReportPrefix, type MigrationRequest } from '../../src/migration/migration-types';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { createUploadWorker } from '../../src/worker';
import { migrationProgressLine, migrationRateLine } from '../../src/cli/commands/migration-status';
import { runCliInProcess } from '../support/cli-in-process';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';

const TENANT = uniqueId('mcli');
const QUEUE = uniqueId('mcli-queue');
const SOURCE_BUCKET = 'uploads';
const DESTINATION_BUCKET = 'uploads-other';
/** How long each CopyObject of the worker is held back: 30 objects one at a time take ≥ 6 s. */
const COPY_DELAY_MS = 200;

let stack: TestStack;
let batches: BatchClient;
let s3: S3Client;
let worker: RunningWorker;

/** The CLI in this process, against this file's stack. */
const runCli = (...argv: string[]) => runCliInProcess(stack.env, argv);

beforeAll(async () => {
  stack = await connectTestStack({ taskQueue: QUEUE });
  const ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: QUEUE, limits: stack.config.quota });
  // The worker's own S3 client, its CopyObjects slowed down.
  s3 = createS3Client(stack.config.s3);
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'CopyObjectCommand') await new Promise((resolve) => setTimeout(resolve, COPY_DELAY_MS));
      return next(args);
    },
    { step: 'initialize', name: 'slowCopies' },
  );
  worker = runInBackground(
    await createUploadWorker({
      config: stack.config,
      connection: stack.workerConnection,
      client: stack.client,
      s3,
      activities: createActivities({
        s3,
        sources: new LocalFileResolver({ allowedRoots: stack.config.allowedRoots }),
        quota: ledger,
      }),
    }),
  );
  batches = new BatchClient({ client: stack.client, taskQueue: QUEUE });
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  s3?.destroy();
  await stack?.close();
});

/** Writes `count` objects of `size` bytes under `prefix` in the source bucket. */
async function sourceObjects(prefix: string, count: number, size: number): Promise<void> {
  for (let i = 0; i < count; i++)
    await stack.s3.send(
      new PutObjectCommand({ Bucket: SOURCE_BUCKET, Key: `${prefix}o${String(i).padStart(4, '0')}.bin`, Body: Buffer.alloc(size, i) }),
    );
}

/** Keys under `prefix` in the destination bucket. */
async function destinationKeys(prefix: string): Promise<string[]> {
  const page = await stack.s3.send(new ListObjectsV2Command({ Bucket: DESTINATION_BUCKET, Prefix: prefix }));
  return (page.Contents ?? []).map((o) => o.Key!);
}

const request = (from: string, to: string): MigrationRequest => ({
  migrationId: uniqueId('m'),
  tenant: TENANT,
  source: { bucket: SOURCE_BUCKET, prefix: from },
  destination: { bucket: DESTINATION_BUCKET, prefix: to },
  // One object at a time, two a chunk, four chunks a run: several runs (continue-as-new).
  objectsPerChunk: 2,
  objectConcurrency: 1,
  chunkConcurrency: 1,
  chunksPerRun: 4,
});

describe('the CLI and migrations', () => {
  it('shows a running migration, pauses, lists, resumes it, and shows it completed', async () => {
    const from = `${uniqueId('src')}/`;
    const to = `${uniqueId('dst')}/`;
    await sourceObjects(from, 30, 1000);
    const req = request(from, to);
    const handle = await batches.migrate(req);
    const { workflowId } = handle;
    await expect.poll(async () => (await handle.progress()).objectsCopied, { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);

    const running = await runCli('status', TENANT, req.migrationId);
    expect(running.code, running.output).toBe(0);
    expect(running.output).toContain(`${workflowId} (migration)`);
    expect(running.output).toMatch(/status\s+RUNNING/);
    expect(running.output).toMatch(/phase\s+copy/);
    expect(running.output).toMatch(/outcome\s+running/);
    expect(running.output).toMatch(new RegExp(`source\\s+s3://${SOURCE_BUCKET}/${from}\\n`));
    expect(running.output).toMatch(new RegExp(`destination\\s+s3://${DESTINATION_BUCKET}/${to}\\n`));
    expect(running.output).toMatch(/progress\s+\d+ of 30 objects \(\d+ copied, 0 skipped\), [\d.]+ (B|KiB) of 29\.3 KiB/);
    expect(running.output).toMatch(/rate\s+[\d.]+ (B|KiB)\/s copied, [\d.]+ objects\/s \(average since the start\)/);
    expect(running.output).toContain(`s3://${DESTINATION_BUCKET}/${migrationReportPrefix(TENANT, req.migrationId)}`);

    const pause = await runCli('pause', TENANT, req.migrationId, '--reason', 'from the CLI');
    expect(pause.code, pause.output).toBe(0);
    expect(pause.output).toContain(`paused ${workflowId}: chunks in flight finished, no new page is copied`);
    const atPause = (await destinationKeys(to)).length;
    expect(atPause).toBeLessThan(30);
    const paused = await runCli('status', TENANT, req.migrationId);
    expect(paused.output).toMatch(/phase\s+paused/);
    expect(paused.output).toMatch(/paused\s+since \S+ — from the CLI/);
    expect(paused.output).toMatch(new RegExp(`progress\\s+${atPause} of 30 objects \\(${atPause} copied, 0 skipped\\)`));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await destinationKeys(to)).toHaveLength(atPause);

    // Visibility is eventually consistent: the pause shows in the listing within a moment.
    const row = new RegExp(
      `${workflowId}\\s+${TENANT}\\s+s3://${SOURCE_BUCKET}/${from}\\s+s3://${DESTINATION_BUCKET}/${to}\\s+29\\.3 KiB\\s+paused\\s+running\\s+RUNNING`,
    );
    await expect
      .poll(async () => (await runCli('list', '--tenant', TENANT, '--kind', 'migrations')).output, { timeout: 30_000, interval: 500 })
      .toMatch(row);
    const singular = await runCli('list', '--tenant', TENANT, '--kind', 'migration');
    expect(singular.output).toMatch(row);
    expect(singular.output).not.toContain('BATCH WORKFLOW ID');
    const all = await runCli('list', '--tenant', TENANT);
    expect(all.output).toContain('MIGRATION WORKFLOW ID');
    expect(all.output).toMatch(row);
    // An outcome migrations never have skips them: nothing to list.
    expect(await runCli('list', '--tenant', TENANT, '--kind', 'migrations', '--outcome', 'expired')).toMatchObject({
      code: 0,
      output: expect.stringContaining('no migrations found'),
    });

    expect(await runCli('resume', TENANT, req.migrationId)).toMatchObject({
      code: 0,
      output: expect.stringContaining(`resumed ${workflowId}`),
    });
    const again = await runCli('resume', TENANT, req.migrationId);
    expect(again.code).toBe(1);
    expect(again.output).toContain('cannot resume: the migration is not paused');

    expect(await handle.result()).toMatchObject({ outcome: 'completed', objectsCopied: 30 });
    const ended = await runCli('status', TENANT, req.migrationId);
    expect(ended.code, ended.output).toBe(0);
    expect(ended.output).toMatch(/status\s+COMPLETED/);
    expect(ended.output).toMatch(/outcome\s+completed/);
    expect(ended.output).toMatch(/progress\s+30 of 30 objects \(30 copied, 0 skipped\), 29\.3 KiB of 29\.3 KiB/);
    expect(ended.output).toMatch(/rate\s+[\d.]+ (B|KiB)\/s copied/);
    expect(ended.output).toContain('completed: 30 of 30 objects');
    expect(ended.output).toContain('copied: 30 objects, 29.3 KiB');
    // The start is the first run's, not the last run's: several runs, one start.
    const runs = [];
    for await (const info of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(info.startTime);
    expect(runs.length).toBeGreaterThan(1);
    const earliest = new Date(Math.min(...runs.map((d) => d.getTime())));
    expect(ended.output).toMatch(new RegExp(`started\\s+${earliest.toISOString().replace(/\./g, '\\.')}`));
    await expect
      .poll(async () => (await runCli('list', '--tenant', TENANT, '--kind', 'migrations', '--outcome', 'completed')).output, {
        timeout: 30_000,
        interval: 500,
      })
      .toMatch(new RegExp(`${workflowId}\\s+.*\\s+done\\s+completed\\s+COMPLETED`));

    const refused = await runCli('pause', TENANT, req.migrationId);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain(`cannot pause: ${workflowId} has ended (COMPLETED)`);
  }, 240_000);

  it('cancels a running migration from the CLI: it stops, what it copied stays', async () => {
    const from = `${uniqueId('src')}/`;
    const to = `${uniqueId('dst')}/`;
    await sourceObjects(from, 30, 500);
    const req = request(from, to);
    const handle = await batches.migrate(req);
    await expect.poll(async () => (await handle.progress()).objectsCopied, { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);

    const cancel = await runCli('cancel', TENANT, req.migrationId, '--wait');
    expect(cancel.code, cancel.output).toBe(0);
    expect(cancel.output).toContain(`cancellation requested for ${handle.workflowId}`);
    expect(cancel.output).toMatch(/cancelled: migration .* was cancelled/);
    const copied = Number(/copied: (\d+) objects/.exec(cancel.output)?.[1]);
    expect(copied).toBeGreaterThan(0);
    expect(copied).toBeLessThan(30);
    // Nothing is undone: every object it counted is still there, and so are those the chunk in
    // flight copied before it stopped (not counted: a cancelled chunk reports nothing).
    const kept = await destinationKeys(to);
    expect(kept.length).toBeGreaterThanOrEqual(copied);
    expect(kept.length).toBeLessThan(30);

    const status = await runCli('status', TENANT, req.migrationId);
    expect(status.code, status.output).toBe(0);
    expect(status.output).toMatch(/status\s+CANCELLED/);
    expect(status.output).toMatch(/outcome\s+cancelled/);
    expect(status.output).toMatch(new RegExp(`progress\\s+${copied} of 30 objects \\(${copied} copied, 0 skipped\\)`));
    expect(status.output).toMatch(/cancelled: migration .* was cancelled/);

    const twice = await runCli('cancel', TENANT, req.migrationId);
    expect(twice.code).toBe(1);
    expect(twice.output).toContain(`${handle.workflowId} already ended (CANCELLED); there is nothing to cancel`);
  }, 240_000);

  it('shows a migration that failed before copying: its outcome and cause', async () => {
    const req = request(`${uniqueId('nothing')}/`, `${uniqueId('dst')}/`);
    const handle = await batches.migrate(req);
    await handle.result().catch(() => undefined);
    const status = await runCli('status', TENANT, req.migrationId);
    expect(status.code, status.output).toBe(0);
    expect(status.output).toMatch(/status\s+FAILED/);
    expect(status.output).toMatch(/outcome\s+failed/);
    expect(status.output).toMatch(/failed: no object under s3:\/\/uploads\/nothing-\S+; nothing to migrate/);
    // Nothing was inspected, copied or reported: no progress, rate or report to show.
    expect(status.output).not.toMatch(/^\s+(progress|rate|report)\s/m);
  }, 120_000);
});

describe('migration status lines', () => {
  const counts = { objectsCopied: 10, bytesCopied: 10 * 1024, objectsSkipped: 2, bytesSkipped: 2048, objectsFailed: 1 };

  it('say objects done of the total and how, and bytes done of the total', () => {
    expect(migrationProgressLine({ ...counts, objectsTotal: 40, bytesTotal: 40 * 1024 })).toBe(
      '13 of 40 objects (10 copied, 2 skipped, 1 failed), 12.0 KiB of 40.0 KiB',
    );
    expect(migrationProgressLine({ ...counts, objectsFailed: 0 })).toBe('12 of ? objects (10 copied, 2 skipped), 12.0 KiB of ?');
  });

  it('give the average rate of bytes copied and objects, none before any time passed', () => {
    expect(migrationRateLine(counts, 2)).toBe('5.0 KiB/s copied, 6.5 objects/s (average since the start)');
    expect(migrationRateLine(counts, 0)).toBeUndefined();
  });
});
