/**
 * What `status`, `cancel`, `pause` and `resume` act on: the upload, the batch or the migration a
 * tenant named by its id. Upload, batch and migration ids share one syntax, so the id alone does
 * not say which: the upload's workflow is looked up first, then the batch's, then the migration's.
 *
 * Invariant: when none exists, the upload's WorkflowNotFoundError is thrown (the CLI says
 * "no such upload, batch or migration"), so every command fails the same way.
 */
import { WorkflowNotFoundError } from '@temporalio/common';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { BatchClient, type BatchHandle } from '../../batch-client';
import type { UploadHandle } from '../../client';
import type { MigrationHandle } from '../../migration-client';
import type { CliConnection } from '../connect';

/** An upload, a batch or a migration, with its description as Temporal answered it. */
export type Target =
  | { kind: 'upload'; handle: UploadHandle; description: WorkflowExecutionDescription }
  | { kind: 'batch'; handle: BatchHandle; description: WorkflowExecutionDescription }
  | { kind: 'migration'; handle: MigrationHandle; description: WorkflowExecutionDescription };

/**
 * Finds the upload, else the batch, else the migration with this tenant and id.
 * @throws WorkflowNotFoundError (of the upload) when there is none of them
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
    const batches = new BatchClient({ client: connection.client, taskQueue: connection.config.temporal.taskQueue });
    const batch = batches.getHandle(tenant, id);
    const migration = batches.getMigrationHandle(tenant, id);
    const found = await describeOrUndefined(batch.workflow.describe());
    if (found) return { kind: 'batch', handle: batch, description: found };
    const migrationFound = await describeOrUndefined(migration.workflow.describe());
    if (migrationFound) return { kind: 'migration', handle: migration, description: migrationFound };
    throw uploadError;
  }
}

/** The description, or undefined when there is no such workflow. */
function describeOrUndefined(description: Promise<WorkflowExecutionDescription>): Promise<WorkflowExecutionDescription | undefined> {
  return description.catch((error: unknown) => {
    if (error instanceof WorkflowNotFoundError) return undefined;
    throw error;
  });
}
