/**
 * The workflows a worker of an earlier version runs, as far as the gateway's `waitUntilMerged`
 * is concerned: the gateway-upload workflow without that Update, so the worker rejects it as
 * unknown ("No registered handler for update"), as one deployed before the Update existed does
 * during a rolling deploy. Such a worker also predates the patch `gateway-local-verify-merge`,
 * under which the record that brings the last byte answers merged (and the gateway then sends no
 * `waitUntilMerged`): here the record's answers leave `merged` out, so the gateway asks, as it
 * would such a worker. Everything else is the shipped workflow: the same commands, the same state
 * query. For test/gateway/merged-update-fallback.test.ts.
 */
import { setHandler } from '@temporalio/workflow';
import type { ChunkRecord, GatewayUploadInput, GatewayUploadState } from '../../src/upload/gateway-upload';
import { recordChunkUpdate, waitUntilMergedUpdate } from '../../src/upload/gateway-upload-messages';
import type { UploadResult } from '../../src/upload/outcome';
import { gatewayUploadWorkflow } from '../../src/workflows/gateway-upload-workflow';

// The ledger the gateway's uploads reserve space in runs on the same task queue.
export { quotaLedgerWorkflow } from '../../src/workflows/quota-ledger';

/** The gateway-upload workflow, registered under its wire name, without the `waitUntilMerged` Update. */
export function clientUploadWorkflow(input: GatewayUploadInput): Promise<UploadResult> {
  const run = gatewayUploadWorkflow(input);
  // The workflow registers its handlers before its first await: this removes the one it just set.
  setHandler(waitUntilMergedUpdate, undefined);
  // …and wraps its recordChunk handler (read from the SDK's registry of the run) to answer without `merged`.
  const registered = (
    globalThis as {
      __TEMPORAL_ACTIVATOR__?: {
        updateHandlers: Map<
          string,
          { handler: (record: ChunkRecord) => GatewayUploadState | Promise<GatewayUploadState>; validator?: (record: ChunkRecord) => void }
        >;
      };
    }
  ).__TEMPORAL_ACTIVATOR__?.updateHandlers.get(recordChunkUpdate.name);
  if (!registered) throw new Error('the recordChunk handler is not registered');
  setHandler(
    recordChunkUpdate,
    async (record) => {
      const { merged: _merged, ...state } = await registered.handler(record);
      return state;
    },
    registered.validator ? { validator: registered.validator } : {},
  );
  return run;
}
