/**
 * One stream's feed of progress events, whatever carries them to the client (SSE, WebSocket): the
 * upload's state read from the workflow, the bus subscription that makes it prompt, a low-rate
 * poll for what no gateway sees, and the {@link ProgressView} that turns observations into events.
 *
 * Invariants: {@link ProgressFeed.open} reads the state before subscribing, so an unknown upload or
 * another tenant's is refused (UploadNotFoundError, 404) before anything is subscribed, and reads
 * it again once subscribed, so nothing between the two is missed; an upload known merged is read
 * from its mark (merged-marks.ts: no query waiting while its saga's local activities hold the
 * workflow task), and when that mark says running the workflow is polled at once, not only at the
 * next interval, so an end nobody marked yet is learnt; a bus that is down costs only
 * promptness (the poll goes on); after `close()` nothing is sent and nothing keeps running.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { FastifyBaseLogger } from 'fastify';
import type { ProgressBus } from '../progress/bus';
import { ProgressView, type ProgressEvent, type ProgressObservation } from '../progress/view';
import { markedObservation, pollObservation, type ProgressSource } from './progress-poll';

/** What a feed reads from and how often; see ProgressStreamOptions for the defaults. */
export interface ProgressFeedOptions {
  bus: ProgressBus;
  uploads: ProgressSource;
  s3?: S3Client;
  pollIntervalMs: number;
  rateWindowMs?: number;
}

/** The feed options of a stream route's options: the poll interval defaults to 2 s. */
export function feedOptionsOf(options: {
  bus: ProgressBus;
  uploads: ProgressSource;
  s3?: S3Client;
  pollIntervalMs?: number;
  rateWindowMs?: number;
}): ProgressFeedOptions {
  return {
    bus: options.bus,
    uploads: options.uploads,
    ...(options.s3 ? { s3: options.s3 } : {}),
    pollIntervalMs: options.pollIntervalMs ?? 2_000,
    ...(options.rateWindowMs ? { rateWindowMs: options.rateWindowMs } : {}),
  };
}

/** The events of one upload for one stream, until its outcome is known or the stream closes. */
export class ProgressFeed {
  private view: ProgressView | undefined;
  private readonly pending: ProgressObservation[] = [];
  private unsubscribe: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private send: ((event: ProgressEvent) => void) | undefined;
  private onEnded: (() => void) | undefined;
  private first: ProgressObservation | undefined;
  /** The first observation came from a merged mark that says running: the workflow is asked at once for the rest. */
  private firstFromRunningMark = false;
  private closed = false;

  private constructor(
    private readonly options: ProgressFeedOptions,
    readonly tenant: string,
    readonly uploadId: string,
  ) {}

  /**
   * Reads the upload's state, subscribes to its observations, reads again.
   * @throws UploadNotFoundError for unknown ids and other tenants' uploads (before subscribing)
   */
  static async open(options: ProgressFeedOptions, tenant: string, uploadId: string, log: FastifyBaseLogger): Promise<ProgressFeed> {
    const feed = new ProgressFeed(options, tenant, uploadId);
    // An upload known merged is read from its mark: the first event does not wait for its saga's held workflow task.
    const read = async () => {
      const marked = await markedObservation(options.uploads, tenant, uploadId);
      feed.firstFromRunningMark = marked?.outcome === 'running';
      return marked ?? (await pollObservation(options.uploads, options.s3, tenant, uploadId));
    };
    feed.first = await read();
    try {
      feed.unsubscribe = await options.bus.subscribe(tenant, uploadId, (observation) => feed.apply(observation));
      feed.first = await read();
    } catch (err) {
      // The bus is down: the stream still works from the poll alone.
      log.warn({ err }, 'progress stream without the bus');
    }
    return feed;
  }

  /**
   * Starts sending: the first event at once, then one per noticeable change; `onEnded` after the
   * final event (the outcome is known). Starts the poll unless the upload already ended.
   */
  start(send: (event: ProgressEvent) => void, onEnded: () => void): void {
    if (this.closed || this.view) return;
    this.send = send;
    this.onEnded = onEnded;
    const view = new ProgressView(this.uploadId, this.first!, this.options.rateWindowMs);
    for (const observation of this.pending.splice(0)) view.apply(observation);
    this.view = view;
    this.flush();
    if (this.closed) return;
    let polling = false;
    const poll = () => {
      if (polling || this.closed) return;
      polling = true;
      pollObservation(this.options.uploads, this.options.s3, this.tenant, this.uploadId)
        .then((observation) => this.apply(observation))
        .catch(() => undefined) // Temporal briefly away: the next poll tries again
        .finally(() => (polling = false));
    };
    this.timer = setInterval(poll, this.options.pollIntervalMs);
    // A mark that says running may predate the end (nobody saw it yet, and its bus message went before this stream): ask now.
    if (this.firstFromRunningMark) poll();
  }

  /** Takes in an observation (from the bus, the poll, or the stream's own action such as a cancel). */
  apply(observation: ProgressObservation): void {
    if (this.closed) return;
    if (!this.view) {
      this.pending.push(observation);
      return;
    }
    this.view.apply(observation);
    this.flush();
  }

  /** Stops the poll and the subscription; idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    void this.unsubscribe?.().catch(() => undefined);
  }

  private flush(): void {
    const view = this.view;
    if (this.closed || !view) return;
    const event = view.next(Date.now());
    if (event) this.send?.(event);
    if (view.ended) {
      this.close();
      this.onEnded?.();
    }
  }
}
