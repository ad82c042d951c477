/**
 * Scenario 21: the store goes away in the middle of a batch. Each batch is parked mid-chunk by the
 * S3 gate (PutObjects held after a known number went through), MinIO is stopped there, and the held
 * requests fail as a broken network would.
 *
 * - `batch-store-outage-short`: MinIO is down for 15 s — longer than a request and its SDK
 *   retries, far shorter than a chunk's retry budget (8 attempts, about 3 minutes): the chunk is
 *   retried and the batch completes, every file byte-identical.
 * - `batch-store-outage-beyond-budget`: MinIO stays down until both batches have given up (an
 *   independent and an atomic one, side by side): the independent batch ends `failed`, keeps the
 *   chunk it finished and lists every file of the chunk that failed with its S3 cause; the atomic
 *   batch ends `compensated` with nothing of it left. Their undo keeps retrying while MinIO is down
 *   and finishes once it is back; no reservation stays.
 */
import assert from 'node:assert/strict';
import type { FaultContext, FaultScenario } from '../framework';
import type { TrackedBatch } from '../batch-invariants';
import { batchWrites, storedBy } from '../helpers/batch-wire';
import { activitiesOf, historyEvidence } from '../helpers/history-evidence';
import { startS3Gate, type S3Gate } from '../s3-gate';

const SMALL = 64 * 1024;
const FILES = 30;
const PER_CHUNK = 10;

/** Requests that reached the gate between `from` and `to` and got no answer: the outage, on the wire. */
const unanswered = (gate: S3Gate, from: number, to: number) =>
  gate.seen.filter((r) => r.at >= from && r.at <= to && r.status === undefined).length;

async function gateAndWorker(ctx: FaultContext): Promise<S3Gate> {
  const gate = await startS3Gate(ctx.minio.endpoint);
  ctx.defer(() => gate.close());
  await ctx.startWorker({ env: { S3_ENDPOINT: gate.url } });
  return gate;
}

const request = { filesPerChunk: PER_CHUNK, fileConcurrency: 2, chunkConcurrency: 1 };

