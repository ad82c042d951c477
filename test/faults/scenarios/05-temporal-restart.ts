/**
 * Scenario 5: the Temporal server is SIGKILLed in the middle of an upload and started again 10 s
 * later on the same ports and the same store. The worker and the client reconnect by themselves;
 * the upload continues where the server's persisted state says it was and completes byte-identical.
 * It runs twice, once on each store: `temporal-restart` on the run's server (the dev server's
 * SQLite database unless UPLOAD_SAGA_TEST_TEMPORAL says otherwise), `temporal-restart-postgres` on
 * the real server's PostgreSQL databases, what a cluster runs.
 */
import assert from 'node:assert/strict';
import { MiB } from '../../support/files';
import type { FaultContext, FaultScenario } from '../framework';
import { activitiesOf, historyEvidence } from '../helpers/history-evidence';

async function killAndRestartMidUpload(ctx: FaultContext): Promise<void> {
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
  const killedAt = Date.now();
  await ctx.temporal.kill('SIGKILL');
  ctx.log(`Temporal SIGKILLed at ${partsBefore}/10 parts`);
  await ctx.sleep(10_000);
  const restartedAt = Date.now();
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

  // The restart met the upload mid-flight: the server recorded events of it before the kill and
  // after the restart, and an upload-parts activity scheduled before the kill closed after it.
  const evidence = await historyEvidence(upload);
  const eventsBefore = evidence.eventTimes.filter((t) => t < killedAt).length;
  const eventsAfter = evidence.eventTimes.filter((t) => t >= restartedAt).length;
  const spanning = activitiesOf(evidence, 'uploadParts').filter((a) => a.scheduledAt < killedAt && (a.closedAt ?? 0) >= restartedAt);
  ctx.log(
    `history: ${eventsBefore} events before the kill, ${eventsAfter} after the restart; uploadParts spanning it: ${spanning.map((a) => `#${a.eventId} attempt ${a.attempt ?? '?'} ${a.outcome ?? 'open'}`).join(', ') || 'none'}`,
  );
  assert.ok(eventsBefore > 0 && eventsAfter > 0, `events before the kill (${eventsBefore}) and after the restart (${eventsAfter})`);
  assert.ok(
    spanning.length > 0,
    'an uploadParts activity scheduled before the kill must close after the restart (the upload was mid-flight)',
  );
  ctx.summary(
    `${ctx.temporal.kind}: killed at ${partsBefore}/10 parts, completed ${((Date.now() - backAt) / 1000).toFixed(0)} s after the restart; history: ${eventsBefore} events before the kill, ${eventsAfter} after, uploadParts #${spanning[0]!.eventId} scheduled before and ${spanning[0]!.outcome} after (attempt ${spanning[0]!.attempt ?? '?'})`,
  );
}

export const scenarios: FaultScenario[] = [
  {
    name: 'temporal-restart',
    proves:
      'the Temporal server SIGKILLed mid-upload and restarted (the dev server on SQLite, or the run’s UPLOAD_SAGA_TEST_TEMPORAL): worker and client reconnect, the upload completes',
    run: killAndRestartMidUpload,
  },
  {
    name: 'temporal-restart-postgres',
    proves:
      'the real Temporal server on PostgreSQL SIGKILLed mid-upload and restarted on the same databases: worker and client reconnect, the upload completes',
    temporal: 'postgres',
    run: killAndRestartMidUpload,
  },
];
