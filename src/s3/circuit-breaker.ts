/**
 * Puts an S3 client behind the process's circuit breaker for its endpoint: every request the
 * client sends passes through the breaker, whichever activity sends it.
 *
 * Why a middleware, and why below the SDK's retries: it is the one place every S3 call passes (no
 * activity can forget it), and placed after the SDK's `retryMiddleware` it sees each HTTP attempt,
 * so the breaker counts requests that really went to the store. Once it opens, the SDK's next
 * attempt fails at once with {@link CircuitOpenError}, which the SDK does not retry; the activity
 * turns it into `S3.CircuitOpen` (see classify-error.ts), retried by Temporal after the time left
 * until the half-open probe. Only `storeDown` errors count (see {@link classifyS3Error}).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { CircuitBreakers } from '../resilience/circuit-breakers';
import { classifyS3Error } from './classify-error';

/** Name of the middleware in the client's stack. */
export const S3_BREAKER_MIDDLEWARE = 'uploadSagaCircuitBreaker';

/** The breaker target of an S3 endpoint: `s3:<endpoint>`, or `s3:aws/<region>` for AWS S3. */
export function s3BreakerTarget(config: { endpoint?: string; region: string }): string {
  return config.endpoint ? `s3:${new URL(config.endpoint).origin}` : `s3:aws/${config.region}`;
}

/** True when an S3 error means the store is down (what the breaker counts). */
export function isS3Outage(err: unknown): boolean {
  return classifyS3Error(err).storeDown;
}

/**
 * Adds the breaker of `target` (see {@link s3BreakerTarget}) to `client`'s middleware stack.
 * Idempotent: a client that has it already is left as it is. @returns `client`
 */
export function withS3CircuitBreaker(client: S3Client, breakers: CircuitBreakers, target: string): S3Client {
  if (!breakers.options.enabled) return client;
  // Typed by hand: the stack's own types live in @smithy/types, not a dependency of ours.
  const middleware = (next: (args: unknown) => Promise<unknown>) => (args: unknown) => breakers.run(target, isS3Outage, () => next(args));
  try {
    client.middlewareStack.add(middleware as never, { step: 'finalizeRequest', priority: 'low', name: S3_BREAKER_MIDDLEWARE } as never);
  } catch (err) {
    // the stack refuses a second middleware of the same name: this client is guarded already
    if (!client.middlewareStack.identify().some((entry) => entry.startsWith(S3_BREAKER_MIDDLEWARE))) throw err;
  }
  return client;
}
