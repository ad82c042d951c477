/**
 * Batches end to end: real Temporal dev server, real MinIO, real activities, the real batch
 * workflow. Each test checks what the bucket and the quota ledger hold afterwards, not only what
 * the workflow says.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { BatchClient, BatchFailedError } from '../../src/batch-client';
import { batchManifestPrefix, chunkReservationId, type BatchRequest } from '../../src/batch/batch-types';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { makeTempDir, MiB } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { keysUnder } from '../support/s3-inspect';

const TENANT = uniqueId('batch');
const BUCKET = 'uploads';

let stack: TestStack;
let batches: BatchClient;
let ledger: TemporalQuotaLedger;
let tmp: { dir: string; remove(): Promise<void> };
let worker: RunningWorker;

beforeAll(async () => {
  stack = await connectTestStack();
  tmp = await makeTempDir('upload-saga-batch-');
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });
  const w = await createUploadWorker({
    config: stack.config,
    connection: stack.workerConnection,
    client: stack.client,
    s3: stack.s3,
    workflowBundle: await bundleUploadWorkflows(),
    activities: createActivities({
      s3: stack.s3,
      sources: new LocalFileResolver({ allowedRoots: stack.config.allowedRoots }),
      quota: ledger,
      allowedRoots: stack.config.allowedRoots,
    }),
  });
  worker = runInBackground(w);
  batches = new BatchClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

/** A directory of `count` files of `size` bytes, spread over nested folders; returns the relative paths. */
async function directoryOf(name: string, count: number, size: number): Promise<{ dir: string; files: string[] }> {
  const dir = path.join(tmp.dir, name);
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const rel = `${i % 3 === 0 ? 'a/' : i % 3 === 1 ? 'b/c/' : ''}f${String(i).padStart(4, '0')}.bin`;
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), randomBytes(size));
    files.push(rel);
  }
  return { dir, files };
}

const request = (source: BatchRequest['source'], prefix: string, extra: Partial<BatchRequest> = {}): BatchRequest => ({
  batchId: uniqueId('b'),
  tenant: TENANT,
  source,
  destination: { bucket: BUCKET, prefix },
  filesPerChunk: 8,
  chunksPerRun: 2,
  ...extra,
});

async function bodyOf(key: string): Promise<Buffer> {
  const object = await stack.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await object.Body!.transformToByteArray());
}

