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
 * Invariant: a buffer comes back only once nothing reads it any more (its UploadPart or PutObject
 * settled); a buffer handed out holds another upload's bytes, so only the bytes written into it
 * may be sent (callers send `subarray(0, filled)`).
 */
export class PartBuffers {
  private readonly idle = new Map<number, Buffer[]>();

  /** @param maxIdle buffers of each size kept for the next part */
  constructor(private readonly maxIdle: number) {}

  /** A buffer of `size` bytes, reused when one is idle. Its contents are undefined. */
  take(size: number): Buffer {
    return this.idle.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
  }

  /** Hands a buffer back once nothing reads it any more. */
  give(buffer: Buffer): void {
    const list = this.idle.get(buffer.length) ?? [];
    if (list.length < this.maxIdle) list.push(buffer);
    this.idle.set(buffer.length, list);
  }
}
