/**
 * Scenario 4: MinIO stays unreachable longer than upload-parts' retry budget (8 attempts). The
 * saga gives up and compensates; the compensation that must reach MinIO (abort the multipart
 * upload) cannot, and keeps retrying — it must not give up — until MinIO returns, and then leaves
 * nothing behind: no multipart upload, no object, the reservation released, `upload.failed` sent.
 */
import assert from 'node:assert/strict';
import { pendingActivityAttempt } from '../../support/activity-attempts';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';
import { stillPending } from '../invariants';

export const scenario: FaultScenario = {
  name: 'minio-outage-beyond-retry-budget',
  proves:
    'storage gone longer than the retry budget: the saga compensates, the abort keeps retrying while MinIO is down and cleans up once it is back',
  timeoutMs: 600_000,
  async run(ctx) {
    const relay = await ctx.s3Relay({ bytesPerSecond: 1 * MiB });
    await ctx.startWorker({ env: { S3_ENDPOINT: relay.url } });

    const file = await ctx.makeFile(64 * MiB);
    const upload = await ctx.startUpload({ file, request: { partSize: 5 * MiB, partConcurrency: 2 } });
    await ctx.waitFor('2 parts uploaded', async () => (await upload.handle.progress()).partsDone >= 2, { timeoutMs: 120_000 });
    const downAt = Date.now();
    await ctx.minio.stop();
    ctx.log('MinIO stopped; waiting for upload-parts to exhaust its 8 attempts');

    // The saga gives up on upload-parts and starts compensating while MinIO is still down.
    await ctx.waitFor('the saga to compensate', async () => (await upload.handle.progress()).phase === 'compensating', {
      timeoutMs: 420_000,
      intervalMs: 1_000,
    });
    const gaveUpAfter = (Date.now() - downAt) / 1000;
    // The abort fails while MinIO is gone, and is retried rather than given up.
    await ctx.waitFor(
      'cleanupUpload to fail at least twice',
      async () => ((await pendingActivityAttempt(upload.handle.workflow, 'cleanupUpload')) ?? 0) >= 3,
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    await ctx.sleep(10_000);
    const during = await upload.handle.progress();
    assert.equal(during.outcome, 'running', 'the workflow must still be compensating, not finished with a failed compensation');
    assert.ok(!ctx.minio.running);

    await ctx.minio.start();
    const backAt = Date.now();
    ctx.log('MinIO is back');
    // A timeline of what the compensation waits for until it settles: the evidence if it ever takes long.
    const timeline = setInterval(() => {
      void stillPending(upload).then((pending) =>
        ctx.log(`${((Date.now() - backAt) / 1000).toFixed(0)} s after MinIO returned: ${pending}`),
      );
    }, 10_000);
    const report = await ctx
      .assertInvariants(upload, { outcome: 'compensated', failedStep: 'upload-parts' })
      .finally(() => clearInterval(timeline));
    const attempts = report.settled.outcome === 'compensated' ? report.settled.report?.compensations.length : 0;
    ctx.summary(
      `gave up ${gaveUpAfter.toFixed(0)} s into the outage; ${attempts} compensations done ${((Date.now() - backAt) / 1000).toFixed(0)} s after MinIO returned`,
    );
  },
};
