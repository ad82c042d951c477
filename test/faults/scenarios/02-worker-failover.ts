/**
 * Scenario 2: two workers on the queue; the one running upload-parts is SIGKILLed and the other
 * one finishes the upload (after the 30 s heartbeat timeout), resuming from ListParts.
 */
import assert from 'node:assert/strict';
import { completedActivityAttempts, pendingActivityWorkerPid } from '../../support/activity-attempts';
import { MiB } from '../../support/files';
import type { FaultScenario, FaultWorker } from '../framework';

export const scenario: FaultScenario = {
  name: 'worker-failover',
  proves: 'with two workers, killing the one running upload-parts lets the other finish the upload from where it stopped',
  async run(ctx) {
    const pair = [await ctx.startWorker({ label: 'worker-a' }), await ctx.startWorker({ label: 'worker-b' })];
    const file = await ctx.makeFile(120 * MiB);
    const upload = await ctx.startUpload({ file, request: { partSize: 5 * MiB, partConcurrency: 2 } });

    const uploader = await ctx.waitFor<FaultWorker>('the worker running upload-parts, 2 parts in', async () => {
      const pid = await pendingActivityWorkerPid(upload.handle.workflow, 'uploadParts');
      const worker = pair.find((w) => w.pid === pid);
      return worker && (await upload.handle.progress()).partsDone >= 2 ? worker : undefined;
    }, { intervalMs: 100 });
    const partsAtKill = (await upload.handle.progress()).partsDone;
    await uploader.kill('SIGKILL');
    const survivor = pair.find((w) => w !== uploader)!;

    await ctx.assertInvariants(upload, { outcome: 'completed' });
    const [completed] = await completedActivityAttempts(upload.handle.workflow, 'uploadParts');
    assert.match(completed?.identity ?? '', new RegExp(`^${survivor.pid}@`), 'the completed attempt of upload-parts ran on the surviving worker');
    assert.ok((completed?.attempt ?? 1) > 1, 'it was a retry');
    ctx.summary(`${uploader.label} killed at ${partsAtKill}/24 parts, ${survivor.label} finished (attempt ${completed?.attempt})`);
  },
};
