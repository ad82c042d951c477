/**
 * What a progress stream shows and how it is computed: the event a client receives, the
 * observations replicas exchange, and the pure merge of observations into events (with the rate
 * over a sliding window). No I/O here: the bus carries observations, the route writes events.
 *
 * Invariant: the rate is computed where it is shown, from the times observations carry, so it
 * needs no shared state and decays to 0 when bytes stop.
 */
import type { GatewayUploadState } from '../upload/gateway-upload';
import type { UploadOutcomeKind, UploadPhase } from '../upload/outcome';

/** The stored object a progress event names, from an upload's result. */
export function storedObjectOf(result: {
  bucket: string;
  key: string;
  etag: string;
  size: number;
  versionId?: string;
}): ProgressEvent['object'] {
  return {
    bucket: result.bucket,
    key: result.key,
    etag: result.etag,
    size: result.size,
    ...(result.versionId ? { versionId: result.versionId } : {}),
  };
}

/** One event of the stream (`event: progress`, `data:` this as JSON). */
export interface ProgressEvent {
  uploadId: string;
  phase: UploadPhase;
  /** Bytes received so far (tus: the durable offset; presigned: the parts S3 holds); the size once verified. */
  bytes: number;
  /** The upload's length, when known (tus: always; presigned: once verified). */
  totalBytes?: number;
  /** Bytes per second over the last {@link ProgressStreamOptions.rateWindowMs}; 0 when nothing moves. */
  rateBytesPerSecond: number;
  /** `running` until the last event. */
  outcome: UploadOutcomeKind;
  /** The stored object, on the final event of a completed upload. */
  object?: { bucket: string; key: string; etag: string; size: number; versionId?: string };
  /** Why the upload ended without an object, on the final event (`<type>: <message>`). */
  error?: string;
  /** Epoch ms of the observation this event reflects. */
  at: number;
}

/** What one replica saw of an upload; fields left out are unknown to it. */
export interface ProgressObservation {
  tenant: string;
  uploadId: string;
  /** Epoch ms when it was observed. */
  at: number;
  phase?: UploadPhase;
  bytes?: number;
  totalBytes?: number;
  outcome?: UploadOutcomeKind;
  object?: ProgressEvent['object'];
  error?: string;
}

/** What the uploads service's state says about progress (bytes: the tus offset, or the verified size). */
export function observationOfState(state: GatewayUploadState, at: number = Date.now()): ProgressObservation {
  const result = state.result;
  return {
    tenant: state.tenant,
    uploadId: state.uploadId,
    at,
    phase: state.phase,
    outcome: state.outcome,
    ...(result ? { bytes: result.size, totalBytes: result.size } : { bytes: state.offset }),
    ...(!result && state.length !== undefined ? { totalBytes: state.length } : {}),
    ...(result ? { object: storedObjectOf(result) } : {}),
    ...(state.failure ? { error: `${state.failure.cause.type}: ${state.failure.cause.message}` } : {}),
  };
}

/**
 * Bytes per second over a sliding window of (time, bytes) samples. Pure: time is passed in.
 */
export class ProgressRateMeter {
  private samples: { at: number; bytes: number }[] = [];
  /** @param windowMs how far back samples count. @default 5000 */
  constructor(private readonly windowMs = 5_000) {}

  /** Records that `bytes` had been received at `at` (epoch ms). Out-of-order samples are dropped. */
  add(at: number, bytes: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && at < last.at) return;
    if (last && at === last.at) last.bytes = Math.max(last.bytes, bytes);
    else this.samples.push({ at, bytes });
    this.prune(at);
  }

  /** The rate as of `now`: bytes gained within the window divided by the window's span (0 with fewer than two samples). */
  rate(now: number): number {
    this.prune(now);
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last) return 0;
    // Time since the last sample counts too: when bytes stop, the rate falls towards 0.
    const span = Math.max(now, last.at) - first.at;
    if (span <= 0) return 0;
    return Math.max(0, Math.round(((last.bytes - first.bytes) * 1000) / span));
  }

  private prune(now: number): void {
    // Keep one sample older than the window as the baseline.
    while (this.samples.length > 2 && this.samples[1]!.at <= now - this.windowMs) this.samples.shift();
    if (this.samples.length === 2 && this.samples[1]!.at <= now - this.windowMs) this.samples.shift();
  }
}

/** Merges observations into the state a stream shows; pure apart from the rate meter it owns. */
export class ProgressView {
  private phase: UploadPhase;
  private bytes = 0;
  private totalBytes: number | undefined;
  private outcome: UploadOutcomeKind = 'running';
  private object: ProgressEvent['object'];
  private error: string | undefined;
  private lastAt = 0;
  private readonly meter: ProgressRateMeter;
  private lastSent: string | undefined;

  constructor(
    private readonly uploadId: string,
    first: ProgressObservation,
    rateWindowMs?: number,
  ) {
    this.meter = new ProgressRateMeter(rateWindowMs);
    this.phase = first.phase ?? 'receive-parts';
    this.apply(first);
  }

  /** True once the outcome is known: the next event is the last. */
  get ended(): boolean {
    return this.outcome !== 'running';
  }

  /** Takes in an observation. Stale phases (older than what is shown) are ignored; bytes never go back while running. */
  apply(o: ProgressObservation): void {
    if (this.ended) return;
    const fresh = o.at >= this.lastAt;
    if (o.outcome && o.outcome !== 'running') {
      // An outcome is final whatever its age.
      this.outcome = o.outcome;
      this.phase = o.phase ?? 'done';
      if (o.object) this.object = o.object;
      if (o.error) this.error = o.error;
    } else if (fresh && o.phase) {
      this.phase = o.phase;
    }
    if (o.totalBytes !== undefined) this.totalBytes = o.totalBytes;
    if (o.bytes !== undefined && (o.bytes >= this.bytes || this.ended)) {
      this.bytes = o.bytes;
      this.meter.add(o.at, o.bytes);
    }
    if (fresh) this.lastAt = o.at;
  }

  /** The event to send now, or undefined when nothing a client would notice changed since the last one. */
  next(now: number): ProgressEvent | undefined {
    const rate = this.ended ? 0 : this.meter.rate(now);
    const event: ProgressEvent = {
      uploadId: this.uploadId,
      phase: this.phase,
      bytes: this.bytes,
      ...(this.totalBytes !== undefined ? { totalBytes: this.totalBytes } : {}),
      rateBytesPerSecond: rate,
      outcome: this.outcome,
      ...(this.object ? { object: this.object } : {}),
      ...(this.error ? { error: this.error } : {}),
      at: Math.max(this.lastAt, 0),
    };
    // Rates within 1 % (or under 1 KiB/s apart) are the same to a reader.
    const signature = JSON.stringify({ ...event, at: 0, rateBytesPerSecond: Math.round(Math.log2(rate + 1024) * 100) });
    if (signature === this.lastSent) return undefined;
    this.lastSent = signature;
    return event;
  }
}
