/**
 * Scenario 14 (beyond the list): a rolling deploy. The worker running upload-parts gets
 * SIGTERM (graceful shutdown, as Kubernetes or systemd send it) while a second worker is on the
 * queue. The worker shuts down, the batch is retried on the other one and resumes from ListParts,
 * and the upload completes byte-identical.
 */
import assert from 'node:assert/strict';
import { completedActivityAttempts, pendingActivityWorkerPid } from '../../support/activity-attempts';
import { MiB } from '../../support/files';
import type { FaultScenario, FaultWorker } from '../framework';

export const scenario: FaultScenario = {
  name: 'worker-sigterm-handover',
  proves: 'a worker sent SIGTERM mid-upload (a rolling deploy) shuts down and the other worker finishes the upload from ListParts',
  async run(ctx) {
    const relay = await ctx.s3Relay({ bytesPerSecond: 2 * MiB });
    const env = { S3_ENDPOINT: relay.url };
    const pair = [await ctx.startWorker({ env, label: 'old' }), await ctx.startWorker({ env, label: 'new' })];
    const file = await ctx.makeFile(40 * MiB);
    const upload = await ctx.startUpload({ file, request: { partSize: 5 * MiB, partConcurrency: 2 } });
    const uploader = await ctx.waitFor<FaultWorker>(
      'the worker running upload-parts, 2 parts in',
      async () => {
        const pid = await pendingActivityWorkerPid(upload.handle.workflow, 'uploadParts');
        const worker = pair.find((w) => w.pid === pid);
        return worker && (await upload.handle.progress()).partsDone >= 2 ? worker : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    const termAt = Date.now();
    await uploader.kill('SIGTERM');
    const exitedAfter = (Date.now() - termAt) / 1000;
    const other = pair.find((w) => w !== uploader)!;

    await ctx.assertInvariants(upload, { outcome: 'completed' });
    const [completed] = await completedActivityAttempts(upload.handle.workflow, 'uploadParts');
    assert.match(completed?.identity ?? '', new RegExp(`^${other.pid}@`), 'the batch completed on the other worker');
    ctx.summary(
      `${uploader.label} exited ${exitedAfter.toFixed(1)} s after SIGTERM; completed ${((Date.now() - termAt) / 1000).toFixed(0)} s after it, attempt ${completed?.attempt}`,
    );
  },
};
