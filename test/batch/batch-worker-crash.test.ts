/**
 * A batch survives SIGKILL of every worker mid-batch: a worker in its own process is killed while
 * a chunk is storing files, a new one takes over, and the batch completes without sending any
 * file that was already stored (checked in the bucket: every object present at the kill keeps its
 * LastModified and ETag; a second PutObject would have replaced both).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BatchClient } from '../../src/batch-client';
import { makeTempDir } from '../support/files';
import { connectTestStack, stackEnv, uniqueId, type TestStack } from '../support/harness';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const BUCKET = 'uploads';
const FILES = 240;
let stack: TestStack;
let tmp: { dir: string; remove(): Promise<void> };
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  stack = await connectTestStack();
  tmp = await makeTempDir('upload-saga-batch-crash-');
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.kill()));
  await stack?.close();
  await tmp?.remove();
});

async function objectsUnder(prefix: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await stack.s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) found.set(o.Key!, `${o.LastModified!.toISOString()} ${o.ETag}`);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

it('resumes after SIGKILL of every worker mid-batch and sends no stored file again', async () => {
  const dir = path.join(tmp.dir, 'files');
  await mkdir(dir);
  for (let i = 0; i < FILES; i++) await writeFile(path.join(dir, `f${String(i).padStart(4, '0')}.bin`), randomBytes(64 * 1024));
  const taskQueue = uniqueId('batch-crash');
  const env = stackEnv(taskQueue);
  workers.push(await startWorkerProcess(env));
  const batches = new BatchClient({ client: stack.client, taskQueue });
  const prefix = `${uniqueId('crash')}/`;
  const handle = await batches.start({
    batchId: uniqueId('crash'),
    tenant: uniqueId('batch-crash'),
    source: { type: 'directory', path: dir },
    destination: { bucket: BUCKET, prefix },
    filesPerChunk: 80,
    fileConcurrency: 1,
    chunkConcurrency: 1,
  });
  // Mid-chunk: the first chunk is done and the second has stored some of its files.
  await expect.poll(async () => (await objectsUnder(prefix)).size, { timeout: 120_000, interval: 50 }).toBeGreaterThan(100);
  await workers[0]!.kill('SIGKILL');
  const atKill = await objectsUnder(prefix);
  expect(atKill.size).toBeLessThan(FILES);

  workers.push(await startWorkerProcess(env));
  const result = await handle.result();
  expect(result).toMatchObject({ outcome: 'completed', filesDone: FILES, filesFailed: 0 });
  const after = await objectsUnder(prefix);
  expect(after.size).toBe(FILES);
  const resent = [...atKill].filter(([key, stamp]) => after.get(key) !== stamp).map(([key]) => key);
  expect(resent).toEqual([]);
}, 240_000);
