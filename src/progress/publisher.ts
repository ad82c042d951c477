/**
 * Publishing progress from places that must never wait for it: the worker's activities. An
 * upload's heartbeat publishes here on every part and tick; the publisher sends in the background
 * on the same channels the gateway's bus uses (`<prefix>progress:<tenant>:<uploadId>`), so a
 * gateway stream, `upload-saga upload` or any subscriber follows uploads started from application
 * code as promptly as gateway uploads.
 *
 * Invariants:
 * - `publish` is synchronous, never throws and never waits: an upload's speed does not depend on
 *   Redis. At most one pipeline is in flight; what arrives meanwhile waits in a queue.
 * - The queue is bounded: one entry per upload (a newer observation of the same upload is merged
 *   into the queued one, so only the latest bytes and phase are sent), at most `maxQueued` uploads;
 *   beyond that the oldest entry is dropped and counted. An outage costs observations, never memory.
 * - Errors (Redis down, a command rejected) go to `onError` at most once per `errorIntervalMs`,
 *   with the number of errors suppressed since the last report; they never reach an activity.
 * - Progress is a hint, the workflow is the truth: a dropped observation is corrected by the next
 *   one or by the reader's own read of the workflow.
 */
import type { Redis } from 'ioredis';
import { progressChannel, DEFAULT_CHANNEL_PREFIX } from './bus';
import type { ProgressObservation } from './view';

/** Sends progress observations in the background (see the module comment). */
export interface ProgressPublisher {
  /** Queues an observation for sending; returns at once and never throws. */
  publish(observation: ProgressObservation): void;
  /** Counts, for tests and metrics: sent, dropped from a full queue, failed to send. */
  readonly stats: Readonly<ProgressPublisherStats>;
  /** Sends what is queued (waiting at most `timeoutMs`), then refuses further observations. Does not close Redis. */
  close(timeoutMs?: number): Promise<void>;
}

/** What a {@link ProgressPublisher} has done so far. */
export interface ProgressPublisherStats {
  sent: number;
  dropped: number;
  failed: number;
}

/** Options of {@link createProgressPublisher}. */
export interface ProgressPublisherOptions {
  /**
   * The Redis to publish on; not closed by the publisher. Prefer one with `enableOfflineQueue:
   * false` (see createProgressRedis): while Redis is away, sends then fail at once instead of
   * waiting in ioredis's own unbounded queue.
   */
  redis: Redis;
  /** Prefix of the channel names (the gateway's `channelPrefix`). @default 'upload-saga:' */
  channelPrefix?: string;
  /** Most uploads with an observation waiting to be sent. @default 256 */
  maxQueued?: number;
  /** Receives send errors, at most once per `errorIntervalMs`, with how many were suppressed before. @default ignore */
  onError?: (error: Error, suppressed: number) => void;
  /** Least time between two `onError` calls. @default 30000 */
  errorIntervalMs?: number;
}

/** A publisher on `options.redis`; see {@link ProgressPublisher}. */
export function createProgressPublisher(options: ProgressPublisherOptions): ProgressPublisher {
  return new RedisProgressPublisher(options);
}

class RedisProgressPublisher implements ProgressPublisher {
  readonly stats: ProgressPublisherStats = { sent: 0, dropped: 0, failed: 0 };
  private readonly queue = new Map<string, ProgressObservation>();
  private readonly prefix: string;
  private readonly maxQueued: number;
  private readonly report: (error: Error) => void;
  private sending: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: ProgressPublisherOptions) {
    this.prefix = options.channelPrefix ?? DEFAULT_CHANNEL_PREFIX;
    this.maxQueued = Math.max(1, options.maxQueued ?? 256);
    this.report = rateLimitedErrors(options.errorIntervalMs ?? 30_000, options.onError);
  }

  publish(observation: ProgressObservation): void {
    if (this.closed) return;
    const channel = progressChannel(this.prefix, observation.tenant, observation.uploadId);
    const queued = this.queue.get(channel);
    if (queued) {
      // Same upload: newer fields win, older ones (a phase, the total) stay known.
      this.queue.set(channel, { ...queued, ...observation });
    } else {
      if (this.queue.size >= this.maxQueued) {
        const oldest = this.queue.keys().next().value as string;
        this.queue.delete(oldest);
        this.stats.dropped++;
      }
      this.queue.set(channel, observation);
    }
    this.sending ??= this.drain().finally(() => (this.sending = undefined));
  }

  async close(timeoutMs = 2_000): Promise<void> {
    this.closed = true;
    if (!this.sending) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.sending, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Sends the queue as pipelines, one at a time, until it is empty. Never rejects. */
  private async drain(): Promise<void> {
    // Let the caller's synchronous burst (a part finished, a heartbeat) land in one pipeline.
    await Promise.resolve();
    while (this.queue.size > 0) {
      const batch = [...this.queue];
      this.queue.clear();
      const pipeline = this.options.redis.pipeline();
      for (const [channel, observation] of batch) pipeline.publish(channel, JSON.stringify(observation));
      try {
        const results = (await pipeline.exec()) ?? [];
        for (const [error] of results) {
          if (error) this.fail(error);
          else this.stats.sent++;
        }
      } catch (err) {
        this.stats.failed += batch.length - 1;
        this.fail(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  private fail(error: Error): void {
    this.stats.failed++;
    this.report(error);
  }
}

/**
 * `report` calls `onError` at most once per `intervalMs`, with how many errors it suppressed since
 * the previous call; it never throws (a failing logger must not reach an upload either).
 */
export function rateLimitedErrors(
  intervalMs: number,
  onError: ((error: Error, suppressed: number) => void) | undefined,
): (error: Error) => void {
  let lastAt = -Infinity;
  let suppressed = 0;
  return (error) => {
    const now = Date.now();
    if (now - lastAt < intervalMs) {
      suppressed++;
      return;
    }
    lastAt = now;
    const count = suppressed;
    suppressed = 0;
    try {
      onError?.(error, count);
    } catch {
      // ignored, see above
    }
  };
}
