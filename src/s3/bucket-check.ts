/**
 * Which buckets HeadBucket found, remembered for a few seconds per worker: inspect-source asks the
 * store once per bucket and interval, not once per upload (under many small uploads a HeadBucket
 * each was a request per upload for MinIO and the worker). Concurrent checks of one bucket share
 * one request.
 *
 * Invariants: only a bucket that was found is remembered; a missing one, or any error, is asked
 * again by the next check, so a wrong bucket name is always refused before a byte moves. A bucket
 * deleted within the interval is found missing by the write instead (NoSuchBucket is permanent:
 * the upload fails and compensates, nothing is left behind).
 */
export class BucketCheck {
  private readonly foundUntil = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    /** Sends HeadBucket; rejects when the bucket is missing or cannot be checked. */
    private readonly head: (bucket: string) => Promise<unknown>,
    /** How long a found bucket is taken as existing. */
    private readonly ttlMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Resolves when `bucket` exists (asked now, or found within the interval); rejects with HeadBucket's error. */
  ensure(bucket: string): Promise<void> {
    const until = this.foundUntil.get(bucket);
    if (until !== undefined && until > this.now()) return Promise.resolve();
    const pending = this.inFlight.get(bucket);
    if (pending) return pending;
    const check = this.head(bucket)
      .then(() => {
        this.foundUntil.set(bucket, this.now() + this.ttlMs);
      })
      .finally(() => this.inFlight.delete(bucket));
    this.inFlight.set(bucket, check);
    return check;
  }
}
