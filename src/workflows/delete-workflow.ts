/**
 * The delete workflow: a small saga that deletes one object the tenant may reach and gives its
 * bytes back to the tenant's quota.
 *
 * inspect-object reads what is at the key once and its result is recorded, so every later step
 * (and every retry of the workflow task) acts on the same object: the version found, or the ETag
 * found in a bucket without versioning. Quota is given back only for an object the saga stamped
 * for this tenant (see upload/object-stamp.ts), by the upload id in the stamp: the ledger applies
 * a give-back once per upload, so deleting twice, two deletes at once, or a retried step never
 * give back twice.
 */
import { setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo, CancelledFailure } from '@temporalio/workflow';
import { Saga } from '../saga/workflow';
import type { UploadActivities } from '../activities';
import type { DeleteRequest, DeleteResult } from '../upload/delete-request';
import { UploadOutcome, UploadPhase } from '../upload/search-attributes';
import { deleteSteps, type DeletePhase } from './delete-steps';
import { sagaStateQuery } from './upload-workflow';

/** Deletes one object (inspect-object → remove-object → free-quota) and says what was deleted and what quota came back. */
export async function deleteObjectWorkflow(request: DeleteRequest): Promise<DeleteResult> {
  const { workflowId } = workflowInfo();
  // Anything may arrive here: inspect-object refuses a malformed request; until then nothing may throw on it.
  const { tenant, bucket, key } = request ?? ({} as DeleteRequest);
  const where = `s3://${bucket}/${key}`;
  const saga = new Saga<UploadActivities, typeof deleteSteps>(deleteSteps, {
    onStepStarted: (step) => {
      upsertSearchAttributes([{ key: UploadPhase, value: step }]);
      setCurrentDetails(`**${step}** — ${where}`);
    },
  });
  setHandler(sagaStateQuery, () => saga.state());
  const end = (outcome: 'completed' | 'failed' | 'cancelled', details: string) => {
    upsertSearchAttributes([
      { key: UploadPhase, value: 'done' satisfies DeletePhase },
      { key: UploadOutcome, value: outcome },
    ]);
    setCurrentDetails(details);
  };

  try {
    const result = await saga.execute(async (): Promise<DeleteResult> => {
      const base = { workflowId, tenant, bucket, key, quotaFreedBytes: 0 };
      const target = await saga.run('inspect-object', [request], { summary: `inspect ${where} (tenant ${tenant})` });
      if (!target.found) return { ...base, outcome: 'not-found' };
      const found = {
        size: target.size,
        ...(target.versionId ? { versionId: target.versionId } : {}),
        ...(target.uploadId ? { uploadId: target.uploadId } : {}),
      };
      // Asked to delete one upload's object: another object at the key (a later upload's) stays.
      if (request.uploadId !== undefined && target.uploadId !== request.uploadId) return { ...base, ...found, outcome: 'changed' };
      const removed = await saga.run(
        'remove-object',
        [{ bucket, key, etag: target.etag, ...(target.versionId ? { versionId: target.versionId } : {}) }],
        { summary: `delete ${where}${target.versionId ? ` version ${target.versionId}` : ''}` },
      );
      if (removed.status === 'changed') return { ...base, ...found, outcome: 'changed' };
      if (!target.uploadId) return { ...base, ...found, outcome: 'deleted' };
      await saga.run('free-quota', [{ tenant, uploadId: target.uploadId, bytes: target.size }], {
        summary: `give ${target.size} bytes of upload ${target.uploadId} back to tenant ${tenant}`,
      });
      return { ...base, ...found, outcome: 'deleted', quotaFreedBytes: target.size };
    });
    end('completed', `**${result.outcome}** — ${where}; ${result.quotaFreedBytes} bytes given back to tenant ${tenant}`);
    return result;
  } catch (err) {
    end(
      err instanceof CancelledFailure ? 'cancelled' : 'failed',
      `**failed** — ${where}: ${err instanceof Error ? err.message : String(err)}`,
    );
    throw err;
  }
}
