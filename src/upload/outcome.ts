/**
 * What an upload reports: its result, its live progress, and the webhook events it sends.
 * Plain data shared by the workflow, the client and webhook receivers. No secrets, ever.
 */
import type { SagaFailureReport } from '../saga/workflow';
import type { ChecksumAlgorithm } from './request';

/** The step an upload is at (or was at when it finished). */
export type UploadPhase =
  | 'inspect-source'
  | 'reserve-space'
  | 'upload-parts'
  | 'verify'
  // the small-file fast path (one PutObject, src/upload/one-put.ts)
  | 'put-object'
  | 'verify-object'
  | 'merge'
  | 'commit-quota'
  | 'notify'
  | 'compensating'
  | 'done'
  // gateway uploads through the HTTP gateway (src/workflows/gateway-upload-workflow.ts)
  | 'open-multipart'
  | 'receive-parts'
  | 'delete-staged'
  // tus concatenation (src/upload/concatenation.ts): a partial stores its bytes and waits; a final joins them
  | 'store-partial'
  | 'await-join'
  | 'join-partials'
  | 'settle-partials'
  // the UploadPhase search attribute only, while the upload holds (src/upload/pause.ts)
  | 'paused'
  | 'waiting-for-quota';

/** `expired`: a gateway upload not finished before its expiry, compensated. */
export type UploadOutcomeKind = 'running' | 'completed' | 'compensated' | 'cancelled' | 'failed' | 'expired';

/** What a finished upload returns: its outcome and the object written. */
export interface UploadResult {
  uploadId: string;
  tenant: string;
  workflowId: string;
  bucket: string;
  key: string;
  size: number;
  etag: string;
  versionId?: string;
  /**
   * The checksum S3 reports for the object: `COMPOSITE` over parts ("<base64>-<parts>"), or
   * `FULL_OBJECT` (the CRC of the whole object; CRC64NVME, or a CRC given as expectedChecksum).
   * Absent for server-side copies (no additional checksum).
   */
  checksum?: { algorithm: ChecksumAlgorithm; value: string; type?: 'COMPOSITE' | 'FULL_OBJECT' };
  /** SHA-256 of the whole object (hex), when the request gave an expected checksum. */
  sha256?: string;
  partCount: number;
  partSize: number;
  /** Present when the part size was raised to stay within 10,000 parts. */
  partSizeAdjusted?: { requestedPartSize: number; reason: string };
  /** Milliseconds spent in each step. */
  timings: Record<string, number>;
  notification: { status: 'delivered' | 'failed' | 'not-requested'; error?: string };
}

/** An upload's progress as its workflow reports it. */
export interface UploadProgress {
  phase: UploadPhase;
  outcome: UploadOutcomeKind;
  totalBytes?: number;
  totalParts?: number;
  /** Parts and bytes of finished batches. The running batch's share is in its heartbeat. */
  partsUploaded: number;
  bytesUploaded: number;
  batchesDone: number;
  batchesTotal?: number;
  /** S3's id of the multipart upload, once open. */
  multipartUploadId?: string;
  /** Present once the upload was paused: whether it is paused now, and whether it holds (see src/upload/pause.ts). */
  pause?: { paused: boolean; held: boolean; since?: string; reason?: string };
  /** Present while the upload waits for its tenant's quota (`onQuota: 'wait'`). */
  waitingForQuota?: { since: string; deadline: string; reason: string };
}

/** The webhook events an upload sends. */
export type UploadEventType = 'upload.completed' | 'upload.failed' | 'upload.cancelled';

/** The JSON body of a webhook event. */
export interface UploadEvent {
  type: UploadEventType;
  /** Unique per upload and event type: also the `Idempotency-Key` header. */
  id: string;
  uploadId: string;
  tenant: string;
  workflowId: string;
  bucket: string;
  key: string;
  /** ISO time the workflow produced the event. */
  occurredAt: string;
  result?: Omit<UploadResult, 'notification'>;
  failure?: SagaFailureReport;
}
