/**
 * The batch's steps, declared in one place: for each, the activity, its retry policy (and what is
 * never retried), its timeouts.
 *
 *   inspect-batch → [ list page → upload chunk | child upload per large file ]* → finish
 *                                  ↳ undo (delete the chunk's marked objects, release its reservation)
 *
 * Undo retries without an attempt limit: it must outlast a store outage.
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { UploadActivities } from '../activities';
import { BatchFailureType } from '../batch/batch-failure-types';
import { PERMANENT_UPLOAD_FAILURES } from '../upload/errors';
import { OUTAGE_RIDING_RETRY, PERMANENT_S3_FAILURES } from './upload-steps';

const BATCH_FAILURES = Object.values(BatchFailureType);
const NEVER_RETRIED = [...PERMANENT_UPLOAD_FAILURES, ...PERMANENT_S3_FAILURES, ...BATCH_FAILURES];

export const { inspectBatch } = proxyActivities<UploadActivities>({
  // Walks the whole source once: heartbeats every 1,000 entries.
  startToCloseTimeout: '2h',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5, nonRetryableErrorTypes: NEVER_RETRIED },
});

export const { listBatchPage } = proxyLocalActivities<UploadActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5, nonRetryableErrorTypes: NEVER_RETRIED },
});

export const { uploadBatchChunk } = proxyActivities<UploadActivities>({
  // A retry skips the files its heartbeats name and finds the others already stored: retrying is cheap.
  retry: { ...OUTAGE_RIDING_RETRY, nonRetryableErrorTypes: [...NEVER_RETRIED, 'QuotaExceeded', 'ReservationSettled'] },
  startToCloseTimeout: '1h',
  heartbeatTimeout: '30s',
  // Waited for when cancelled, so that undo runs after the chunk's last write.
  cancellationType: 'WAIT_CANCELLATION_COMPLETED',
});

export const { undoBatch, finishBatch } = proxyActivities<UploadActivities>({
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '2m' },
  startToCloseTimeout: '1h',
  heartbeatTimeout: '2m',
});
