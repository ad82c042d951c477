/**
 * Scenario 20: every worker SIGKILLed in the middle of a batch, new ones started. The batch is
 * parked mid-chunk and mid-child-upload by the S3 gate (PutObjects and UploadParts held after a
 * known number went through), both workers are killed there, and the held requests are dropped.
 *
 * Proved on the wire (the gate's record of every request): no file or part MinIO had stored before
 * the kill is sent again, and the bytes sent again are at most those in flight at the kill. Proved
 * in history: the chunk and the child's upload-parts completed on a retry (attempt ≥ 2).
 */
import assert from 'node:assert/strict';
import { childUploadId } from '../../../src/batch/batch-types';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';
import { batchWrites, bytesOf, bytesSentAgain, inFlightAt, storedBy, storedThenSentAgain } from '../helpers/batch-wire';
import { activitiesOf, historyEvidence } from '../helpers/history-evidence';
import { startS3Gate } from '../s3-gate';

const SMALL = 128 * 1024;
const LARGE = 12 * MiB;
const PART = 5 * MiB;
const FILE_CONCURRENCY = 2;
const CHUNK_CONCURRENCY = 2;

export const scenario: FaultScenario = {
  name: 'batch-worker-sigkill',
  proves:
    'every worker SIGKILLed mid-batch (a chunk and a child upload in flight), new ones started: the batch completes, no file or part stored before the kill is sent again, bytes sent again ≤ those in flight',
  async run(ctx) {
    const gate = await startS3Gate(ctx.minio.endpoint);
    ctx.defer(() => gate.close());
    const env = { S3_ENDPOINT: gate.url };
    const first = [await ctx.startWorker({ env, label: 'first-a' }), await ctx.startWorker({ env, label: 'first-b' })];

    // f0000 is the large file (a child upload, 3 parts); f0001…f0030 go to two chunks of 15.
    const dir = await ctx.makeBatchDir([LARGE, ...Array.from({ length: 30 }, () => SMALL)]);
    // A chunk writes its manifest, then its files: park chunk 0 after its manifest and 6 files,
    // the child after its first part.
    const puts = gate.hold('PutObject', { afterPassing: 1 + 6 });
    const parts = gate.hold('UploadPart', { afterPassing: 1 });
    const batch = await ctx.startBatch({
      dir,
      request: { partSize: PART, filesPerChunk: 15, fileConcurrency: FILE_CONCURRENCY, chunkConcurrency: CHUNK_CONCURRENCY },
    });
    await puts.waitUntilHeld(1);
    await parts.waitUntilHeld(1);
    await ctx.sleep(500); // whatever else was on its way reaches the gate
    const killAt = Date.now();
    await Promise.all(first.map((w) => w.kill('SIGKILL')));
    const writesAtKill = batchWrites(gate.seen, batch.bucket, batch.prefix);
    const stored = storedBy(writesAtKill, killAt);
    const inFlight = inFlightAt(writesAtKill, killAt);
    ctx.log(`killed with ${stored.length} writes stored, ${inFlight.length} in flight (${bytesOf(inFlight)} bytes)`);
    assert.ok(stored.length >= 6, `the kill must come after files were stored (${stored.length})`);
    assert.ok(stored.length < 30 + 3, 'the kill must come before the batch was done');
    // The dead workers' held requests are dropped (their sockets are gone), never replayed.
    puts.release();
    parts.release();

    await Promise.all([ctx.startWorker({ env, label: 'second-a' }), ctx.startWorker({ env, label: 'second-b' })]);
    await ctx.assertBatchInvariants(batch, { outcome: 'completed' });

    // The fault landed: the chunk and the child's upload-parts completed on a retry.
    const chunkAttempts = activitiesOf(await historyEvidence(batch), 'uploadBatchChunk').map((a) => a.attempt ?? 1);
    const child = ctx.uploads.getHandle(batch.tenant, childUploadId(batch.batchId, 0));
    const partAttempts = activitiesOf(await historyEvidence({ handle: child }), 'uploadParts').map((a) => a.attempt ?? 1);
    ctx.log(`uploadBatchChunk attempts ${chunkAttempts.join(', ')}; the child's uploadParts attempts ${partAttempts.join(', ')}`);
    assert.ok(
      chunkAttempts.some((a) => a >= 2),
      `a chunk must have completed on a retry after the kill (${chunkAttempts.join(', ')})`,
    );
    assert.ok(
      partAttempts.some((a) => a >= 2),
      `the child's upload-parts must have completed on a retry (${partAttempts.join(', ')})`,
    );

    // On the wire: nothing stored before the kill went again; what went again was in flight.
    const writes = batchWrites(gate.seen, batch.bucket, batch.prefix);
    const again = storedThenSentAgain(writes, killAt);
    assert.deepEqual(again, [], `files or parts stored before the kill were sent again: ${again.join(', ')}`);
    const resent = bytesSentAgain(writes);
    const bound = FILE_CONCURRENCY * CHUNK_CONCURRENCY * SMALL + 4 * PART;
    ctx.summary(
      `killed 2 workers with ${stored.length} files/parts stored and ${inFlight.length} in flight (${(bytesOf(inFlight) / MiB).toFixed(2)} MiB); ` +
        `chunk attempts ${chunkAttempts.join(', ')}, child upload-parts attempt ${Math.max(...partAttempts)}; ${(resent / MiB).toFixed(2)} MiB sent again, none of it stored before the kill`,
    );
    assert.ok(resent <= bytesOf(inFlight), `${resent} bytes sent again, more than the ${bytesOf(inFlight)} bytes in flight at the kill`);
    assert.ok(bytesOf(inFlight) <= bound, `${bytesOf(inFlight)} bytes were in flight, more than the concurrency allows (${bound})`);
  },
};
