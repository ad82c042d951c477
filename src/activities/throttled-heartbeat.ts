/**
 * A heartbeat sent at most once per interval, for activities that would otherwise beat once per
 * item: each heartbeat encodes its whole details (a chunk's settled items so far), so one per item
 * costs time quadratic in the chunk's size, and the SDK's core sends only some to the server anyway.
 * The caller beats once more, unthrottled, at the end.
 */
import type { Context } from '@temporalio/activity';

/** Returns `beat(details)`, which heartbeats when `everyMs` passed since the last one it sent. */
export function throttledHeartbeat(context: Pick<Context, 'heartbeat'>, everyMs: number): (details: unknown) => void {
  let last = 0;
  return (details) => {
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    context.heartbeat(details);
  };
}
