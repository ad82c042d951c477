/**
 * V8 settings for a process whose main job is receiving request bodies (the `gateway` command).
 *
 * Node's HTTP parser hands every piece of a request body to JavaScript as a Buffer of its own,
 * allocated outside V8's heap. V8 counts such memory apart from its heap and, by default, starts a
 * full mark-compact of the whole heap each time it grew by 64 MiB since the last one, whether or
 * not the pieces are already garbage: every 64 MiB received paid for marking the gateway's
 * 50–60 MB heap (Temporal client, AWS SDK, Fastify), on its event loop and V8's helper threads.
 * With `--external-memory-accounted-in-global-limit` that memory counts towards V8's global limit
 * instead (heap and external memory together, grown in proportion to what survived the last
 * collection), so far fewer full collections run (a bench run of the gateway's three tus rows: 2
 * instead of 12; docs/explanation/performance.md has the figures).
 *
 * Invariant: the memory bound of the body-stream caps (body-streams.ts) is kept with this setting;
 * `test/gateway/body-streams.test.ts` measures it on a gateway process started by this command.
 */
import { setFlagsFromString } from 'node:v8';

/** The V8 flags the gateway command sets for its own process. */
export const GATEWAY_V8_FLAGS = ['--external-memory-accounted-in-global-limit'] as const;

/**
 * Sets {@link GATEWAY_V8_FLAGS} in this process. V8 reads this flag whenever it computes its
 * limits, so setting it at start-up is enough; call it only in a process you own (it changes the
 * garbage collector for everything in the process).
 */
export function applyGatewayHeapSettings(): void {
  for (const flag of GATEWAY_V8_FLAGS) setFlagsFromString(flag);
}
