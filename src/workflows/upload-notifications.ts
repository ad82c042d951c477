/**
 * The webhook events of an upload and how both upload workflows (worker-side and client-direct)
 * send them through their saga's `notify` step. Workflow code: deterministic, no I/O of its own.
 *
 * Why shared: both workflows promise the same contract to a receiver (event shapes, ids that are
 * the `Idempotency-Key`, a completed upload that stays completed when its webhook fails), so the
 * contract lives in one place.
 */
import { ApplicationFailure, CancelledFailure, CancellationScope, log } from '@temporalio/workflow';
import type { NotifyInput } from '../activities/notify';
import { summarizeFailure, type SagaFailureReport } from '../saga/workflow';
import type { UploadEvent, UploadEventType, UploadResult } from '../upload/outcome';

/** What identifies the upload in every event it sends. */
export interface UploadEventSubject {
  workflowId: string;
  uploadId: string;
  tenant: string;
  bucket: string;
  key: string;
}

/** Builds the events of one upload; an event's id is stable per upload and type (the receiver's idempotency key). */
export function uploadEvents(subject: UploadEventSubject): (type: UploadEventType, extra: Partial<UploadEvent>) => UploadEvent {
  return (type, extra) => ({
    type,
    id: `${subject.workflowId}/${type}`,
    uploadId: subject.uploadId,
    tenant: subject.tenant,
    workflowId: subject.workflowId,
    bucket: subject.bucket,
    key: subject.key,
    occurredAt: new Date(Date.now()).toISOString(),
    ...extra,
  });
}

/** The part of a saga these helpers use: its `notify` step. */
export interface NotifyingSaga {
  run(step: 'notify', args: [NotifyInput], options: { summary: string }): Promise<unknown>;
}

/**
 * Sends `upload.completed` for a merged upload. After the pivot the object stays: a webhook that
 * is down for good is reported in the result (and the workflow log), never undone.
 */
export async function notifyCompleted(saga: NotifyingSaga, url: string, event: UploadEvent): Promise<UploadResult['notification']> {
  try {
    await saga.run('notify', [{ url, idempotencyKey: event.id, event: { ...event } }], { summary: 'notify upload.completed' });
    return { status: 'delivered' };
  } catch (err) {
    const cause = summarizeFailure(err);
    const notification = { status: 'failed' as const, error: `${cause.type}: ${cause.message}` };
    log.warn('webhook delivery failed after the object was merged', { error: notification.error });
    return notification;
  }
}

/**
 * Sends `upload.failed` or `upload.cancelled` after the compensations ran, with the notify step's
 * policy, in a non-cancellable scope (a cancelled upload still tells its receiver). It never masks
 * the failure: an undeliverable event is logged.
 */
export async function notifyFailed(saga: NotifyingSaga, url: string, event: UploadEvent): Promise<void> {
  await CancellationScope.nonCancellable(() =>
    saga.run('notify', [{ url, idempotencyKey: event.id, event: { ...event } }], { summary: `notify ${event.type}` }).then(
      () => undefined,
      (notifyErr: unknown) => log.warn('failure webhook could not be delivered', { error: summarizeFailure(notifyErr) }),
    ),
  );
}

/** The saga's failure report carried by a failed or cancelled upload's error, if any. */
export function failureReportOf(err: unknown): SagaFailureReport | undefined {
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) {
    const first = err.details?.[0] as SagaFailureReport | undefined;
    if (first && typeof first === 'object' && 'failedStep' in first) return first;
  }
  return undefined;
}
