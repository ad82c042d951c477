/**
 * Turns an error from the AWS SDK (or the network under it) into a Temporal failure with a stable
 * type: `S3.<Code>` (e.g. `S3.AccessDenied`, `S3.SlowDown`), or `S3.NetworkError`.
 *
 * The split follows what retrying can change. Client errors (4xx: AccessDenied, NoSuchBucket,
 * InvalidPart, EntityTooSmall, BadDigest, checksum mismatches, …) are permanent: the same request
 * will fail the same way, so the saga compensates at once. Server errors (5xx), throttling
 * (SlowDown, 429, 503), S3's own `RequestTimeout` (a 400 that means "send it again"), timeouts
 * and connection resets are transient and retried with backoff; throttling carries a minimum
 * delay so a struggling store is given room.
 *
 * `storeDown` is the narrower question a circuit breaker asks (src/s3/circuit-breaker.ts): does
 * this error mean the store itself is down or overwhelmed (network errors, timeouts, 5xx,
 * throttling)? A 4xx, even a retryable one like `RequestTimeout`, is an answer from a living store.
 * An open breaker's {@link CircuitOpenError} becomes `S3.CircuitOpen`: retryable, with the time
 * left until the breaker's probe as its retry hint.
 */
import { ApplicationFailure } from '@temporalio/common';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { CircuitOpenError } from '../resilience/circuit-breakers';

/** 4xx codes that S3 documents as worth retrying. */
const RETRYABLE_CLIENT_CODES = new Set([
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'OperationAborted',
  'TooManyRequests',
  'Throttling',
  'ThrottlingException',
  'SlowDown',
  'RequestLimitExceeded',
]);
/** Throttling codes: wait at least this long, whatever the backoff says. */
const THROTTLE_CODES = new Set(['SlowDown', 'TooManyRequests', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded']);
export const THROTTLE_MIN_DELAY_MS = 2000;

const NETWORK_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

export interface ClassifiedS3Error {
  type: string;
  retryable: boolean;
  retryAfterMs?: number;
  httpStatus?: number;
  message: string;
  /** The error says the store is down or overwhelmed (what a circuit breaker counts). */
  storeDown: boolean;
}

function retryAfterHeaderMs(err: S3ServiceException): number | undefined {
  const headers = (err.$response as { headers?: Record<string, string> } | undefined)?.headers;
  const value = headers?.['retry-after'];
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

export function classifyS3Error(err: unknown): ClassifiedS3Error {
  if (err instanceof CircuitOpenError) {
    return { type: 'S3.CircuitOpen', retryable: true, retryAfterMs: err.retryAfterMs, message: err.message, storeDown: false };
  }
  // An answer from the store has an HTTP status. The SDK also attaches `$metadata` (attempts only)
  // to socket errors after its own retries, and names a reset `TimeoutError`: those are network errors.
  const answered =
    err instanceof S3ServiceException || (err instanceof Error && (err as S3ServiceException).$metadata?.httpStatusCode !== undefined);
  if (answered) {
    const e = err as S3ServiceException;
    const status = e.$metadata?.httpStatusCode;
    const code = e.name && e.name !== 'Error' ? e.name : status ? `Http${status}` : 'Unknown';
    const throttled = THROTTLE_CODES.has(code) || status === 429 || status === 503;
    const retryable = throttled || RETRYABLE_CLIENT_CODES.has(code) || status === undefined || status >= 500 || status === 408;
    const hinted = retryAfterHeaderMs(e);
    const retryAfterMs = throttled ? Math.max(hinted ?? 0, THROTTLE_MIN_DELAY_MS) : hinted;
    return {
      type: `S3.${code}`,
      retryable,
      httpStatus: status,
      message: `${code}${status ? ` (HTTP ${status})` : ''}: ${e.message || 'no message'}`,
      storeDown: throttled || status === undefined || status >= 500,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code && NETWORK_ERROR_CODES.has(code)) || err.name === 'TimeoutError' || /socket hang up|network|timed? ?out/i.test(err.message)) {
      return {
        type: 'S3.NetworkError',
        retryable: true,
        message: `${code ?? err.name}: ${err.message}`,
        storeDown: err.name !== 'AbortError',
      };
    }
    return { type: `S3.${err.name}`, retryable: true, message: err.message, storeDown: false };
  }
  return { type: 'S3.Unknown', retryable: true, message: String(err), storeDown: false };
}

/** The Temporal failure for an S3 error, naming the operation that failed. */
export function s3Failure(operation: string, err: unknown, details?: unknown[]): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const c = classifyS3Error(err);
  const failure = ApplicationFailure.create({
    type: c.type,
    message: `${operation} failed: ${c.message}`,
    nonRetryable: !c.retryable,
    details,
    cause: err instanceof Error ? err : undefined,
    // An open breaker knows when its probe is due: no retry before that.
    ...(err instanceof CircuitOpenError ? { nextRetryDelay: err.retryAfterMs } : {}),
  });
  if (c.retryAfterMs !== undefined) Object.assign(failure, { retryAfterMs: c.retryAfterMs });
  return failure;
}

/** True for the S3 error `code` (the SDK puts it in `name`). */
export function isS3Error(err: unknown, ...codes: string[]): boolean {
  if (!(err instanceof Error)) return false;
  const status = (err as S3ServiceException).$metadata?.httpStatusCode;
  return codes.includes(err.name) || (status !== undefined && codes.includes(`Http${status}`));
}
