/**
 * "Give up waiting after a while" for calls that may hang: a query is answered by a worker, so
 * with no worker running it waits until the server gives up. Read-only commands would rather
 * print what they know without it.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves with `promise`'s value, or `undefined` after `ms` or if it rejects. Never throws. */
export async function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  const timer = new AbortController();
  try {
    return await Promise.race([promise.catch(() => undefined), sleep(ms, undefined, { signal: timer.signal }).catch(() => undefined)]);
  } finally {
    timer.abort();
  }
}
