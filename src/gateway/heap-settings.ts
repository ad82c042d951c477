/**
 * Keeps V8 from marking the gateway's whole heap for every 64 MiB of request bodies it receives.
 *
 * Node's HTTP parser hands every piece of a request body to JavaScript as a Buffer of its own,
 * allocated outside V8's heap. The chunk writer copies each piece into a part buffer at once, so
 * the pieces die young; but they are small JavaScript objects, so the young generation they live
 * in fills slowly and is seldom collected, and meanwhile V8 sees their memory grow and, each time it
 * grew by 64 MiB, starts a full mark-compact of the whole heap: 50–60 MB (Temporal client, AWS SDK,
 * Fastify), marked on the event loop and on V8's helper threads, for memory a scavenge would have
 * freed. So the `gateway` command collects the young generation itself after every
 * {@link SCAVENGE_EVERY_BYTES} of body received ({@link bodyBytesReceived}): a scavenge of a few
 * milliseconds frees the pieces before V8 counts them as pressure.
 *
 * Invariant: the pieces received and not yet collected stay below {@link SCAVENGE_EVERY_BYTES} plus
 * what V8 allows before it collects on its own, so the memory bound of the body-stream caps
 * (body-streams.ts) holds as before; `test/gateway/body-streams.test.ts` measures it on a gateway
 * process started by the command.
 *
 * Why not a V8 flag: `--external-memory-accounted-in-global-limit` also ends those collections, but
 * lets the pieces pile up to V8's global limit, which grows with the part buffers in use: 16 bodies
 * at once peaked 200 MiB higher with it than without (docs/explanation/performance.md).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Body bytes between two scavenges: half of V8's 64 MiB step. */
export const SCAVENGE_EVERY_BYTES = 32 * 1024 * 1024;

type CollectGarbage = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let scavenge: (() => void) | undefined;
let sinceScavenge = 0;

/**
 * Makes {@link bodyBytesReceived} collect the young generation every {@link SCAVENGE_EVERY_BYTES}.
 * It exposes V8's `gc` function to this module (`--expose-gc`, taken from a fresh context so that
 * no global named `gc` appears): call it only in a process you own.
 */
export function applyGatewayHeapSettings(): void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as CollectGarbage;
  scavenge = () => gc({ type: 'minor' });
}

/** Counts `bytes` of request body received; a no-op unless {@link applyGatewayHeapSettings} ran. */
export function bodyBytesReceived(bytes: number): void {
  if (!scavenge) return;
  sinceScavenge += bytes;
  if (sinceScavenge < SCAVENGE_EVERY_BYTES) return;
  sinceScavenge = 0;
  scavenge();
}
