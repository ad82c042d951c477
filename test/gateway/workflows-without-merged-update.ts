/**
 * The workflows a worker of an earlier version runs, as far as the gateway's `waitUntilMerged`
 * is concerned: the gateway-upload workflow without that Update, so the worker rejects it as
 * unknown ("No registered handler for update"), as one deployed before the Update existed does
 * during a rolling deploy. Everything else is the shipped workflow: the same commands, the same
 * state query. For test/gateway/merged-update-fallback.test.ts.
 */
import { setHandler } from '@temporalio/workflow';
import type { GatewayUploadInput } from '../../src/upload/gateway-upload';
import { waitUntilMergedUpdate } from '../../src/upload/gateway-upload-messages';
import type { UploadResult } from '../../src/upload/outcome';
import { gatewayUploadWorkflow } from '../../src/workflows/gateway-upload-workflow';

// The ledger the gateway's uploads reserve space in runs on the same task queue.
export { quotaLedgerWorkflow } from '../../src/workflows/quota-ledger';

/** The gateway-upload workflow, registered under its wire name, without the `waitUntilMerged` Update. */
export function clientUploadWorkflow(input: GatewayUploadInput): Promise<UploadResult> {
  const run = gatewayUploadWorkflow(input);
  // The workflow registers its handlers before its first await: this removes the one it just set.
  setHandler(waitUntilMergedUpdate, undefined);
  return run;
}
