/**
 * Part-sized buffers that tus PATCHes reuse instead of allocating one per part.
 *
 * Why: a PATCH of 128 MiB in 5 MiB parts allocated 26 fresh 5 MiB buffers, and V8 answers that
 * much memory outside its heap with full collections: in a profile of the gateway, garbage
 * collection took more CPU than anything the upload itself did. Reused buffers cost nothing after
 * the first PATCH. At most `maxIdle` buffers of each size are kept between PATCHes, so an idle
 * gateway holds at most `maxIdle` × part size.
 *
 * Invariant: a buffer comes back only once nothing reads it any more (its UploadPart or PutObject
 * settled); a buffer handed out holds another upload's bytes, so only the bytes written into it
 * may be sent (callers send `subarray(0, filled)`).
 */
export class PartBuffers {
  private readonly idle = new Map<number, Buffer[]>();

  /** @param maxIdle buffers of each size kept for the next PATCH */
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