export const scenarios: FaultScenario[] = [
  {
    name: 'batch-store-outage-short',
    proves:
      'MinIO stopped for 15 s mid-batch (longer than a request, inside the retry budget): the chunk is retried and the batch completes byte-identical',
    async run(ctx) {
      const gate = await gateAndWorker(ctx);
      const dir = await ctx.makeBatchDir(Array.from({ length: FILES }, () => SMALL));
      // Chunk 0 (manifest + 10 files), then chunk 1's manifest and 4 of its files.
      const puts = gate.hold('PutObject', { afterPassing: 1 + PER_CHUNK + 1 + 4 });
      const batch = await ctx.startBatch({ dir, request });
      await puts.waitUntilHeld(1);
      const downAt = Date.now();
      await ctx.minio.stop();
      puts.release(); // the held requests meet the dead store
      const storedBefore = storedBy(batchWrites(gate.seen, batch.bucket, batch.prefix), downAt).length;
      await ctx.sleep(15_000);
      const progress = await batch.handle.progress();
      assert.equal(progress.outcome, 'running', 'the batch must still be running after 15 s of outage (retrying, not undoing)');
      const upAt = Date.now();
      await ctx.minio.start();
      ctx.log(`MinIO back after ${((upAt - downAt) / 1000).toFixed(0)} s`);
      const failedOnWire = unanswered(gate, downAt, upAt);
      assert.ok(failedOnWire >= 1, 'no S3 request met the outage');

      await ctx.assertBatchInvariants(batch, { outcome: 'completed' });
      const chunks = activitiesOf(await historyEvidence(batch), 'uploadBatchChunk');
      const retried = chunks.filter((a) => a.outcome === 'completed' && (a.attempt ?? 1) >= 2);
      assert.ok(retried.length >= 1, `a chunk must have completed on a retry (${chunks.map((a) => a.attempt ?? 1).join(', ')})`);
      ctx.summary(
        `outage at ${storedBefore}/${FILES} files stored; ${failedOnWire} requests met it; chunk completed at attempt ${Math.max(...retried.map((a) => a.attempt ?? 1))}, batch done ${((Date.now() - upAt) / 1000).toFixed(0)} s after MinIO returned`,
      );
    },
  },
  {
    name: 'batch-store-outage-beyond-budget',
    proves:
      'MinIO down longer than the retry budget mid-batch: the independent batch fails keeping its finished chunk and lists the failed chunk’s files with their S3 cause, the atomic batch is undone, nothing else left once MinIO is back',
    timeoutMs: 600_000,
    async run(ctx) {
      const gate = await gateAndWorker(ctx);
      const independentDir = await ctx.makeBatchDir(Array.from({ length: FILES }, () => SMALL));
      const atomicDir = await ctx.makeBatchDir(Array.from({ length: FILES }, () => SMALL));
      // Both batches' first chunks through (2 × (manifest + 10 files)), then a few more.
      const puts = gate.hold('PutObject', { afterPassing: 2 * (1 + PER_CHUNK) + 4 });
      const independent = await ctx.startBatch({ dir: independentDir, request: { ...request, mode: 'independent' } });
      const atomic = await ctx.startBatch({ dir: atomicDir, request: { ...request, mode: 'atomic' } });
      await puts.waitUntilHeld(1);
      await ctx.sleep(500);
      const downAt = Date.now();
      await ctx.minio.stop();
      puts.release();
      const storedBefore = (b: TrackedBatch) => storedBy(batchWrites(gate.seen, b.bucket, b.prefix), downAt).length;
      ctx.log(`MinIO stopped with ${storedBefore(independent)} and ${storedBefore(atomic)} files stored`);
      for (const b of [independent, atomic]) assert.ok(storedBefore(b) >= 1, `${b.workflowId} must be mid-batch at the outage`);

      // Both give up while MinIO is down and start undoing; the undo cannot reach MinIO and retries.
      for (const b of [independent, atomic])
        await ctx.waitFor(`${b.workflowId} to give up and undo`, async () => (await b.handle.progress()).phase === 'compensating', {
          timeoutMs: 420_000,
          intervalMs: 1_000,
        });
      const gaveUpAfter = (Date.now() - downAt) / 1000;
      await ctx.sleep(5_000);
      for (const b of [independent, atomic])
        assert.equal((await b.handle.progress()).outcome, 'running', `${b.workflowId} must still be undoing while MinIO is down`);
      const upAt = Date.now();
      await ctx.minio.start();
      ctx.log(`MinIO back after ${((upAt - downAt) / 1000).toFixed(0)} s`);

      const ind = await ctx.assertBatchInvariants(independent, { outcome: 'failed', type: /^S3\./ });
      const failedChunk = ind.failures;
      assert.ok(ind.stored.length >= PER_CHUNK, `the independent batch keeps the chunk it finished (${ind.stored.length} stored)`);
      assert.equal(failedChunk.length, PER_CHUNK, `every file of the failed chunk is listed (${failedChunk.length} listed)`);
      for (const f of failedChunk) assert.match(f.type, /^S3\./, `${f.key} is listed with ${f.type}, not its S3 cause`);
      await ctx.assertBatchInvariants(atomic, { outcome: 'compensated', type: /^S3\./ });
      const undo = activitiesOf(await historyEvidence(atomic), 'undoBatch');
      assert.ok(
        undo.some((a) => (a.attempt ?? 1) >= 2),
        `the atomic batch's undo must have been retried through the outage (${undo.map((a) => a.attempt ?? 1).join(', ')})`,
      );
      ctx.summary(
        `gave up ${gaveUpAfter.toFixed(0)} s into the outage; independent: ${ind.stored.length} stored, ${failedChunk.length} listed as ${[...new Set(failedChunk.map((f) => f.type))].join('/')}; atomic: undone at attempt ${Math.max(...undo.map((a) => a.attempt ?? 1))}, settled ${((Date.now() - upAt) / 1000).toFixed(0)} s after MinIO returned`,
      );
    },
  },
];
