/**
 * Scenario 5: the Temporal server is SIGKILLed in the middle of an upload and started again 10 s
 * later on the same ports and the same store: the dev server's SQLite database, or, with
 * UPLOAD_SAGA_TEST_TEMPORAL=postgres, the real server's PostgreSQL databases. The worker and the
 * client reconnect by themselves; the upload continues where the server's persisted state says it
 * was and completes byte-identical.
 */
import assert from 'node:assert/strict';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';

export const scenario: FaultScenario = {
  name: 'temporal-restart',
  proves:
    'the Temporal server SIGKILLed mid-upload and restarted (SQLite, or PostgreSQL with the switch): worker and client reconnect, the upload completes',
  async run(ctx) {
    const relay = await ctx.s3Relay({ bytesPerSecond: 1 * MiB });
    await ctx.startWorker({ env: { S3_ENDPOINT: relay.url } });

    const file = await ctx.makeFile(48 * MiB);
    const upload = await ctx.startUpload({ file, request: { partSize: 5 * MiB, partConcurrency: 2 } });
    const partsBefore = await ctx.waitFor(
      '2 parts uploaded',
      async () => {
        const { partsDone } = await upload.handle.progress();
        return partsDone >= 2 && partsDone;
      },
      { timeoutMs: 120_000 },
    );
    const pidBefore = ctx.temporal.pid;
    await ctx.temporal.kill('SIGKILL');
    ctx.log(`Temporal SIGKILLed at ${partsBefore}/10 parts`);
    await ctx.sleep(10_000);
    await ctx.temporal.start();
    assert.notEqual(ctx.temporal.pid, pidBefore, 'a new server process');
    const backAt = Date.now();

    // The workflow survived in the database and still answers with its progress.
    const after = await ctx.waitFor('the upload to answer queries again', () => upload.handle.progress(), {
      timeoutMs: 120_000,
      intervalMs: 1_000,
    });
    ctx.log(`after the restart: phase ${after.phase}, ${after.partsDone} parts`);
    await ctx.assertInvariants(upload, { outcome: 'completed' });
    ctx.summary(`killed at ${partsBefore}/10 parts, completed ${((Date.now() - backAt) / 1000).toFixed(0)} s after the restart`);
  },
};
