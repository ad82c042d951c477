/**
 * A worker SIGKILLed in the middle of upload-parts, then started again: the upload completes,
 * byte-identical, and what was sent again is at most the parts that were in flight
 * (concurrency × part size). Bytes are counted on the wire by a TCP relay in front of MinIO.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { UploadClient } from '../../src/client';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';
import { objectSha256, incompleteUploads } from '../support/s3-inspect';
import { completedActivityAttempts, pendingActivityWorkerPid } from '../support/activity-attempts';
import { startTcpCounterFor, type TcpCounter } from '../support/tcp-counter';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

/** Per-file tenant: a tenant's quota ledger runs on the task queue of the worker that first served it. */
const TENANT = uniqueId('acme');

let stack: TestStack;
let counter: TcpCounter;
let tmp: { dir: string; remove(): Promise<void> };
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  stack = await connectTestStack();
  // Throttled (4 MiB/s per connection) so the crash lands mid-upload: unthrottled, 160 MiB went
  // up in under two seconds and the kill came with 30 of 32 parts done.
  counter = await startTcpCounterFor(stack.env.S3_ENDPOINT!, { bytesPerSecond: 4 * MiB });
  tmp = await makeTempDir();
});

// Each test starts its own workers on the shared task queue; none may linger into the next test.
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.kill()));
});

afterAll(async () => {
  await counter?.close();
  await stack?.close();
  await tmp?.remove();
});

describe('worker crash', () => {
  it('resumes after SIGKILL mid-upload, byte-identical, resending at most concurrency × part size', async () => {
    const partSize = 5 * MiB;
    const concurrency = 2;
    const file = await makeRandomFile(tmp.dir, 'crash.bin', 64 * MiB);
    const parts = Math.ceil(file.size / partSize);
    const env = { ...stack.env, S3_ENDPOINT: counter.url };
    workers.push(await startWorkerProcess(env));

    const uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
    const key = `crash/${uniqueId('obj')}.bin`;
    const handle = await uploads.start({
      uploadId: uniqueId('crash'),
      tenant: TENANT,
      source: { type: 'file', path: file.path },
      destination: { bucket: 'uploads', key },
      partSize,
      partConcurrency: concurrency,
    });
    let partsBeforeCrash = 0;
    await expect
      .poll(async () => (partsBeforeCrash = (await handle.progress()).partsDone), { timeout: 60_000, interval: 100 })
      .toBeGreaterThanOrEqual(4);
    await workers[0]!.kill('SIGKILL'); // no worker now: not even queries are answered until the next one starts
    expect(partsBeforeCrash).toBeLessThan(parts); // the crash really happened mid-upload

    workers.push(await startWorkerProcess(env));
    const result = await handle.result(); // the retry starts after the 30 s heartbeat timeout
    expect(result.size).toBe(file.size);
    expect(await objectSha256(stack.s3, 'uploads', key)).toBe(file.sha256);
    expect(await incompleteUploads(stack.s3, 'uploads', key)).toEqual([]);

    // Everything sent up the wire: each part once, plus what was in flight at the crash, plus
    // HTTP requests (a few KiB each).
    const resent = counter.bytesUp() - file.size;
    console.log(
      `worker crash: ${partsBeforeCrash} of ${parts} parts done at SIGKILL; ${(resent / MiB).toFixed(2)} MiB sent beyond the file size (bound ${(concurrency * partSize) / MiB} MiB + request overhead)`,
    );
    expect(resent).toBeLessThanOrEqual(concurrency * partSize + 512 * 1024);
  }, 180_000);

  it('fails over: with two workers on the queue, killing the one uploading lets the other finish', async () => {
    // Through a throttled relay (2 MiB/s per connection), so the batch lasts long enough to be
    // caught in the middle: unthrottled on an idle machine, 120 MiB went up between two polls.
    const relay = await startTcpCounterFor(stack.env.S3_ENDPOINT!, { bytesPerSecond: 2 * MiB });
    onTestFinished(() => relay.close());
    const file = await makeRandomFile(tmp.dir, 'failover.bin', 40 * MiB);
    const env = { ...stack.env, S3_ENDPOINT: relay.url };
    const pair = [await startWorkerProcess(env), await startWorkerProcess(env)];
    workers.push(...pair);
    const key = `failover/${uniqueId('obj')}.bin`;
    const handle = await new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue }).start({
      uploadId: uniqueId('failover'),
      tenant: TENANT,
      source: { type: 'file', path: file.path },
      destination: { bucket: 'uploads', key },
      partSize: 5 * MiB,
      partConcurrency: 2,
    });
    // The worker running upload-parts is the one whose identity (pid@host) the pending activity names.
    let uploader: WorkerProcess | undefined;
    await expect
      .poll(
        async () => {
          const pid = await pendingActivityWorkerPid(handle.workflow, 'uploadParts');
          uploader = pair.find((w) => w.child.pid === pid);
          return uploader !== undefined && (await handle.progress()).partsDone >= 2;
        },
        { timeout: 60_000, interval: 100 },
      )
      .toBe(true);
    const partsAtKill = (await handle.progress()).partsDone;
    await uploader!.kill('SIGKILL');
    expect(partsAtKill).toBeLessThan(8); // the kill really happened mid-upload
    const survivor = pair.find((w) => w !== uploader)!;

    const result = await handle.result();
    expect(result.size).toBe(file.size);
    expect(await objectSha256(stack.s3, 'uploads', key)).toBe(file.sha256);
    // The attempt of upload-parts that completed ran on the survivor.
    const [completed] = await completedActivityAttempts(handle.workflow, 'uploadParts');
    expect(completed?.identity).toMatch(new RegExp(`^${survivor.child.pid}@`));
    expect(completed?.attempt).toBeGreaterThan(1);
  }, 180_000);
});
