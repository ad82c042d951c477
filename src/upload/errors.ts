/**
 * The named failures of an upload. Each has a stable `type` (what retry policies, the Web UI and
 * application code match on) and is either permanent (non-retryable: bad input, quota, integrity)
 * or transient. Activities throw them as `ApplicationFailure`s so the type survives the trip
 * through Temporal; client-side validation throws {@link InvalidUploadRequestError} directly.
 */
import { ApplicationFailure } from '@temporalio/common';

/** Every failure type an upload can end with, besides `S3.<Code>` for errors from the store. */
export const UploadFailureType = {
  InvalidUploadRequest: 'InvalidUploadRequest',
  SourceNotFound: 'SourceNotFound',
  SourceUnreadable: 'SourceUnreadable',
  SourceNotAllowed: 'SourceNotAllowed',
  SourceSizeMismatch: 'SourceSizeMismatch',
  SourceChanged: 'SourceChanged',
  BucketNotFound: 'BucketNotFound',
  QuotaExceeded: 'QuotaExceeded',
  PartMissing: 'PartMissing',
  ChecksumMismatch: 'ChecksumMismatch',
  ObjectAlreadyExists: 'ObjectAlreadyExists',
  WebhookRejected: 'WebhookRejected',
  WebhookUnavailable: 'WebhookUnavailable',
  /** The webhook URL is invalid or points at an address the worker may not reach (see UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS). */
  WebhookNotAllowed: 'WebhookNotAllowed',
  /** The destination key is outside the tenant's prefix (UPLOAD_SAGA_TENANT_KEY_PREFIX). */
  DestinationNotAllowed: 'DestinationNotAllowed',
  CleanupIncomplete: 'CleanupIncomplete',
  /** A delete request that is malformed (tenant, bucket or key). */
  InvalidDeleteRequest: 'InvalidDeleteRequest',
  /** The object to delete is outside the tenant's prefix, or was stored by an upload of another tenant. */
  ObjectNotAllowed: 'ObjectNotAllowed',
} as const;
export type UploadFailureType = (typeof UploadFailureType)[keyof typeof UploadFailureType];

/** Permanent failures: retrying cannot help, so the saga compensates at once. */
export const PERMANENT_UPLOAD_FAILURES: UploadFailureType[] = [
  UploadFailureType.InvalidUploadRequest,
  UploadFailureType.SourceNotFound,
  UploadFailureType.SourceUnreadable,
  UploadFailureType.SourceNotAllowed,
  UploadFailureType.SourceSizeMismatch,
  UploadFailureType.SourceChanged,
  UploadFailureType.BucketNotFound,
  UploadFailureType.QuotaExceeded,
  UploadFailureType.PartMissing,
  UploadFailureType.ChecksumMismatch,
  UploadFailureType.ObjectAlreadyExists,
  UploadFailureType.WebhookRejected,
  UploadFailureType.WebhookNotAllowed,
  UploadFailureType.DestinationNotAllowed,
  UploadFailureType.InvalidDeleteRequest,
  UploadFailureType.ObjectNotAllowed,
];

/** A permanent failure of the given type. */
export function permanentFailure(type: UploadFailureType, message: string, details?: unknown[]): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true, details });
}

/** A transient failure of the given type: Temporal retries it per the step's policy. */
export function transientFailure(
  type: UploadFailureType | string,
  message: string,
  options: { details?: unknown[]; cause?: Error; retryAfterMs?: number } = {},
): ApplicationFailure {
  const failure = ApplicationFailure.create({ type, message, nonRetryable: false, details: options.details, cause: options.cause });
  if (options.retryAfterMs !== undefined) Object.assign(failure, { retryAfterMs: options.retryAfterMs });
  return failure;
}

/** One problem with an upload request: which field, what was wrong, what is allowed. */
export interface RequestProblem {
  field: string;
  message: string;
}

/** Thrown by client-side validation, before a workflow starts or a byte moves. */
export class InvalidUploadRequestError extends Error {
  override readonly name = 'InvalidUploadRequestError';
  readonly type = UploadFailureType.InvalidUploadRequest;
  constructor(readonly problems: RequestProblem[]) {
    super(`invalid upload request: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
  }
}

/** Thrown by client-side validation of a delete, before a workflow starts. */
export class InvalidDeleteRequestError extends Error {
  override readonly name = 'InvalidDeleteRequestError';
  readonly type = UploadFailureType.InvalidDeleteRequest;
  constructor(readonly problems: RequestProblem[]) {
    super(`invalid delete request: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
  }
}
