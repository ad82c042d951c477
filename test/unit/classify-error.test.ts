import { S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { CircuitOpenError } from '../../src/resilience/circuit-breakers';
import { classifyS3Error, s3Failure, THROTTLE_MIN_DELAY_MS } from '../../src/s3/classify-error';

function s3Error(name: string, status: number, headers: Record<string, string> = {}) {
  const err = new S3ServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    message: `${name} happened`,
  });
  // The SDK attaches the raw response (with its headers) after construction.
  return Object.assign(err, { $response: { statusCode: status, headers } });
}

describe('S3 error classification', () => {
  it.each(['AccessDenied', 'NoSuchBucket', 'InvalidPart', 'EntityTooSmall', 'BadDigest', 'InvalidDigest', 'XAmzContentChecksumMismatch'])(
    'treats %s as permanent',
    (code) => {
      expect(classifyS3Error(s3Error(code, 400))).toMatchObject({ type: `S3.${code}`, retryable: false });
    },
  );

  it.each([
    ['InternalError', 500],
    ['ServiceUnavailable', 503],
    ['RequestTimeout', 400],
    ['OperationAborted', 409],
  ])('retries %s (HTTP %i)', (code, status) => {
    expect(classifyS3Error(s3Error(code, status)).retryable).toBe(true);
  });

  it('gives throttling a minimum delay and honours a longer Retry-After', () => {
    expect(classifyS3Error(s3Error('SlowDown', 503))).toMatchObject({ retryable: true, retryAfterMs: THROTTLE_MIN_DELAY_MS });
    expect(classifyS3Error(s3Error('SlowDown', 503, { 'retry-after': '7' })).retryAfterMs).toBe(7000);
  });

  it('retries connection resets and timeouts', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(classifyS3Error(reset)).toMatchObject({ type: 'S3.NetworkError', retryable: true });
    expect(classifyS3Error(Object.assign(new Error('timed out'), { name: 'TimeoutError' })).retryable).toBe(true);
  });

  it('calls a reset after the SDK gave up a network error, not an S3 answer', () => {
    // What @aws-sdk/client-s3 rejects with when toxiproxy resets every connection (seen in test/faults/fault-helpers.test.ts).
    const sdkReset = Object.assign(new Error('read ECONNRESET'), {
      name: 'TimeoutError',
      code: 'ECONNRESET',
      $metadata: { attempts: 3, totalRetryDelay: 71 },
    });
    expect(classifyS3Error(sdkReset)).toMatchObject({ type: 'S3.NetworkError', retryable: true, message: 'ECONNRESET: read ECONNRESET' });
  });

  it('builds a failure that names the operation and keeps the hint', () => {
    const failure = s3Failure('UploadPart 3 of s3://b/k', s3Error('SlowDown', 503));
    expect(failure.type).toBe('S3.SlowDown');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toBe('UploadPart 3 of s3://b/k failed: SlowDown (HTTP 503): SlowDown happened');
    expect((failure as unknown as { retryAfterMs: number }).retryAfterMs).toBe(THROTTLE_MIN_DELAY_MS);
    expect(s3Failure('x', s3Error('AccessDenied', 403)).nonRetryable).toBe(true);
  });

  it.each([
    ['a 5xx', s3Error('InternalError', 500), true],
    ['a 503 SlowDown', s3Error('SlowDown', 503), true],
    ['a 429', s3Error('TooManyRequests', 429), true],
    ['a connection reset', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    ['AccessDenied', s3Error('AccessDenied', 403), false],
    ['NoSuchKey', s3Error('NoSuchKey', 404), false],
    ['a checksum mismatch', s3Error('BadDigest', 400), false],
    ['RequestTimeout (retried, but an answer)', s3Error('RequestTimeout', 400), false],
    ['an abort', Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }), false],
  ])('says whether %s means the store is down (what a circuit breaker counts)', (_, err, down) => {
    expect(classifyS3Error(err).storeDown).toBe(down);
  });

  it('turns an open breaker into a retryable S3.CircuitOpen whose next retry waits for the probe', () => {
    const failure = s3Failure('ListParts of s3://b/k', new CircuitOpenError('s3:http://127.0.0.1:9000', 4_200));
    expect(failure.type).toBe('S3.CircuitOpen');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.nextRetryDelay).toBe(4_200);
    expect((failure as unknown as { retryAfterMs: number }).retryAfterMs).toBe(4_200);
    expect(classifyS3Error(new CircuitOpenError('t', 1)).storeDown).toBe(false);
  });
});
