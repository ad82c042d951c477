/**
 * Scenario 24: an atomic batch cancelled in each phase. The batch is parked in its phase by an S3
 * request held at the gate — inspect-batch's HeadBucket, a chunk's PutObject, finish-batch's
 * listing of the manifests (after it committed the reservations) — it is cancelled there, and the
 * request is let through once the cancel request is in the batch's history.
 *
 * Before the commit (inspect, upload) the batch ends `cancelled` and nothing of it is left: no
 * object, no manifest, no reservation held. Finish-batch is the pivot of an atomic batch — its
 * reservations are committed and a commit is not taken back — so a cancel that arrives there is
 * refused: the batch completes, every file stored, the quota committed (like a cancel during an
 * upload's merge).
 */
import assert from 'node:assert/strict';
import { chunkReservationId } from '../../../src/batch/batch-types';
import type { TrackedBatch } from '../batch-invariants';
import type { FaultContext, FaultScenario } from '../framework';
import { activitiesOf, historyEvidence } from '../helpers/history-evidence';
import { reservationOf } from '../invariants';
import { startS3Gate, type S3Operation } from '../s3-gate';

const SMALL = 64 * 1024;
const FILES = 30;
const PER_CHUNK = 15;

/**
 * Parks an atomic batch at a held `operation` while its activity `running` is open, cancels it,
 * lets the request go once the cancel is recorded.
 */
async function cancelAt(ctx: FaultContext, operation: S3Operation, running: string, afterPassing = 0): Promise<TrackedBatch> {
  const gate = await startS3Gate(ctx.minio.endpoint);
  ctx.defer(() => gate.close());
  await ctx.startWorker({ env: { S3_ENDPOINT: gate.url } });
  const hold = gate.hold(operation, { afterPassing });
  const dir = await ctx.makeBatchDir(Array.from({ length: FILES }, () => SMALL));
  const batch = await ctx.startBatch({
    dir,
    request: { mode: 'atomic', filesPerChunk: PER_CHUNK, fileConcurrency: 2, chunkConcurrency: 1 },
  });
  await hold.waitUntilHeld(1);
  await ctx.waitFor(`${running} running`, async () =>
    activitiesOf(await historyEvidence(batch), running).some((a) => a.closedEventId === undefined),
  );
  ctx.log(`${operation} held in ${running}: cancelling`);
  await batch.handle.cancel();
  await ctx.waitFor('the cancel request in the history', async () => (await historyEvidence(batch)).cancelRequested !== undefined, {
    timeoutMs: 30_000,
  });
  hold.release();
  return batch;
}

/** The activity of `type` that was running when the cancel was requested (scheduled before, closed after or never). */
async function runningAtCancel(batch: TrackedBatch, type: string): Promise<string> {
  const evidence = await historyEvidence(batch);
  const cancel = evidence.cancelRequested;
  assert.ok(cancel, 'the batch got no cancel request');
  const running = activitiesOf(evidence, type).find(
    (a) => a.eventId < cancel.eventId && (a.closedEventId === undefined || a.closedEventId > cancel.eventId),
  );
  assert.ok(running, `no ${type} was running when the cancel was requested (event ${cancel.eventId})`);
  return `cancel at event ${cancel.eventId}, inside ${type} (events ${running.eventId}→${running.closedEventId ?? 'open'})`;
}

async function assertNoReservationHeld(ctx: FaultContext, batch: TrackedBatch, chunks: number): Promise<void> {
  for (let chunk = 0; chunk < chunks; chunk++) {
    const { status } = await reservationOf(ctx, batch.tenant, chunkReservationId(batch.batchId, chunk));
    assert.ok(status === 'released' || status === 'unknown', `chunk ${chunk}'s reservation is ${status}`);
  }
}

export const scenarios: FaultScenario[] = [
  {
    name: 'batch-cancel-atomic-during-inspect',
    proves: 'an atomic batch cancelled during inspect-batch ends cancelled before any byte is written: nothing stored, nothing reserved',
    async run(ctx) {
      const batch = await cancelAt(ctx, 'HeadBucket', 'inspectBatch');
      await ctx.assertBatchInvariants(batch, { outcome: 'cancelled' });
      const evidence = await runningAtCancel(batch, 'inspectBatch');
      const history = await historyEvidence(batch);
      assert.equal(activitiesOf(history, 'uploadBatchChunk').length, 0, 'no chunk may start after the cancel');
      await assertNoReservationHeld(ctx, batch, 1);
      ctx.summary(`${evidence}; cancelled, no chunk started`);
    },
  },
  {
    name: 'batch-cancel-atomic-during-upload',
    proves:
      'an atomic batch cancelled while a chunk stores its files: the chunk stops, undo deletes every object of the batch and releases every reservation',
    async run(ctx) {
      // Chunk 0 (manifest + 15 files) through, chunk 1 held after its manifest and 3 files.
      const batch = await cancelAt(ctx, 'PutObject', 'uploadBatchChunk', 1 + PER_CHUNK + 1 + 3);
      await ctx.assertBatchInvariants(batch, { outcome: 'cancelled' });
      const evidence = await runningAtCancel(batch, 'uploadBatchChunk');
      const undo = activitiesOf(await historyEvidence(batch), 'undoBatch');
      assert.equal(undo.length, 1, 'undo ran once');
      await assertNoReservationHeld(ctx, batch, 2);
      ctx.summary(`${evidence}; undone, nothing left`);
    },
  },
  {
    name: 'batch-cancel-atomic-during-commit',
    proves:
      'an atomic batch cancelled inside finish-batch (its reservations committed: the pivot) is not interrupted: it completes with every file stored and its quota committed',
    async run(ctx) {
      // finish-batch commits the reservations, then lists the manifests to delete them: held there.
      const batch = await cancelAt(ctx, 'ListObjects', 'finishBatch');
      const report = await ctx.assertBatchInvariants(batch, { outcome: 'completed' });
      const evidence = await runningAtCancel(batch, 'finishBatch');
      for (let chunk = 0; chunk < FILES / PER_CHUNK; chunk++) {
        const { status } = await reservationOf(ctx, batch.tenant, chunkReservationId(batch.batchId, chunk));
        assert.equal(status, 'committed', `chunk ${chunk}'s reservation`);
      }
      ctx.summary(`${evidence}; completed forward, ${report.stored.length} files stored, reservations committed`);
    },
  },
];
