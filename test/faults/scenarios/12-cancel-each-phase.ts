/**
 * Scenario 12: an upload cancelled in each phase. Each upload is parked in its phase by a real
 * stall — the quota ledger unreachable, a throttled link to S3, S3 requests held at a gate, a slow
 * webhook — the phase is confirmed with the progress query, and then it is cancelled.
 *
 * Before the pivot (reserve-space, upload-parts, verify) the saga compensates: nothing left, the
 * reservation released, `upload.cancelled` sent. From the merge on, the saga completes forward:
 * the object is there, the quota committed, `upload.completed` sent.
 */
import assert from 'node:assert/strict';
import { quotaLedgerWorkflowId, type quotaLedgerWorkflow } from '../../../src/workflows/quota-ledger';
import { MiB } from '../../support/files';
import type { FaultContext, FaultScenario, TrackedUpload } from '../framework';
import { activitiesOf, historyEvidence } from '../helpers/history-evidence';
import { startS3Gate, type S3Operation } from '../s3-gate';

async function waitForPhase(ctx: FaultContext, upload: TrackedUpload, phase: string, timeoutMs = 120_000): Promise<void> {
  await ctx.waitFor(
    `phase ${phase}`,
    async () => {
      const progress = await upload.handle.progress();
      if (progress.outcome !== 'running') throw new Error(`the upload ended ${progress.outcome} before reaching ${phase}`);
      return progress.phase === phase;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

/** Parks the upload at an S3 request of `operation` (held at a gate), cancels it there, lets S3 answer. */
async function cancelAtHeldRequest(ctx: FaultContext, operation: S3Operation, phase: string): Promise<TrackedUpload> {
  const gate = await startS3Gate(ctx.minio.endpoint);
  ctx.defer(() => gate.close());
  await ctx.startWorker({ env: { S3_ENDPOINT: gate.url } });
  const hold = gate.hold(operation);
  const file = await ctx.makeFile(12 * MiB);
  const upload = await ctx.startUpload({ file, request: { partSize: 5 * MiB } });
  await hold.waitUntilHeld(1, 120_000);
  await waitForPhase(ctx, upload, phase);
  ctx.log(`${operation} held in phase ${phase}: cancelling`);
  await upload.handle.cancel();
  // Let the saga react while S3 still holds the request: before the pivot it compensates; at the
  // pivot, give a wrong reaction (an abort racing the held request) time to happen. The wait is
  // longer than a workflow-task heartbeat (80 % of the 10 s workflow-task timeout): verify runs
  // as a local activity, and a cancellation reaches a workflow whose local activity is running
  // only with that heartbeat (docs/explanation/saga-semantics.md, "Cancelling an upload").
  await ctx
    .waitFor(
      'the saga reacting to the cancellation',
      async () => {
        const progress = await upload.handle.progress();
        return progress.phase === 'compensating' || progress.outcome !== 'running';
      },
      { timeoutMs: 12_000, intervalMs: 200 },
    )
    .catch(() => undefined);
  hold.release();
  return upload;
}

/**
 * Proves the cancellation landed while `activityType` (a step after the pivot) was in flight and
 * that the saga shielded it: the history holds the cancel request after that step began and
 * before it closed (and before every notify), and the upload completed with the object in place.
 * Returns the evidence line.
 */
async function assertCancelShielded(ctx: FaultContext, upload: TrackedUpload, activityType: string): Promise<string> {
  const report = await ctx.assertInvariants(upload, { outcome: 'completed' });
  assert.equal(report.objectPresent, true, 'the shielded upload keeps its object');
  const evidence = await historyEvidence(upload);
  const cancel = evidence.cancelRequested;
  assert.ok(cancel, 'the history holds no cancel request: the cancellation never reached the workflow');
  const steps = activitiesOf(evidence, activityType);
  const inFlight = steps.find((a) => a.eventId < cancel.eventId && (a.closedEventId ?? Infinity) > cancel.eventId);
  // A local activity has one event, its marker: it was in flight if it is recorded after the cancel.
  const local = steps.find((a) => a.local && a.eventId > cancel.eventId);
  const step = inFlight ?? local;
  assert.ok(
    step,
    `the cancel request (event ${cancel.eventId}) must be recorded while ${activityType} ran; ${activityType} events: ${steps.map((a) => `${a.eventId}→${a.closedEventId ?? 'open'}`).join(', ') || 'none'}`,
  );
  assert.equal(step.outcome, 'completed', `${activityType} must complete despite the cancellation`);
  const notifies = activitiesOf(evidence, 'notify');
  assert.ok(notifies.length > 0, 'the upload was notified');
  assert.ok(
    notifies.every((n) => n.eventId > cancel.eventId),
    `the cancel request (event ${cancel.eventId}) must precede the notify (events ${notifies.map((n) => n.eventId).join(', ')})`,
  );
  const line = `cancel requested at event ${cancel.eventId}, inside ${activityType} (${step.local ? `marker ${step.eventId}` : `events ${step.eventId}→${step.closedEventId}`}), before notify (event ${notifies[0]!.eventId}); outcome completed, object present, ledger ${report.reservation}`;
  ctx.log(line);
  return line;
}

export const scenarios: FaultScenario[] = [
  {
    name: 'cancel-during-reserve',
    proves: 'cancelled while the quota ledger is unreachable at reserve-space: compensated once the ledger is back, no reservation left',
    async run(ctx) {
      // The tenant's ledger already exists on a task queue no worker serves yet: reserve-space stalls.
      const ledgerQueue = `${ctx.taskQueue}-ledger`;
      await ctx.client.workflow.start<typeof quotaLedgerWorkflow>('quotaLedgerWorkflow', {
        workflowId: quotaLedgerWorkflowId(ctx.tenant),
        taskQueue: ledgerQueue,
        args: [{ tenant: ctx.tenant, usedBytes: 0, reservations: {}, settled: {} }],
      });
      await ctx.startWorker({ label: 'uploads' });
      const upload = await ctx.startUpload({ file: await ctx.makeFile(6 * MiB) });
      await waitForPhase(ctx, upload, 'reserve-space');
      await ctx.sleep(2_000);
      assert.equal((await upload.handle.progress()).phase, 'reserve-space', 'still stuck at reserve-space');
      await upload.handle.cancel();
      await waitForPhase(ctx, upload, 'compensating', 60_000).catch(() => undefined);
      // The ledger comes back: the stalled reserve and the release are handled in order.
      await ctx.startWorker({ label: 'ledger', env: { TEMPORAL_TASK_QUEUE: ledgerQueue } });
      const report = await ctx.assertInvariants(upload, { outcome: 'cancelled' });
      assert.equal(report.objectPresent, false);
      assert.equal(report.failedStep, 'reserve-space');
      ctx.summary(`ledger: ${report.reservation}`);
    },
  },
  {
    name: 'cancel-during-upload',
    proves: 'cancelled during upload-parts: the batch stops, the multipart upload is aborted, the reservation released',
    async run(ctx) {
      const relay = await ctx.s3Relay({ bytesPerSecond: 2 * MiB });
      await ctx.startWorker({ env: { S3_ENDPOINT: relay.url } });
      const upload = await ctx.startUpload({ file: await ctx.makeFile(64 * MiB), request: { partSize: 5 * MiB, partConcurrency: 2 } });
      await ctx.waitFor('1 part uploaded', async () => (await upload.handle.progress()).partsDone >= 1, {
        timeoutMs: 120_000,
        intervalMs: 100,
      });
      await waitForPhase(ctx, upload, 'upload-parts');
      await upload.handle.cancel();
      const report = await ctx.assertInvariants(upload, { outcome: 'cancelled', failedStep: 'upload-parts' });
      ctx.summary(`ledger: ${report.reservation}`);
    },
  },
  {
    name: 'cancel-during-verify',
    proves: 'cancelled during verify (its ListParts held): compensated, nothing left',
    async run(ctx) {
      const upload = await cancelAtHeldRequest(ctx, 'ListParts', 'verify');
      await ctx.assertInvariants(upload, { outcome: 'cancelled', failedStep: 'verify' });
    },
  },
  {
    name: 'cancel-during-merge',
    proves: 'cancelled during the merge (CompleteMultipartUpload held): the pivot is not interrupted, the upload completes forward',
    async run(ctx) {
      const upload = await cancelAtHeldRequest(ctx, 'CompleteMultipartUpload', 'merge');
      ctx.summary(await assertCancelShielded(ctx, upload, 'completeUpload'));
    },
  },
  {
    name: 'cancel-during-notify',
    proves: 'cancelled while the webhook is slow to answer (after the pivot): completes forward, the event is delivered',
    async run(ctx) {
      await ctx.startWorker({ env: { UPLOAD_SAGA_WEBHOOK_TIMEOUT_MS: '60000' } });
      ctx.webhook.hold();
      const upload = await ctx.startUpload({ file: await ctx.makeFile(6 * MiB) });
      await ctx.waitFor('a webhook request waiting for its answer', () => ctx.webhook.heldCount >= 1, {
        timeoutMs: 120_000,
        intervalMs: 100,
      });
      await waitForPhase(ctx, upload, 'notify');
      await upload.handle.cancel();
      await ctx.sleep(3_000);
      ctx.webhook.release();
      ctx.summary(await assertCancelShielded(ctx, upload, 'notify'));
    },
  },
];
