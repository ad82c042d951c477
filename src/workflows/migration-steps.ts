/**
 * The migration's steps, declared in one place: for each, the activity, its retry policy (and what
 * is never retried), its timeouts.
 *
 *   inspect-migration → [ list page (bounds only) → copy chunk ]* → done
 *
 * Nothing is undone: every object a chunk copied is a verified copy that a later run skips.
 */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { UploadActivities } from '../activities';
import { MigrationFailureType } from '../migration/migration-types';
import { PERMANENT_UPLOAD_FAILURES } from '../upload/errors';
import { OUTAGE_RIDING_RETRY, PERMANENT_S3_FAILURES } from './upload-steps';

const NEVER_RETRIED = [...PERMANENT_UPLOAD_FAILURES, ...PERMANENT_S3_FAILURES, ...Object.values(MigrationFailureType)];

export const { inspectMigration } = proxyActivities<UploadActivities>({
  // Lists the whole source once: heartbeats every 1,000 objects.
  startToCloseTimeout: '2h',
  heartbeatTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 5, nonRetryableErrorTypes: NEVER_RETRIED },
});

export const { listMigrationPage } = proxyLocalActivities<UploadActivities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5, nonRetryableErrorTypes: NEVER_RETRIED },
});

export const { copyMigrationChunk } = proxyActivities<UploadActivities>({
  // A retry skips the objects its heartbeats name and finds the others already copied: retrying is cheap.
  retry: { ...OUTAGE_RIDING_RETRY, nonRetryableErrorTypes: [...NEVER_RETRIED, 'QuotaExceeded', 'ReservationSettled'] },
  startToCloseTimeout: '1h',
  heartbeatTimeout: '30s',
  // Waited for when cancelled, so that its reservation is settled before the migration ends.
  cancellationType: 'WAIT_CANCELLATION_COMPLETED',
});
