/**
 * Scenario 10: the webhook receiver fails after the merge (the pivot), so nothing is undone.
 *
 * - Down for a while (connections refused): notify is retried with its backoff, the upload stays
 *   in phase `notify`, and the event is delivered once the receiver is back — same body, same
 *   Idempotency-Key as every attempt (the invariants check both).
 * - Down for good: the receiver answers `410 Gone` (an endpoint taken out of service), which the
 *   saga treats as final (`WebhookRejected`, never retried). The documented outcome: the upload
 *   completes, the object stays, and the failure is visible — in the result
 *   (`notification.status: 'failed'`), in `upload-saga status` and in the Web UI's current details.
 *   A receiver that stays unreachable ends the same way once notify's 12 attempts are spent
 *   (about 50 minutes of backoff), too long for this suite; the code path after the last attempt
 *   is the same catch.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { MiB } from '../../support/files';
import type { FaultContext, FaultScenario, TrackedUpload } from '../framework';

const BIN = path.resolve(__dirname, '../../../bin/upload-saga-dev.cjs');

/** `upload-saga status <tenant> <uploadId>` as a user runs it, against the scenario's servers. */
function cliStatus(ctx: FaultContext, upload: TrackedUpload): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'status', upload.tenant, upload.uploadId], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...ctx.workerEnv(), TEMPORAL_UI_URL: ctx.temporal.uiUrl ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The Web UI's "current details" of the upload (the SDK's built-in metadata query). */
async function currentDetails(upload: TrackedUpload): Promise<string> {
  const metadata = await upload.handle.workflow.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  return metadata.currentDetails ?? '';
}

export const scenarios: FaultScenario[] = [
  {
    name: 'webhook-down-for-a-while',
    proves:
      'a receiver refusing connections after the merge gets upload.completed once it is back; meanwhile the upload waits in phase notify, and nothing is undone',
    async run(ctx) {
      await ctx.startWorker();
      await ctx.webhook.down();
      const file = await ctx.makeFile(6 * MiB);
      const upload = await ctx.startUpload({ file });
      await ctx.waitFor('the upload to reach phase notify', async () => (await upload.handle.progress()).phase === 'notify', {
        timeoutMs: 120_000,
      });
      const details = await currentDetails(upload);
      assert.match(details, /\*\*notify\*\*/, `the Web UI shows the phase while it waits: ${details}`);
      // Several attempts fail against the closed port (5 s, 10 s, … backoff, jittered).
      await ctx.sleep(15_000);
      assert.equal((await upload.handle.workflow.describe()).status.name, 'RUNNING', 'the upload waits for the receiver');
      assert.equal(ctx.webhook.deliveries.length, 0);
      const backAt = Date.now();
      await ctx.webhook.up();

      const report = await ctx.assertInvariants(upload, { outcome: 'completed', settleTimeoutMs: 180_000 });
      assert.equal(report.settled.outcome === 'completed' && report.settled.result.notification.status, 'delivered');
      const delivered = ctx.webhook.deliveries.filter((d) => d.json.type === 'upload.completed');
      assert.ok(delivered.length >= 1 && delivered.every((d) => d.receivedAt >= backAt), 'delivered after the receiver came back');
      ctx.summary(`delivered ${((delivered[0]!.receivedAt - backAt) / 1000).toFixed(1)} s after the receiver came back`);
    },
  },
  {
    name: 'webhook-down-for-good',
    proves:
      'a receiver that answers 410 Gone for good: the upload completes, the object stays, and notification failed shows in the result, `upload-saga status` and the Web UI current details',
    async run(ctx) {
      await ctx.startWorker();
      ctx.webhook.status = 410;
      const file = await ctx.makeFile(6 * MiB);
      const upload = await ctx.startUpload({ file });
      const report = await ctx.assertInvariants(upload, { outcome: 'completed', webhook: 'undelivered' });
      assert.ok(report.settled.outcome === 'completed');
      const { notification } = report.settled.result;
      assert.equal(notification.status, 'failed');
      assert.match(notification.error ?? '', /^WebhookRejected: .*410/, `the result names the cause: ${notification.error}`);
      // Refused for good: delivered once, not retried.
      const attempts = ctx.webhook.deliveries.filter((d) => d.json.workflowId === upload.workflowId);
      assert.equal(attempts.length, 1, `a 410 is final, yet the receiver saw ${attempts.length} attempts`);

      const status = await cliStatus(ctx, upload);
      ctx.log(`upload-saga status:\n${status.output}`);
      assert.equal(status.code, 0, status.output);
      assert.match(status.output, /COMPLETED/);
      assert.match(status.output, /webhook\s+failed \(WebhookRejected: .*410/);

      const details = await currentDetails(upload);
      assert.match(details, /\*\*completed\*\*.*webhook not delivered.*WebhookRejected/s, `current details: ${details}`);
      ctx.summary('completed, notification failed (410), shown by the CLI and the Web UI');
    },
  },
];
