/**
 * Worker-side progress: what the activities of an upload tell the progress bus. An activity
 * interceptor publishes the phase each upload activity stands for when it starts (the phases no
 * gateway sees: inspect, upload, verify, merge, compensation), and upload-parts publishes its bytes
 * with every heartbeat (see src/activities/upload-parts.ts).
 *
 * Why from activities: workflow code must stay deterministic and its command sequence unchanged
 * (recorded histories replay), so nothing here runs in a workflow. The upload is named by its
 * workflow id (`upload:<tenant>:<uploadId>`); activities of other workflows (the quota ledger's)
 * publish nothing.
 *
 * Invariants: publishing never throws and never waits (the publisher queues); an observation holds
 * no secret: tenant, upload id, phase, byte counts, a time.
 */
import type { Context, Info } from '@temporalio/activity';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { WIRE_NAMES } from '../upload/wire-names';
import type { UploadPhase } from '../upload/outcome';
import { parseUploadWorkflowId } from '../upload/request';
import type { ProgressPublisher } from './publisher';
import type { ProgressObservation } from './view';

/**
 * The phase an activity type stands for. `cleanupUpload` stands for two (a compensation, or a
 * gateway upload's `delete-staged`), so it is left out: the workflow's own state tells which.
 */
export const ACTIVITY_PHASES: Readonly<Record<string, UploadPhase>> = {
  inspectSource: 'inspect-source',
  reserveSpace: 'reserve-space',
  uploadParts: 'upload-parts',
  verifyUpload: 'verify',
  [WIRE_NAMES.verifyGatewayUpload]: 'verify',
  openMultipartUpload: 'open-multipart',
  completeUpload: 'merge',
  putObject: 'put-object',
  verifyObject: 'verify-object',
  deleteObject: 'compensating',
  commitReservation: 'commit-quota',
  notify: 'notify',
  releaseReservation: 'compensating',
};

/** The upload an activity works for, from its workflow id; undefined for other workflows. */
export function uploadOfActivity(info: Pick<Info, 'workflowExecution'>): { tenant: string; uploadId: string } | undefined {
  const workflowId = info.workflowExecution?.workflowId;
  return typeof workflowId === 'string' ? parseUploadWorkflowId(workflowId) : undefined;
}

/**
 * An observation of the upload the activity works for, or undefined outside an upload workflow.
 * @param fields what was observed (phase, bytes, totals)
 */
export function activityObservation(
  info: Pick<Info, 'workflowExecution'>,
  fields: Omit<ProgressObservation, 'tenant' | 'uploadId' | 'at'>,
  at: number = Date.now(),
): ProgressObservation | undefined {
  const upload = uploadOfActivity(info);
  return upload ? { ...upload, at, ...fields } : undefined;
}

/**
 * The activity interceptor that publishes each upload activity's phase as it starts; register it
 * in `interceptors.activity` next to the saga's. Errors of `publish` cannot reach the activity.
 */
export function createProgressInterceptor(publisher: ProgressPublisher): ActivityInterceptorsFactory {
  return (ctx: Context) => ({
    inbound: {
      async execute(input, next) {
        const phase = ACTIVITY_PHASES[ctx.info.activityType];
        if (phase) {
          const observation = activityObservation(ctx.info, { phase, outcome: 'running' });
          if (observation) publisher.publish(observation);
        }
        return next(input);
      },
    },
  });
}
