/**
 * Transfer rate and ETA over a sliding time window.
 *
 * Why not cli-progress's own ETA: its estimate averages the last N *updates*, and our updates are
 * polls every ~500 ms whose values move in bursts (a part lands, then nothing, then four parts).
 * A window measured in time gives a steadier rate; the ETA is derived from that same rate so the
 * two numbers on the bar always agree.
 */

/** Options of {@link RateMeter}. */
export interface RateMeterOptions {
  /** Width of the window the rate is measured over. @default 5000 ms */
  windowMs?: number;
  /** Clock (for tests). @default Date.now */
  now?: () => number;
}

/** Records a growing counter (bytes done) and reports its recent rate. */
export class RateMeter {
  private readonly windowMs: number;
  private readonly now: () => number;
  private samples: { at: number; value: number }[] = [];

  constructor(options: RateMeterOptions = {}) {
    this.windowMs = options.windowMs ?? 5000;
    this.now = options.now ?? Date.now;
  }

  /** Records the counter's current value. */
  record(value: number): void {
    const at = this.now();
    this.samples.push({ at, value });
    // Keep one sample older than the window, so the window is always fully covered.
    while (this.samples.length > 2 && this.samples[1]!.at <= at - this.windowMs) this.samples.shift();
  }

  /** Units per second over the window; `undefined` until two samples at least 200 ms apart exist. */
  rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at - first.at < 200) return undefined;
    return Math.max(0, ((last.value - first.value) * 1000) / (last.at - first.at));
  }

  /** Seconds until `total` at the current rate; `undefined` when the rate is unknown or zero. */
  eta(total: number): number | undefined {
    const rate = this.rate();
    const last = this.samples[this.samples.length - 1];
    if (!rate || !last) return undefined;
    return Math.max(0, (total - last.value) / rate);
  }
}
