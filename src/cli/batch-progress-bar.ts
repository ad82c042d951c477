/**
 * The batch progress bar: files and bytes done of the totals, rate (files/s and bytes/s), ETA,
 * failures so far. One bar for the whole batch, drawn with cli-progress on stderr (plain periodic
 * lines when stderr is not a terminal), fed by the batch's progress query.
 */
import { SingleBar } from 'cli-progress';
import type { BatchProgress } from '../batch/batch-types';
import { formatBytes, formatDuration, formatRate } from './format';
import { RateMeter } from './rate-meter';

/** Options of {@link BatchProgressBar}. */
export interface BatchProgressBarOptions {
  /** @default process.stderr */
  stream?: NodeJS.WritableStream;
  /** Interval of the plain lines when the stream is not a terminal. @default 2000 ms */
  nonTtyIntervalMs?: number;
}

/** A progress bar for one batch. Call {@link update} with each poll, then {@link stop}. */
export class BatchProgressBar {
  private readonly bar: SingleBar;
  private readonly bytes = new RateMeter();
  private readonly files = new RateMeter();
  private started = false;

  constructor(options: BatchProgressBarOptions = {}) {
    this.bar = new SingleBar({
      stream: options.stream ?? process.stderr,
      format: '{phase} |{bar}| {value}/{total} files · {done} / {size} · {fileRate} files/s · {rate} · ETA {etaText}{failed}',
      barsize: 30,
      barCompleteChar: '█',
      barIncompleteChar: '░',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: options.nonTtyIntervalMs ?? 2000,
      fps: 8,
    });
  }

  /** Shows the latest progress (starts drawing on the first call). */
  update(progress: BatchProgress): void {
    const settled = progress.filesDone + progress.filesFailed;
    this.bytes.record(progress.bytesDone);
    this.files.record(settled);
    const totalFiles = progress.filesTotal ?? 0;
    const fileRate = this.files.rate();
    const payload = {
      phase: progress.phase.padEnd(12),
      done: formatBytes(progress.bytesDone),
      size: progress.bytesTotal !== undefined ? formatBytes(progress.bytesTotal) : '?',
      fileRate: fileRate === undefined ? '–' : fileRate.toFixed(1),
      rate: formatRate(this.bytes.rate()),
      etaText: progress.bytesTotal ? formatDuration(this.bytes.eta(progress.bytesTotal)) : '–',
      failed: progress.filesFailed ? ` · ${progress.filesFailed} failed` : '',
    };
    if (!this.started) {
      this.started = true;
      this.bar.start(totalFiles, settled, payload);
    } else {
      this.bar.setTotal(totalFiles);
      this.bar.update(settled, payload);
    }
  }

  /** Stops drawing, leaving the bar as it is. */
  stop(): void {
    if (this.started) this.bar.stop();
  }
}
