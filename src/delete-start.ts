/**
 * Starts the delete saga (`deleteObjectWorkflow`): one place for its workflow options, used by
 * {@link UploadClient.delete} and by the gateway's tus termination of a finished upload.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { DeleteRequest } from './upload/delete-request';
import { deleteWorkflowId } from './upload/delete-request';
import type { UploadOutcomeKind } from './upload/outcome';
import { tenantAndObjectAttributes, UploadOutcome, UploadPhase } from './upload/search-attributes';
import type { deleteObjectWorkflow } from './workflows/delete-workflow';

/** Where and how {@link startDeleteWorkflow} starts the saga. */
export interface DeleteStartOptions {
  taskQueue: string;
  /** Whether the bucket and key go into search attributes (not when payloads are encrypted). */
  indexDestination: boolean;
  /** @default deleteWorkflowId(request): one workflow per object, so two deletes of it at once are one */
  workflowId?: string;
}

/**
 * Starts (or joins, while one runs under the same id) the delete saga of `request`; an ended
 * delete of the same id is started afresh, reading the key again.
 */
export function startDeleteWorkflow(
  client: Client,
  request: DeleteRequest,
  options: DeleteStartOptions,
): Promise<WorkflowHandle<typeof deleteObjectWorkflow>> {
  const { tenant, bucket, key, uploadId } = request;
  return client.workflow.start<typeof deleteObjectWorkflow>('deleteObjectWorkflow', {
    workflowId: options.workflowId ?? deleteWorkflowId(request),
    taskQueue: options.taskQueue,
    args: [{ tenant, bucket, key, ...(uploadId !== undefined ? { uploadId } : {}) }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    staticSummary: `delete s3://${bucket}/${key}${uploadId !== undefined ? ` stored by upload ${uploadId}` : ''} (tenant ${tenant})`,
    typedSearchAttributes: [
      ...tenantAndObjectAttributes(tenant, bucket, key, options.indexDestination),
      { key: UploadPhase, value: 'inspect-object' },
      { key: UploadOutcome, value: 'running' satisfies UploadOutcomeKind },
    ],
  });
}
