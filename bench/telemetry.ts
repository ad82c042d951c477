/**
 * The `telemetry` section of `npm run bench`: what metrics, tracing and logs cost, measured as the
 * same uploads through two worker processes that differ only in their telemetry settings:
 *
 * - off: no metrics endpoint, no OTLP exporter, `LOG_LEVEL=silent`;
 * - on: the Prometheus endpoint (scraped every second by this process, as a Prometheus would),
 *   OTLP traces exported to a real Jaeger, JSON logs at `info`.
 *
 * Two figures, each from `rounds` rounds in which the two variants alternate which goes first (the
 * dev server's database grows with every round, so the side always run second would always meet the
 * bigger one): throughput of one large upload (best of the rounds, as the throughput section does)
 * and the p50 of `smallUploads` concurrent 1 MiB uploads (pooled over the rounds). The issue's
 * bounds: at most 5 % less throughput and at most 10 % more p50 with telemetry on.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { UploadClient } from '../src/client';
import { makeBenchFile, mbps, MiB, percentile, timed } from './measure';

/** What the section needs from the benchmark's run. */
export interface TelemetryBenchOptions {
  readonly uploads: UploadClient;
  readonly bucket: string;
  readonly work: string;
  /** Starts a worker process with the benchmark's base environment plus `env`. */
  readonly startWorker: (env: Record<string, string>) => Promise<ChildProcess>;
  readonly stopWorker: (child: ChildProcess) => Promise<void>;
  /** The environment that turns telemetry on (metrics port, OTLP endpoint, log level). */
  readonly onEnv: Record<string, string>;
  readonly offEnv: Record<string, string>;
  /** The worker's metrics URL when on, scraped every second while it runs. */
  readonly metricsUrl: string;
  /** Traces the collector holds of the "on" runs (read at the end: 0 would mean tracing was never on). */
  readonly countTraces: () => Promise<number>;
  readonly largeBytes: number;
  readonly smallUploads: number;
  readonly rounds: number;
  readonly partSize: number;
  readonly concurrency: number;
  readonly log: (line: string) => void;
}

/** One variant's figures. */
export interface TelemetrySide {
  largeMBps: number;
  smallP50Ms: number;
  roundLargeMBps: number[];
  roundSmallP50Ms: number[];
}

/** The `telemetry` row. */
export interface TelemetryRow {
  largeBytes: number;
  smallUploads: number;
  rounds: number;
  off: TelemetrySide;
  on: TelemetrySide;
  /** 1 − on ÷ off of the large upload's throughput; bound 0.05. */
  throughputOverhead: number;
  /** on ÷ off − 1 of the small uploads' p50; bound 0.10. */
  p50Overhead: number;
  withinBounds: boolean;
  /** Successful scrapes of the metrics endpoint during the "on" runs (0 would mean metrics were never on). */
  scrapes: number;
  /** Traces the collector received from the "on" runs. */
  traces: number;
}

interface Sample {
  largeMBps: number;
  smallMs: number[];
}

const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;

export async function benchTelemetry(options: TelemetryBenchOptions): Promise<TelemetryRow> {
  const { uploads, log } = options;
  const large = path.join(options.work, 'telemetry-large.bin');
  const small = path.join(options.work, 'telemetry-small.bin');
  await makeBenchFile(large, options.largeBytes);
  await makeBenchFile(small, MiB);
  let n = 0;
  const upload = async (file: string, size: number): Promise<void> => {
    const id = `telemetry-${Date.now()}-${n++}`;
    const handle = await uploads.start({
      uploadId: id,
      tenant: 'bench',
      source: { type: 'file', path: file },
      destination: { bucket: options.bucket, key: `bench/${id}` },
      partSize: options.partSize,
      partConcurrency: options.concurrency,
      declaredSize: size,
    });
    await handle.result();
  };

  let scrapes = 0;
  const runVariant = async (variant: 'on' | 'off'): Promise<Sample> => {
    const worker = await options.startWorker(variant === 'on' ? options.onEnv : options.offEnv);
    let scraping = variant === 'on';
    const scraper = (async () => {
      while (scraping) {
        const response = await fetch(options.metricsUrl).catch(() => undefined);
        if (response?.ok) {
          await response.text();
          scrapes++;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    try {
      await upload(small, MiB); // warm-up: first connections and workflow caches are not measured
      const { ms } = await timed(() => upload(large, options.largeBytes));
      const each = await Promise.all(Array.from({ length: options.smallUploads }, async () => (await timed(() => upload(small, MiB))).ms));
      return { largeMBps: mbps(options.largeBytes, ms), smallMs: each };
    } finally {
      scraping = false;
      await scraper;
      await options.stopWorker(worker);
    }
  };

  const samples = { on: [] as Sample[], off: [] as Sample[] };
  for (let r = 0; r < options.rounds; r++) {
    const order: ('on' | 'off')[] = r % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
    for (const variant of order) {
      const sample = await runVariant(variant);
      samples[variant].push(sample);
      log(
        `telemetry round ${r + 1} of ${options.rounds}, ${variant}: ${sample.largeMBps.toFixed(1)} MB/s, p50 ${percentile(sample.smallMs, 50).toFixed(0)} ms`,
      );
    }
  }
  // Throughput: best round, as the throughput section counts it; p50: every small upload of the variant, pooled.
  const side = (all: Sample[]): TelemetrySide => ({
    largeMBps: round(Math.max(...all.map((s) => s.largeMBps))),
    smallP50Ms: round(
      percentile(
        all.flatMap((s) => s.smallMs),
        50,
      ),
    ),
    roundLargeMBps: all.map((s) => round(s.largeMBps)),
    roundSmallP50Ms: all.map((s) => round(percentile(s.smallMs, 50))),
  });
  const off = side(samples.off);
  const on = side(samples.on);
  const throughputOverhead = round(1 - on.largeMBps / off.largeMBps, 3);
  const p50Overhead = round(on.smallP50Ms / off.smallP50Ms - 1, 3);
  return {
    largeBytes: options.largeBytes,
    smallUploads: options.smallUploads,
    rounds: options.rounds,
    off,
    on,
    throughputOverhead,
    p50Overhead,
    withinBounds: throughputOverhead <= 0.05 && p50Overhead <= 0.1,
    scrapes,
    traces: await options.countTraces(),
  };
}
