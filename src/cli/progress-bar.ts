/**
 * The upload progress bar: bytes done / total, rate, ETA and the saga's phase, drawn with cli-progress.
 *
 * Why it is built this way: cli-progress does the terminal work (redraw in place, width, cursor;
 * periodic plain lines when stderr is not a terminal, e.g. CI logs), while what the bar shows is
 * computed here from {@link LiveProgress} — the total is unknown until the worker has inspected
 * the source, so it falls back to the size the CLI saw locally, and the rate/ETA come from a
 * time-window {@link RateMeter}. The bar writes to stderr so stdout stays clean for the result.
 */
import { SingleBar } from 'cli-progress';
import type { LiveProgress } from '../client';
import { formatBytes, formatDuration, formatRate } from './format';
import { RateMeter } from './rate-meter';

/** Options of {@link UploadProgressBar}. */
export interface UploadProgressBarOptions {
  /** @default process.stderr */
  stream?: NodeJS.WritableStream;
  /** Total shown until the worker reports the source's size (e.g. the local file's size). @default unknown */
  fallbackTotal?: number;
  /** Interval of the plain progress lines when the stream is not a terminal. @default 2000 ms */
  nonTtyIntervalMs?: number;
  /** Characters of the bar itself. @default 30 */
  barSize?: number;
}

/** Width of the phase column: the longest phase name (`inspect-source`). */
const PHASE_WIDTH = 14;

/** A progress bar for one upload. Call {@link update} with each poll, then {@link finish} or {@link stop}. */
export class UploadProgressBar {
  private readonly bar: SingleBar;
  private readonly meter = new RateMeter();
  private total: number;
  private started = false;
  private startedAt = 0;

  constructor(options: UploadProgressBarOptions = {}) {
    this.total = options.fallbackTotal ?? 0;
    this.bar = new SingleBar({
      stream: options.stream ?? process.stderr,
      format: '{phase} |{bar}| {percentage}% · {done} / {size} · {rate} · ETA {etaText}',
      barsize: options.barSize ?? 30,
      barCompleteChar: '█',
      barIncompleteChar: '░',
      hideCursor: true,
      emptyOnZero: true,
      noTTYOutput: true,
      notTTYSchedule: options.nonTtyIntervalMs ?? 2000,
      fps: 8,
    });
  }

  /** Shows the latest progress (starts drawing on the first call). */
  update(progress: LiveProgress): void {
    if (progress.totalBytes !== undefined) this.total = progress.totalBytes;
    // Once parts are done the bytes are all there: verify/merge/notify show a full bar.
    const done =
      progress.phase === 'done' || ['verify', 'merge', 'commit-quota', 'notify'].includes(progress.phase) ? this.total : progress.bytesDone;
    this.meter.record(done);
    const payload = this.payload(progress.phase, done);
    if (!this.started) {
      this.started = true;
      this.startedAt = Date.now();
      this.bar.start(this.total, done, payload);
    } else {
      this.bar.setTotal(this.total);
      this.bar.update(done, payload);
    }
  }

  /** Fills the bar (the upload completed with `size` bytes) and stops drawing. */
  finish(size: number): void {
    this.total = size;
    if (!this.started) return;
    this.bar.setTotal(size);
    // The window rate is near zero by now (the last seconds were verify/merge): show the average.
    const seconds = (Date.now() - this.startedAt) / 1000;
    this.bar.update(size, { ...this.payload('done', size), rate: formatRate(seconds > 0 ? size / seconds : undefined), etaText: '0s' });
    this.bar.stop();
  }

  /** Stops drawing, leaving the bar as it is (failure, cancellation, detach). */
  stop(): void {
    if (this.started) this.bar.stop();
  }

  private payload(phase: string, done: number) {
    const known = this.total > 0;
    return {
      phase: phase.padEnd(PHASE_WIDTH),
      done: formatBytes(done),
      size: known ? formatBytes(this.total) : '?',
      rate: formatRate(this.meter.rate()),
      etaText: known ? formatDuration(this.meter.eta(this.total)) : '–',
    };
  }
}
