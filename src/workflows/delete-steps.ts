/**
 * The delete saga, declared in one place:
 *
 *   inspect-object → remove-object (pivot) → free-quota
 *
 * Nothing before the pivot changes anything (inspect-object only reads), so no step has a
 * compensation; after the pivot the bytes are gone and free-quota is retried forward, without an
 * attempt limit, until the ledger has the give-back (a signal, durable once sent).
 */
import type { UploadActivities } from '../activities';
import { defineSaga } from '../saga/workflow';
import { OUTAGE_RIDING_RETRY, PERMANENT_S3_FAILURES } from './upload-steps';
import { PERMANENT_UPLOAD_FAILURES } from '../upload/errors';

const NEVER_RETRIED = [...PERMANENT_UPLOAD_FAILURES, ...PERMANENT_S3_FAILURES];

export const deleteSteps = defineSaga<UploadActivities>()({
  'inspect-object': {
    action: {
      activity: 'inspectDeletion',
      retry: OUTAGE_RIDING_RETRY,
      timeouts: { startToClose: '1m' },
    },
  },
  'remove-object': {
    action: {
      activity: 'removeObject',
      retry: OUTAGE_RIDING_RETRY,
      timeouts: { startToClose: '1m' },
    },
    pivot: true,
  },
  'free-quota': {
    action: {
      activity: 'freeQuota',
      retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', jitter: 'full', nonRetryableErrorTypes: NEVER_RETRIED },
      timeouts: { startToClose: '30s' },
    },
  },
});

/** The step names of the delete saga, as its `UploadPhase` search attribute shows them. */
export type DeletePhase = keyof typeof deleteSteps | 'done';
