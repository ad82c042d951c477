/**
 * Scenario 22: files of a running batch deleted or changed after they were listed and before they
 * were read. The batch is parked mid-chunk by the S3 gate (PutObjects held after the manifest and
 * 4 files), the last four files of the chunk are changed there — one rewritten in place with the
 * same size, one deleted, one truncated, one appended to — and the gate lets the chunk go on.
 *
 * Independent: those four files are listed with their specific cause (`SourceChanged`,
 * `SourceNotFound`), the other 16 are stored byte-identical. Atomic: the first of them fails the
 * batch, which is undone: no object, no reservation. In both, no object holds bytes of a changed
 * file (the invariants compare every stored object with its file as it was at the start).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, open, truncate, unlink } from 'node:fs/promises';
import type { FaultContext, FaultScenario } from '../framework';
import type { TrackedBatch } from '../batch-invariants';
import { batchWrites } from '../helpers/batch-wire';
import { startS3Gate, type S3Gate } from '../s3-gate';

const SMALL = 64 * 1024;
const FILES = 20;

/** Parks a batch of `mode` after 4 of its files, changes its last four, lets it go on. */
async function changeWhileRunning(ctx: FaultContext, gate: S3Gate, mode: 'independent' | 'atomic'): Promise<TrackedBatch> {
  const dir = await ctx.makeBatchDir(Array.from({ length: FILES }, () => SMALL));
  const puts = gate.hold('PutObject', { afterPassing: 1 + 4 });
  const batch = await ctx.startBatch({ dir, request: { mode, filesPerChunk: FILES, fileConcurrency: 1 } });
  await puts.waitUntilHeld(1);
  const [rewritten, deleted, truncated, appended] = dir.files.slice(-4).map((f) => f.path);
  const handle = await open(rewritten!, 'r+');
  await handle.write(randomBytes(SMALL), 0, SMALL, 0);
  await handle.close();
  await unlink(deleted!);
  await truncate(truncated!, SMALL / 2);
  await appendFile(appended!, randomBytes(1024));
  // The fault landed while the batch ran: its chunk was listed (its manifest written), and none of
  // the changed files had been sent yet.
  const sent = batchWrites(gate.seen, batch.bucket, batch.prefix).map((w) => w.target);
  const changedKeys = dir.files.slice(-4).map((f) => `${batch.prefix}${f.name}`);
  assert.ok(sent.length >= 4, `the chunk must have started storing (${sent.length} files sent)`);
  assert.deepEqual(
    changedKeys.filter((k) => sent.includes(k)),
    [],
    'the changed files must not have been sent before the change',
  );
  ctx.log(`${mode}: changed ${changedKeys.join(', ')} with ${sent.length} files sent`);
  puts.release();
  return batch;
}

export const scenario: FaultScenario = {
  name: 'batch-source-changes',
  proves:
    'files rewritten, deleted, truncated or appended to after their batch listed them: independent lists each with its cause and stores the rest, atomic is undone; no object holds changed bytes',
  async run(ctx) {
    const gate = await startS3Gate(ctx.minio.endpoint);
    ctx.defer(() => gate.close());
    await ctx.startWorker({ env: { S3_ENDPOINT: gate.url } });

    const independent = await changeWhileRunning(ctx, gate, 'independent');
    const key = (i: number) => `${independent.prefix}f${String(i).padStart(4, '0')}.bin`;
    const report = await ctx.assertBatchInvariants(independent, {
      outcome: 'partial',
      failures: { [key(16)]: 'SourceChanged', [key(17)]: 'SourceNotFound', [key(18)]: 'SourceChanged', [key(19)]: 'SourceChanged' },
    });
    assert.equal(report.stored.length, FILES - 4);

    const atomic = await changeWhileRunning(ctx, gate, 'atomic');
    const undone = await ctx.assertBatchInvariants(atomic, { outcome: 'compensated', type: /^Source(Changed|NotFound)$/ });
    ctx.summary(
      `independent: ${report.stored.length} stored, listed ${report.failures.map((f) => f.type).join(', ')}; atomic: compensated with ${undone.settled.outcome === 'compensated' ? undone.settled.error.type : '?'}, nothing left`,
    );
  },
};
