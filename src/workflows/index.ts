/**
 * The workflows this worker runs. Bundled by the worker for Temporal's deterministic sandbox:
 * nothing here may use Node built-ins, I/O, timers or randomness outside Temporal's APIs.
 */
export { uploadWorkflow, progressQuery, sagaStateQuery } from './upload-workflow';
export { quotaLedgerWorkflow } from './quota-ledger';
// Registered under its wire name (the export's name is the workflow type): see src/upload/wire-names.ts.
export { gatewayUploadWorkflow as clientUploadWorkflow } from './gateway-upload-workflow';
export { batchWorkflow, batchProgressQuery } from './batch-workflow';
export { deleteObjectWorkflow } from './delete-workflow';
export { migrationWorkflow, migrationProgressQuery } from './migration-workflow';
