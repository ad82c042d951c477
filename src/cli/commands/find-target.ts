/**
 * What `status`, `cancel`, `pause` and `resume` act on: the upload or the batch a tenant named by
 * its id. Upload ids and batch ids share one syntax, so the id alone does not say which: the
 * upload's workflow is looked up first, then the batch's.
 *
 * Invariant: when neither exists, the upload's WorkflowNotFoundError is thrown (the CLI says
 * "no such upload or batch"), so every command fails the same way.
 */
import { WorkflowNotFoundError } from '@temporalio/common';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { BatchClient, type BatchHandle } from '../../batch-client';
import type { UploadHandle } from '../../client';
import type { CliConnection } from '../connect';

/** An upload or a batch, with its description as Temporal answered it. */
export type Target =
  | { kind: 'upload'; handle: UploadHandle; description: WorkflowExecutionDescription }
  | { kind: 'batch'; handle: BatchHandle; description: WorkflowExecutionDescription };

/**
 * Finds the upload, else the batch, with this tenant and id.
 * @throws WorkflowNotFoundError (of the upload) when there is neither
 */
export async function findTarget(
  connection: Pick<CliConnection, 'uploads' | 'client' | 'config'>,
  tenant: string,
  id: string,
): Promise<Target> {
  const upload = connection.uploads.getHandle(tenant, id);
  try {
    return { kind: 'upload', handle: upload, description: await upload.workflow.describe() };
  } catch (uploadError) {
    if (!(uploadError instanceof WorkflowNotFoundError)) throw uploadError;
    const batch = new BatchClient({ client: connection.client, taskQueue: connection.config.temporal.taskQueue }).getHandle(tenant, id);
    try {
      return { kind: 'batch', handle: batch, description: await batch.workflow.describe() };
    } catch (batchError) {
      if (batchError instanceof WorkflowNotFoundError) throw uploadError;
      throw batchError;
    }
  }
}