describe('batch sagas', () => {
  it('uploads a directory tree in independent mode across continue-as-new runs, lists what failed, leaves no manifest', async () => {
    const { dir, files } = await directoryOf('tree', 37, 3000);
    // A large file goes through a child upload (multipart); a link out of the roots fails alone.
    await writeFile(path.join(dir, 'large.bin'), randomBytes(6 * MiB));
    await symlink('/etc/hostname', path.join(dir, 'b', 'escape.txt'));
    const prefix = `${uniqueId('tree')}/`;
    const handle = await batches.start(request({ type: 'directory', path: dir }, prefix, { partSize: 5 * MiB }));
    const result = await handle.result();

    expect(result.outcome).toBe('partial');
    expect(result.filesDone).toBe(files.length + 1);
    expect(result.filesFailed).toBe(1);
    expect(result.failures).toEqual([expect.objectContaining({ key: `${prefix}b/escape.txt`, type: 'SourceNotAllowed' })]);
    expect((await keysUnder(stack.s3, BUCKET, prefix)).sort()).toEqual([...files, 'large.bin'].map((f) => `${prefix}${f}`).sort());
    expect(await bodyOf(`${prefix}${files[5]}`)).toEqual(
      await import('node:fs/promises').then((fs) => fs.readFile(path.join(dir, files[5]!))),
    );
    // 5 chunks of 8 over 2 chunks per run: at least three runs.
    expect((await handle.progress()).run).toBeGreaterThanOrEqual(3);
    expect(await keysUnder(stack.s3, BUCKET, batchManifestPrefix(TENANT, result.batchId))).toEqual([]);
    // Each chunk's reservation was lowered to what it stored and committed.
    expect(await ledger.reservation(TENANT, chunkReservationId(result.batchId, 0))).toEqual({ status: 'committed' });
  }, 180_000);

  it('undoes an atomic batch that meets a bad file: no object of the batch and no reservation remain', async () => {
    const { dir } = await directoryOf('atomic-bad', 30, 2000);
    await symlink('/etc/hostname', path.join(dir, 'zz-escape.txt')); // listed last: earlier chunks were stored
    const prefix = `${uniqueId('atomic')}/`;
    const handle = await batches.start(request({ type: 'directory', path: dir }, prefix, { mode: 'atomic' }));
    const error = (await handle.result().catch((e: unknown) => e)) as BatchFailedError;

    expect(error).toBeInstanceOf(BatchFailedError);
    expect(error.outcome).toBe('compensated');
    expect(error.type).toBe('SourceNotAllowed');
    expect(await keysUnder(stack.s3, BUCKET, prefix)).toEqual([]);
    expect(await keysUnder(stack.s3, BUCKET, batchManifestPrefix(TENANT, handle.workflowId.split(':')[2]!))).toEqual([]);
    for (let chunk = 0; chunk < 4; chunk++) {
      expect(await ledger.reservation(TENANT, chunkReservationId(handle.workflowId.split(':')[2]!, chunk))).not.toMatchObject({
        status: 'reserved',
      });
    }
  }, 180_000);

  it('completes an atomic batch from a manifest: every key as the manifest names it, reservations committed at the end', async () => {
    const { dir, files } = await directoryOf('manifest-src', 5, 1000);
    const manifest = path.join(tmp.dir, 'batch.jsonl');
    await writeFile(manifest, files.map((f, i) => JSON.stringify({ path: path.join(dir, f), key: `m/${i}.bin` })).join('\n') + '\n\n');
    const prefix = `${uniqueId('manifest')}/`;
    const result = await (await batches.start(request({ type: 'manifest', path: manifest }, prefix, { mode: 'atomic' }))).result();
    expect(result).toMatchObject({ outcome: 'completed', filesDone: 5, filesFailed: 0, filesTotal: 5 });
    expect((await keysUnder(stack.s3, BUCKET, prefix)).sort()).toEqual(files.map((_, i) => `${prefix}m/${i}.bin`).sort());
    const head = await stack.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${prefix}m/0.bin`, ChecksumMode: 'ENABLED' }));
    expect(head.ChecksumCRC32C).toBeDefined();
    expect(await ledger.reservation(TENANT, chunkReservationId(result.batchId, 0))).toEqual({ status: 'committed' });
  }, 120_000);

  it('is cancelled in atomic mode: everything it stored is deleted', async () => {
    const { dir } = await directoryOf('atomic-cancel', 200, 20_000);
    const prefix = `${uniqueId('cancel')}/`;
    const handle = await batches.start(
      request({ type: 'directory', path: dir }, prefix, { mode: 'atomic', fileConcurrency: 1, chunksPerRun: 50 }),
    );
    await expect.poll(async () => (await handle.progress()).filesDone, { timeout: 60_000, interval: 100 }).toBeGreaterThan(0);
    await handle.cancel();
    const error = (await handle.result().catch((e: unknown) => e)) as BatchFailedError;
    expect(error.outcome).toBe('cancelled');
    const left = await stack.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    expect(left.KeyCount ?? 0).toBe(0);
  }, 120_000);

  it('runs from the CLI: one progress bar for the batch, a summary per outcome, exit 1 when files failed', async () => {
    const { dir } = await directoryOf('cli', 20, 5000);
    await symlink('/etc/hostname', path.join(dir, 'escape.txt'));
    const prefix = `${uniqueId('cli')}/`;
    const bin = path.resolve(__dirname, '../../bin/upload-saga-dev.cjs');
    const run = await promisify(execFile)(
      process.execPath,
      [bin, 'upload', dir, '--prefix', prefix, '--bucket', BUCKET, '--tenant', TENANT, '--exclude', '**/f0001.bin'],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...stack.env }, timeout: 90_000 },
    ).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(run.code).toBe(1);
    expect(run.stdout).toContain(`partial: batch `);
    expect(run.stdout).toContain('stored: 19 files');
    expect(run.stdout).toMatch(/failed: 1 files\n {2}SourceNotAllowed: 1\n {4}.*escape\.txt: source file/);
    // The bar (plain lines when stderr is not a terminal): files and bytes done of the totals.
    expect(run.stderr).toMatch(/\d+\/20 files/);
    expect((await keysUnder(stack.s3, BUCKET, prefix)).length).toBe(19);
  }, 120_000);
});
