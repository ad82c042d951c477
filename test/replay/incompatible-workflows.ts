/**
 * A deliberately incompatible upload workflow, for `test/replay.test.ts` to show that the replay
 * guard catches what it must: the real workflow, with one change someone could well make without
 * thinking of the uploads already running — a pre-flight activity before the saga starts.
 *
 * A running upload replayed on this code finds an activity command where its history has the
 * saga's first search-attribute update, and fails with a DeterminismViolationError. The safe way
 * to ship such a change is `patched()` or a new worker deployment (docs/how-to/changing-workflow-code.md).
 */
import { proxyActivities } from '@temporalio/workflow';
import type { UploadActivities } from '../../src/activities';
import type { UploadRequestWithDefaults } from '../../src/upload/request';
import type { UploadResult } from '../../src/upload/outcome';
import { uploadWorkflow as currentUploadWorkflow } from '../../src/workflows/upload-workflow';

const { inspectSource } = proxyActivities<UploadActivities>({ startToCloseTimeout: '1m' });

/** The one change: inspect the source once more, outside the saga, before anything else. */
export async function uploadWorkflow(request: UploadRequestWithDefaults): Promise<UploadResult> {
  await inspectSource(request);
  return currentUploadWorkflow(request);
}
