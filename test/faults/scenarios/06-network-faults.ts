/**
 * Scenario 6: network faults between the worker and S3, on real sockets through toxiproxy —
 * added latency, a bandwidth limit so low that one part takes longer than the heartbeat timeout,
 * connections reset mid-upload, and a connection that stalls (bytes accepted, nothing delivered).
 *
 * What each proves beyond the invariants: latency and a slow link only slow the upload down (a
 * slow part is not mistaken for a dead worker); resets fail the attempt with a retryable
 * `S3.NetworkError` and the retry resumes; a stall is cut by the S3 client's idle timeout
 * (`S3_IDLE_TIMEOUT_MS`), fails the attempt the same way — not by the heartbeat timeout, which is
 * for dead workers — and the retry resumes once the network is back.
 */
import assert from 'node:assert/strict';
import { MiB } from '../../support/files';
import type { FaultContext, FaultScenario, TrackedUpload } from '../framework';
import { activitiesOf, historyEvidence } from '../helpers/history-evidence';
import { completedAttempts, pendingAttempt, startS3Proxy, type PendingAttempt } from '../helpers/s3-toxiproxy';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Polls until the pending uploadParts attempt has failed at least once; returns what it saw. */
async function firstFailedAttempt(
  ctx: FaultContext,
  upload: Parameters<typeof pendingAttempt>[0],
  timeoutMs: number,
): Promise<PendingAttempt> {
  return ctx.waitFor(
    'an uploadParts attempt to fail',
    async () => {
      const pending = await pendingAttempt(upload);
      return pending && pending.attempt >= 2 && pending.lastFailureType ? pending : undefined;
    },
    { timeoutMs, intervalMs: 200 },
  );
}

/**
 * How long each upload-parts batch of a completed upload took (scheduled → completed, in the
 * server's history) and the throughput of all of them: the measure of what a toxic did to parts.
 */
async function partTimings(upload: TrackedUpload): Promise<{ batchMs: number[]; bytesPerSecond: number }> {
  const batches = activitiesOf(await historyEvidence(upload), 'uploadParts').filter((a) => a.outcome === 'completed');
  const batchMs = batches.map((a) => a.closedAt! - a.scheduledAt);
  const busyMs = Math.max(...batches.map((a) => a.closedAt!)) - Math.min(...batches.map((a) => a.scheduledAt));
  return { batchMs, bytesPerSecond: (upload.source.size * 1000) / Math.max(busyMs, 1) };
}

const mibps = (bytesPerSecond: number) => `${(bytesPerSecond / MiB).toFixed(2)} MiB/s`;

/** An upload through the proxy before any toxic is added: what the parts take unfaulted, on this machine, now. */
async function unfaultedBaseline(ctx: FaultContext, size: number, request: Record<string, number>) {
  const upload = await ctx.startUpload({ file: await ctx.makeFile(size), request });
  await ctx.assertInvariants(upload, { outcome: 'completed' });
  const timings = await partTimings(upload);
  ctx.log(`unfaulted baseline: batches ${timings.batchMs.join(', ')} ms, ${mibps(timings.bytesPerSecond)}`);
  return timings;
}

