/**
 * Part-sized buffers reused from one part to the next instead of allocated per part: by the
 * gateway's tus PATCHes (kept across PATCHes) and by upload-parts (for one activity run).
 *
 * Why: a fresh multi-MiB buffer per part costs more CPU than anything else done with the bytes:
 * the kernel maps and zeroes new pages, and V8 answers that much memory outside its heap with full
 * collections (profiled, in the gateway and in the worker alike: garbage collection was the largest
 * cost, ahead of SigV4's SHA-256). At most `maxIdle` buffers of each size are kept idle, so memory
 * stays at `maxIdle` × part size between parts.
 *
 * Shared buffers (`shared`, the gateway's): backed by a SharedArrayBuffer each, so that a worker
 * thread can hash a part in place (hash-threads.ts) instead of WebCrypto copying it first.
 *
 * Invariant: a buffer comes back only once nothing reads it any more (its UploadPart or PutObject
 * settled); a buffer handed out holds another upload's bytes, so only the bytes written into it
 * may be sent (callers send `subarray(0, filled)`). A shared buffer given back while a thread
 * still hashes it is kept out of reach until that hash ended.
 */
import { unreadBy } from './hash-threads';

export class PartBuffers {
  private readonly idle = new Map<number, Buffer[]>();

  /**
   * @param maxIdle buffers of each size kept for the next part
   * @param options.shared back each buffer by a SharedArrayBuffer
   */
  constructor(
    private readonly maxIdle: number,
    private readonly options: { shared?: boolean } = {},
  ) {}

  /** A buffer of `size` bytes, reused when one is idle. Its contents are undefined. */
  take(size: number): Buffer {
    const reused = this.idle.get(size)?.pop();
    if (reused) return reused;
    return this.options.shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafeSlow(size);
  }

  /** Hands a buffer back once nothing reads it any more (a thread's hash over it: once that ended). */
  give(buffer: Buffer): void {
    const hashing = unreadBy(buffer.buffer);
    if (hashing) {
      void hashing.then(() => this.give(buffer));
      return;
    }
    const list = this.idle.get(buffer.length) ?? [];
    if (list.length < this.maxIdle) list.push(buffer);
    this.idle.set(buffer.length, list);
  }
}
