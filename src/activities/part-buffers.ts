/**
 * Part-sized buffers, reused from one part to the next while an activity runs (the gateway keeps
 * its own across PATCHes, src/gateway/part-buffers.ts).
 *
 * A fresh multi-MiB buffer per part costs more CPU than anything else the worker does with the
 * bytes: the kernel maps and zeroes new pages for it, and V8 runs full collections to give the
 * memory back (profiled: garbage collection was the worker's largest cost, ahead of SigV4's
 * SHA-256). Reusing one buffer per part in flight removes both, and keeps memory at partSize ×
 * partConcurrency.
 *
 * A buffer goes back only after the request that carried it has settled, so no byte of it is
 * overwritten while the SDK may still send or re-send it. One that was part of a failure is not
 * given back (the caller simply does not call {@link PartBufferPool.giveBack}): the batch stops then.
 */
export class PartBufferPool {
  private readonly spare: Buffer[] = [];

  constructor(private readonly partSize: number) {}

  /** A buffer of `partSize` bytes, with whatever it last held. */
  take(): Buffer {
    return this.spare.pop() ?? Buffer.allocUnsafeSlow(this.partSize);
  }

  /** Returns a buffer nothing reads any more. */
  giveBack(buffer: Buffer): void {
    this.spare.push(buffer);
  }
}