export const scenarios: FaultScenario[] = [
  {
    name: 's3-latency',
    exclusive: true,
    proves: '150 ms ± 50 ms of latency each way on every S3 connection slows the upload but changes nothing else',
    async run(ctx) {
      const proxy = await startS3Proxy(ctx);
      await ctx.startWorker({ env: { S3_ENDPOINT: proxy.url } });
      const request = { partSize: 5 * MiB, partConcurrency: 2, partsPerActivity: 1 };
      const baseline = await unfaultedBaseline(ctx, 15 * MiB, request);
      await proxy.addToxic({ type: 'latency', attributes: { latency: 150, jitter: 50 } }, { name: 'latency-down', stream: 'downstream' });
      await proxy.addToxic({ type: 'latency', attributes: { latency: 150, jitter: 50 } }, { name: 'latency-up', stream: 'upstream' });
      const file = await ctx.makeFile(15 * MiB);
      const started = Date.now();
      const upload = await ctx.startUpload({ file, request });
      await ctx.assertInvariants(upload, { outcome: 'completed' });
      const attempts = await completedAttempts(upload);
      assert.deepEqual(attempts, [1, 1, 1], `every batch of parts succeeds at its first attempt (attempts ${attempts.join(', ')})`);
      // The toxic landed: every batch waited at least 100 ms each way, and the parts went slower than unfaulted.
      const slowed = await partTimings(upload);
      ctx.log(`with latency: batches ${slowed.batchMs.join(', ')} ms, ${mibps(slowed.bytesPerSecond)}`);
      assert.ok(
        slowed.batchMs.every((ms) => ms >= 200),
        `each batch must take at least the 2 × 100 ms the latency adds (took ${slowed.batchMs.join(', ')} ms)`,
      );
      assert.ok(
        slowed.bytesPerSecond < baseline.bytesPerSecond,
        `parts through the latency (${mibps(slowed.bytesPerSecond)}) must be slower than unfaulted (${mibps(baseline.bytesPerSecond)})`,
      );
      ctx.summary(
        `15 MiB in 3 batches through +150 ms each way: ${seconds(Date.now() - started)}; batches ${slowed.batchMs.join(', ')} ms, parts at ${mibps(slowed.bytesPerSecond)} vs ${mibps(baseline.bytesPerSecond)} unfaulted (batches ${baseline.batchMs.join(', ')} ms)`,
      );
    },
  },
  {
    name: 's3-bandwidth-limit',
    exclusive: true,
    proves:
      'at 160 KB/s per connection one 5 MiB part takes longer than the 30 s heartbeat timeout, and the upload still completes at its first attempt',
    async run(ctx) {
      const proxy = await startS3Proxy(ctx);
      await ctx.startWorker({ env: { S3_ENDPOINT: proxy.url } });
      const request = { partSize: 5 * MiB, partConcurrency: 2 };
      const baseline = await unfaultedBaseline(ctx, 10 * MiB, request);
      await proxy.addToxic({ type: 'bandwidth', attributes: { rate: 160 } }, { name: 'narrow', stream: 'upstream' });
      const file = await ctx.makeFile(10 * MiB);
      const started = Date.now();
      const upload = await ctx.startUpload({ file, request });
      await ctx.assertInvariants(upload, { outcome: 'completed' });
      const elapsed = Date.now() - started;
      assert.ok(
        elapsed > 30_000,
        `the link was meant to make a part outlast the heartbeat timeout, but the upload took ${seconds(elapsed)}`,
      );
      const attempts = await completedAttempts(upload);
      assert.deepEqual(attempts, [1], `upload-parts must not be timed out while bytes are moving (attempts ${attempts.join(', ')})`);
      // The toxic landed: the parts moved at no more than the two connections' 160 KB/s (plus a
      // quarter for request overhead and timing), far below unfaulted.
      const slowed = await partTimings(upload);
      const ceiling = 2 * 160 * 1000 * 1.25;
      assert.ok(
        slowed.bytesPerSecond <= ceiling && slowed.bytesPerSecond < baseline.bytesPerSecond,
        `parts through the bandwidth limit went at ${mibps(slowed.bytesPerSecond)}: must be at most ${mibps(ceiling)} and below the unfaulted ${mibps(baseline.bytesPerSecond)}`,
      );
      ctx.summary(
        `10 MiB as 2 parts of 5 MiB at 160 KB/s each: ${seconds(elapsed)}, one attempt; parts at ${mibps(slowed.bytesPerSecond)} vs ${mibps(baseline.bytesPerSecond)} unfaulted`,
      );
    },
  },
  {
    name: 's3-connection-resets',
    proves:
      'connections reset (TCP RST) in the middle of upload-parts fail the attempt with a retryable S3.NetworkError; the retry resumes and completes',
    timeoutMs: 300_000,
    async run(ctx) {
      const proxy = await startS3Proxy(ctx);
      // Slow enough (2 MB/s per connection) to act in the middle of the upload.
      await proxy.addToxic({ type: 'bandwidth', attributes: { rate: 2048 } }, { name: 'slow', stream: 'upstream' });
      await ctx.startWorker({ env: { S3_ENDPOINT: proxy.url } });
      const file = await ctx.makeFile(40 * MiB);
      const upload = await ctx.startUpload({ file, request: { partSize: 5 * MiB, partConcurrency: 2 } });
      await ctx.waitFor('2 parts uploaded', async () => (await upload.handle.progress()).partsDone >= 2, { intervalMs: 100 });

      await proxy.addToxic({ type: 'reset_peer', attributes: { timeout: 100 } }, { name: 'rst', stream: 'upstream' });
      const failed = await firstFailedAttempt(ctx, upload, 120_000);
      ctx.log(`attempt ${failed.attempt} after ${failed.lastFailureType}: ${failed.lastFailureMessage ?? ''}`);
      assert.equal(
        failed.lastFailureType,
        'S3.NetworkError',
        `a reset is a retryable network error, got ${failed.lastFailureType}: ${failed.lastFailureMessage}`,
      );
      await proxy.removeToxic('rst');

      await ctx.assertInvariants(upload, { outcome: 'completed' });
      const attempts = await completedAttempts(upload);
      assert.ok(attempts[0]! >= 2, `the batch completed at attempt ${attempts[0]}, after the reset`);
      ctx.summary(`reset mid-upload → ${failed.lastFailureType}, completed at attempt ${attempts[0]}`);
    },
  },
  {
    name: 's3-stalled-connection',
    proves:
      'a connection that stalls mid-part is cut by the S3 idle timeout (not left hanging until the heartbeat timeout); the attempt fails retryably and the retry resumes once the network is back',
    timeoutMs: 300_000,
    async run(ctx) {
      const proxy = await startS3Proxy(ctx);
      await proxy.addToxic({ type: 'bandwidth', attributes: { rate: 2048 } }, { name: 'slow', stream: 'upstream' });
      const idleTimeoutMs = 3_000;
      await ctx.startWorker({ env: { S3_ENDPOINT: proxy.url, S3_IDLE_TIMEOUT_MS: String(idleTimeoutMs) } });
      const file = await ctx.makeFile(40 * MiB);
      const upload = await ctx.startUpload({ file, request: { partSize: 5 * MiB, partConcurrency: 2 } });
      await ctx.waitFor('2 parts uploaded', async () => (await upload.handle.progress()).partsDone >= 2, { intervalMs: 100 });

      // Data is accepted by the proxy and never delivered: the worker's writes succeed, no answer comes.
      const stalledAt = Date.now();
      await proxy.addToxic({ type: 'timeout', attributes: { timeout: 0 } }, { name: 'stall', stream: 'upstream' });
      const failed = await firstFailedAttempt(ctx, upload, 90_000);
      const detectedAfter = Date.now() - stalledAt;
      ctx.log(
        `attempt ${failed.attempt} after ${failed.lastFailureType} (${seconds(detectedAfter)} after the stall): ${failed.lastFailureMessage ?? ''}`,
      );
      assert.equal(
        failed.lastFailureType,
        'S3.NetworkError',
        `a stalled request must fail as a network error, got ${failed.lastFailureType}: ${failed.lastFailureMessage}`,
      );
      assert.match(failed.lastFailureMessage ?? '', /inactivity|timed out/i);
      await proxy.removeToxic('stall');

      await ctx.assertInvariants(upload, { outcome: 'completed' });
      const attempts = await completedAttempts(upload);
      assert.ok(attempts[0]! >= 2, `the batch completed at attempt ${attempts[0]}, after the stall`);
      ctx.summary(
        `stall detected after ${seconds(detectedAfter)} (idle timeout ${seconds(idleTimeoutMs)} × SDK attempts), completed at attempt ${attempts[0]}`,
      );
    },
  },
];
