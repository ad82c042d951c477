/**
 * Scenario 2: two workers on the queue; the one running upload-parts is SIGKILLed and the other
 * one finishes the upload (after the 30 s heartbeat timeout), resuming from ListParts.
 *
 * The workers reach MinIO through a throttled TCP relay (2 MiB/s per connection), so the batch
 * lasts long enough to be caught in the middle: unthrottled on an idle machine, 120 MiB went up
 * between two polls and the scenario waited for a pending upload-parts that had already finished.
 */
import assert from 'node:assert/strict';
import { completedActivityAttempts, pendingActivityWorkerPid } from '../../support/activity-attempts';
import { MiB } from '../../support/files';
import type { FaultScenario, FaultWorker } from '../framework';

export const scenario: FaultScenario = {
  name: 'worker-failover',
  proves: 'with two workers, killing the one running upload-parts lets the other finish the upload from where it stopped',
  async run(ctx) {
    const relay = await ctx.s3Relay({ bytesPerSecond: 2 * MiB });
    const env = { S3_ENDPOINT: relay.url };
    const pair = [await ctx.startWorker({ env, label: 'worker-a' }), await ctx.startWorker({ env, label: 'worker-b' })];
    const partSize = 5 * MiB;
    const file = await ctx.makeFile(40 * MiB);
    const parts = Math.ceil(file.size / partSize);
    const upload = await ctx.startUpload({ file, request: { partSize, partConcurrency: 2 } });

    const uploader = await ctx.waitFor<FaultWorker>(
      'the worker running upload-parts, 2 parts in',
      async () => {
        const pid = await pendingActivityWorkerPid(upload.handle.workflow, 'uploadParts');
        const worker = pair.find((w) => w.pid === pid);
        return worker && (await upload.handle.progress()).partsDone >= 2 ? worker : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
    const partsAtKill = (await upload.handle.progress()).partsDone;
    await uploader.kill('SIGKILL');
    assert.ok(partsAtKill < parts, `the kill must happen mid-upload (${partsAtKill} of ${parts} parts were done)`);
    const survivor = pair.find((w) => w !== uploader)!;

    await ctx.assertInvariants(upload, { outcome: 'completed' });
    const [completed] = await completedActivityAttempts(upload.handle.workflow, 'uploadParts');
    assert.match(
      completed?.identity ?? '',
      new RegExp(`^${survivor.pid}@`),
      'the completed attempt of upload-parts ran on the surviving worker',
    );
    assert.ok((completed?.attempt ?? 1) > 1, 'it was a retry');
    ctx.summary(`${uploader.label} killed at ${partsAtKill}/${parts} parts, ${survivor.label} finished (attempt ${completed?.attempt})`);
  },
};
