/**
 * How both upload workflows (worker-side `uploadWorkflow` and `gatewayUploadWorkflow`) end: the
 * result of a merged upload, the outcome of a failed one, the status lines people read in the Web
 * UI, and the webhooks either ending sends. Workflow code: deterministic, no I/O of its own.
 *
 * Why shared: both workflows promise the same ending to callers, receivers and the Web UI
 * (result shape, outcome names, status wording, event ids), so it lives in one place; each
 * workflow adds only what is its own (a worker upload's SHA-256 and part-size adjustment, a
 * gateway upload's expiry).
 */
import type { CompleteUploadResult } from '../activities/complete-upload';
import type { SagaFailureReport } from '../saga/workflow';
import type { UploadEvent, UploadEventType, UploadOutcomeKind, UploadResult } from '../upload/outcome';
import { notifyCompleted, notifyFailed } from './upload-notifications';
import type { NotifyingSaga } from './upload-notifications';

/** What identifies a merged upload in its result. */
export interface MergedUploadSubject {
  uploadId: string;
  tenant: string;
  workflowId: string;
  bucket: string;
  key: string;
}

/**
 * The result of a merged upload: who, where, what S3 reports for the object (ETag, version,
 * checksum), then `extra` (SHA-256, part count and size, …). No webhook sent yet.
 */
export function mergedResult(
  subject: MergedUploadSubject,
  size: number,
  merged: Pick<CompleteUploadResult, 'etag' | 'versionId' | 'checksum'>,
  extra: Omit<UploadResult, keyof MergedUploadSubject | 'size' | 'etag' | 'versionId' | 'checksum' | 'notification'>,
): UploadResult {
  const { partCount, partSize, timings, ...rest } = extra;
  return {
    uploadId: subject.uploadId,
    tenant: subject.tenant,
    workflowId: subject.workflowId,
    bucket: subject.bucket,
    key: subject.key,
    size,
    etag: merged.etag,
    ...(merged.versionId ? { versionId: merged.versionId } : {}),
    ...(merged.checksum ? { checksum: merged.checksum } : {}),
    ...(rest.sha256 ? { sha256: rest.sha256 } : {}),
    partCount,
    partSize,
    ...(rest.partSizeAdjusted ? { partSizeAdjusted: rest.partSizeAdjusted } : {}),
    timings,
    notification: { status: 'not-requested' },
  };
}

/** Sends `upload.completed` when a webhook is configured and records how it went in `result.notification`. */
export async function notifyCompletedResult(
  saga: NotifyingSaga,
  webhookUrl: string | undefined,
  event: (type: UploadEventType, extra: Partial<UploadEvent>) => UploadEvent,
  result: UploadResult,
): Promise<void> {
  if (!webhookUrl) return;
  const { notification: _, ...eventResult } = result;
  result.notification = await notifyCompleted(saga, webhookUrl, event('upload.completed', { result: eventResult }));
}

/** Sends `upload.cancelled` or `upload.failed` for an upload that ended with a failure report, when a webhook is configured. */
export async function notifyEnded(
  saga: NotifyingSaga,
  webhookUrl: string | undefined,
  event: (type: UploadEventType, extra: Partial<UploadEvent>) => UploadEvent,
  report: SagaFailureReport | undefined,
): Promise<void> {
  if (!webhookUrl || !report) return;
  await notifyFailed(saga, webhookUrl, event(report.cancelled ? 'upload.cancelled' : 'upload.failed', { failure: report }));
}

/**
 * The outcome of an upload whose saga threw: `cancelled` when it was cancelled, then the
 * workflow's own `special` outcome if it names one (a gateway upload's expiry), `compensated` when
 * every compensation ran, else `failed`.
 */
export function failureOutcome(
  cancelled: boolean,
  report: SagaFailureReport | undefined,
  special?: (report: SagaFailureReport) => UploadOutcomeKind | undefined,
): UploadOutcomeKind {
  if (cancelled) return 'cancelled';
  const own = report ? special?.(report) : undefined;
  if (own) return own;
  return report && report.compensations.every((c) => c.status === 'compensated') ? 'compensated' : 'failed';
}

/** The Web UI's current details of a completed upload. */
export function completedDetails(result: UploadResult, suffix = ''): string {
  return `**completed** — s3://${result.bucket}/${result.key}, ${result.size} bytes in ${result.partCount} parts${suffix}`;
}

/** The Web UI's current details of an upload that ended without an object. */
export function endedDetails(outcome: UploadOutcomeKind, err: unknown): string {
  return `**${outcome}** — ${err instanceof Error ? err.message : String(err)}`;
}

/** The Web UI's current details while compensations run. */
export function compensatingDetails(steps: string[], bucket: string, key: string): string {
  return `**compensating** — undoing ${steps.join(', ') || 'nothing'} for s3://${bucket}/${key}`;
}
