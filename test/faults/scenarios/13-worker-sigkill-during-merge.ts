/**
 * Scenario 13 (beyond the list): the worker is SIGKILLed while the merge — the pivot,
 * CompleteMultipartUpload — is in flight, and a second worker takes over. The merge is retried on
 * the survivor once the dead worker's attempt is noticed, and completes: the object exists
 * exactly once, byte-identical, nothing is compensated.
 *
 * The merge is parked with its CompleteMultipartUpload held at an S3 gate; the dead worker's held
 * request is dropped, never delivered. How fast the retry comes depends on how the merge notices a
 * dead worker: without a heartbeat, only its 10-minute start-to-close timeout would.
 */
import assert from 'node:assert/strict';
import { completedActivityAttempts, pendingActivityWorkerPid } from '../../support/activity-attempts';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';
import { startS3Gate } from '../s3-gate';

export const scenario: FaultScenario = {
  name: 'worker-sigkill-during-merge',
  proves:
    'a worker SIGKILLed during the merge (the pivot): another worker retries it after the heartbeat timeout and the upload completes, nothing compensated',
  async run(ctx) {
    const gate = await startS3Gate(ctx.minio.endpoint);
    ctx.defer(() => gate.close());
    const env = { S3_ENDPOINT: gate.url };
    const first = await ctx.startWorker({ env, label: 'first' });
    const hold = gate.hold('CompleteMultipartUpload');
    const upload = await ctx.startUpload({ file: await ctx.makeFile(12 * MiB), request: { partSize: 5 * MiB } });
    await hold.waitUntilHeld(1, 120_000);
    assert.equal(await pendingActivityWorkerPid(upload.handle.workflow, 'completeUpload'), first.pid, 'the first worker runs the merge');
    await first.kill('SIGKILL');
    const killedAt = Date.now();
    hold.release(); // the dead worker's request is dropped; later ones pass
    const survivor = await ctx.startWorker({ env, label: 'survivor' });

    await ctx.assertInvariants(upload, { outcome: 'completed' });
    const [merge] = await completedActivityAttempts(upload.handle.workflow, 'completeUpload');
    assert.match(merge?.identity ?? '', new RegExp(`^${survivor.pid}@`), 'the merge completed on the survivor');
    const completes = gate.seen.filter((r) => r.operation === 'CompleteMultipartUpload').length;
    ctx.summary(
      `merge retried on the survivor (attempt ${merge?.attempt}), completed ${((Date.now() - killedAt) / 1000).toFixed(0)} s after the SIGKILL; ${completes} CompleteMultipartUpload requests reached the gate`,
    );
  },
};
