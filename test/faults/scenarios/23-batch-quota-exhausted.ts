/**
 * Scenario 23: a tenant's quota runs out in the middle of a batch. Two tenants with the same quota,
 * room for two and a half chunks; each runs a batch of three chunks, one chunk at a time.
 *
 * Independent: the first two chunks are stored and committed, the third is refused
 * (`QuotaExceeded`, before any of its bytes move): the batch stops `failed`, keeps the two chunks
 * and lists every file of the third with `QuotaExceeded`. Atomic: the refusal undoes the batch —
 * the two chunks stored are deleted and their reservations released: no object, no quota held.
 * Evidence from history: two chunks completed before the one that failed.
 */
import assert from 'node:assert/strict';
import type { FaultScenario } from '../framework';
import { activitiesOf, historyEvidence } from '../helpers/history-evidence';
import type { TrackedBatch } from '../batch-invariants';
import { reservationOf } from '../invariants';
import { chunkReservationId } from '../../../src/batch/batch-types';

const SMALL = 64 * 1024;
const PER_CHUNK = 10;
const CHUNKS = 3;
const QUOTA = 2.5 * PER_CHUNK * SMALL;

export const scenario: FaultScenario = {
  name: 'batch-quota-exhausted',
  proves:
    'the quota runs out at the third chunk: independent keeps the two chunks it committed and lists the rest of the chunk as QuotaExceeded, atomic is undone with no object and no quota held',
  async run(ctx) {
    const other = ctx.uniqueId('tq');
    await ctx.startWorker({ env: { UPLOAD_SAGA_QUOTAS: `${ctx.tenant}=${QUOTA},${other}=${QUOTA}` } });
    const sizes = Array.from({ length: PER_CHUNK * CHUNKS }, () => SMALL);
    const request = { filesPerChunk: PER_CHUNK, fileConcurrency: 4, chunkConcurrency: 1 };
    const independent = await ctx.startBatch({ dir: await ctx.makeBatchDir(sizes), request: { ...request, mode: 'independent' } });
    const atomic = await ctx.startBatch({ dir: await ctx.makeBatchDir(sizes), request: { ...request, mode: 'atomic', tenant: other } });

    const ind = await ctx.assertBatchInvariants(independent, { outcome: 'failed', type: 'QuotaExceeded' });
    assert.equal(ind.stored.length, 2 * PER_CHUNK, 'the two chunks committed before the quota ran out stay');
    assert.equal(ind.failures.length, PER_CHUNK, 'every file of the refused chunk is listed');
    for (const f of ind.failures) assert.equal(f.type, 'QuotaExceeded', `${f.key}: ${f.message}`);
    const atm = await ctx.assertBatchInvariants(atomic, { outcome: 'compensated', type: 'QuotaExceeded' });

    // The fault came mid-batch: two chunks completed, then one failed (for each batch).
    const shape = async (b: TrackedBatch) =>
      activitiesOf(await historyEvidence(b), 'uploadBatchChunk')
        .map((a) => a.outcome ?? 'open')
        .join(', ');
    for (const b of [independent, atomic]) {
      const outcomes = await shape(b);
      assert.equal(outcomes, 'completed, completed, failed', `${b.workflowId}'s chunks: ${outcomes}`);
    }
    // No reservation of the atomic batch is held: released, never committed.
    for (let chunk = 0; chunk < CHUNKS; chunk++) {
      const { status } = await reservationOf(ctx, other, chunkReservationId(atomic.batchId, chunk));
      assert.ok(status === 'released' || status === 'unknown', `the atomic batch's chunk ${chunk} reservation is ${status}`);
    }
    ctx.summary(
      `independent: ${ind.stored.length} stored, ${ind.failures.length} listed QuotaExceeded; atomic: ${atm.stored.length} left, reservations released (chunks: ${await shape(atomic)})`,
    );
  },
};
