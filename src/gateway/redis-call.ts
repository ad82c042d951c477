/**
 * Every Redis call a request waits for (rate limits, tus locks, presigned sessions) goes through
 * {@link redisCall}: it fails with {@link RedisUnavailableError} — 503 with `Retry-After` — when
 * Redis errors or does not answer within {@link REDIS_CALL_TIMEOUT_MS}.
 *
 * Why: ioredis queues commands while it reconnects and fails them only after several reconnect
 * attempts; a network that drops packets (no reset) would hold a request far longer. A request
 * that needs Redis must neither hang nor answer 500 ("the gateway failed") when Redis is away: it
 * answers "unavailable, retry later", and ioredis reconnects by itself when Redis returns.
 */
import { RedisUnavailableError } from './errors';

/** Longest wait for one Redis call a request depends on. */
export const REDIS_CALL_TIMEOUT_MS = 2_000;
/** `Retry-After` of the 503 answered when Redis is unavailable. */
export const REDIS_RETRY_AFTER_SECONDS = 5;

/**
 * `call()`, bounded in time. `what` names what needed Redis (e.g. "rate limit") in the answer.
 * @throws RedisUnavailableError when the call fails or takes longer than `timeoutMs`
 */
export async function redisCall<T>(what: string, call: () => Promise<T>, timeoutMs = REDIS_CALL_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([call(), timeout]);
  } catch (err) {
    throw new RedisUnavailableError(what, REDIS_RETRY_AFTER_SECONDS, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
