/**
 * How the handles of batches and migrations send the `pause` and `resume` Updates: a refusal by the
 * workflow (its validator's `PauseRefused` failure), or an Update sent to a workflow that has ended,
 * becomes a {@link PauseRefusedError} whose message says why in the handle's own terms.
 *
 * Why one place: an ended workflow answers an Update with a bare "not found" or "already completed";
 * the caller (the CLI exits 1 with the message) needs "cannot pause: <id> has ended (COMPLETED)"
 * whatever kind of workflow it paused.
 */
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { PauseRefusedError } from './client';
import { PAUSE_REFUSED, type PauseState } from './upload/pause';

/**
 * Sends a pause or resume Update with `send` and translates its refusals (see the module comment).
 * `noun` replaces "upload" in the gate's "the upload is not paused" (`batch`, `migration`).
 */
export async function sendPauseUpdate(
  workflow: Pick<WorkflowHandle, 'describe'>,
  workflowId: string,
  what: 'pause' | 'resume',
  noun: string,
  send: () => Promise<PauseState>,
): Promise<PauseState> {
  try {
    return await send();
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === PAUSE_REFUSED) {
      throw new PauseRefusedError(err.cause.message.replace('the upload is not paused', `the ${noun} is not paused`));
    }
    // An ended workflow takes no Update: say so in the same terms.
    if (err instanceof Error && (err.name === 'WorkflowNotFoundError' || /already completed/i.test(err.message))) {
      const { status } = await workflow.describe().catch(() => ({ status: { name: 'UNKNOWN' } }));
      if (status.name !== 'RUNNING') throw new PauseRefusedError(`cannot ${what}: ${workflowId} has ended (${status.name})`);
    }
    throw err;
  }
}
