/**
 * Tracing's cost on the worker's hot path: the same uploads with tracing off and on (exporting to a
 * real Jaeger v2), in one process, alternating which goes first. Throughput of one large upload and
 * p50 of concurrent 1 MiB uploads (each phase its own worker, task queue and tenant). `npx tsx bench/tracing-overhead.ts [--size 256MiB] [--small 30] [--rounds 2]`
 *
 * A stop-gap until `npm run bench` gains its `telemetry` row (metrics, tracing and logs together).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection, DefaultLogger, Runtime } from '@temporalio/worker';
import { Connection } from '@temporalio/client';
import { loadConfig, parseByteSize } from '../src/config';
import { createS3Client, createTemporalClient } from '../src/connections';
import { startEmbeddedStack, startJaeger } from '../src/embedded';
import { UploadClient } from '../src/client';
import { startTracing } from '../src/telemetry/tracing';
import { bundleUploadWorkflows, createUploadWorker } from '../src/worker';
import { makeRandomFile } from '../test/support/files';

Runtime.install({ logger: new DefaultLogger('WARN') });

const arg = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1]! : fallback;
};

async function main(): Promise<void> {
  const size = parseByteSize(arg('size', '256MiB'))!;
  const smallCount = Number(arg('small', '30'));
  const rounds = Number(arg('rounds', '2'));
  const work = await mkdtemp(path.join(os.tmpdir(), 'upload-saga-tracing-bench-'));
  const stack = await startEmbeddedStack({ buckets: ['uploads'] });
  const jaeger = await startJaeger({ dataDir: path.join(work, 'jaeger'), stopGraceMs: 2_000 });
  const env = {
    TEMPORAL_ADDRESS: stack.temporal.address,
    TEMPORAL_NAMESPACE: stack.temporal.namespace,
    S3_ENDPOINT: stack.s3.endpoint,
    S3_REGION: stack.s3.region,
    S3_ACCESS_KEY_ID: stack.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
    UPLOAD_SAGA_ALLOWED_ROOTS: work,
  };
  const big = await makeRandomFile(work, 'big.bin', size);
  const small = await makeRandomFile(work, 'small.bin', 1024 * 1024);
  const bundle = await bundleUploadWorkflows();
  const results: Record<'off' | 'on', { mibps: number[]; p50ms: number[] }> = {
    off: { mibps: [], p50ms: [] },
    on: { mibps: [], p50ms: [] },
  };

  const phase = async (mode: 'off' | 'on') => {
    const tracing = mode === 'on' ? startTracing({ endpoint: jaeger.otlpEndpoint, serviceName: 'bench' }) : undefined;
    const taskQueue = `bench-tracing-${randomUUID().slice(0, 8)}`;
    const config = loadConfig({ ...env, TEMPORAL_TASK_QUEUE: taskQueue });
    const connection = await Connection.connect({ address: config.temporal.address });
    const workerConnection = await NativeConnection.connect({ address: config.temporal.address });
    const client = createTemporalClient(connection, config);
    const s3 = createS3Client(config.s3);
    const worker = await createUploadWorker({ config, connection: workerConnection, client, s3, workflowBundle: bundle });
    const running = worker.run();
    const uploads = new UploadClient({ client, taskQueue });
    // A tenant per phase: a tenant's quota ledger workflow lives on the task queue that first served it.
    const tenant = `bench-${taskQueue.slice(-8)}`;
    const upload = async (file: { path: string }, name: string) => {
      const id = `${name}-${randomUUID().slice(0, 8)}`;
      const handle = await uploads.start({
        tenant,
        uploadId: id,
        source: { type: 'file', path: file.path },
        destination: { bucket: 'uploads', key: `${tenant}/${id}` },
        partSize: 8 * 1024 * 1024,
      });
      await handle.result();
    };
    try {
      const started = performance.now();
      await upload(big, 'big');
      results[mode].mibps.push(size / 1024 / 1024 / ((performance.now() - started) / 1000));
      const times = await Promise.all(
        Array.from({ length: smallCount }, async (_, i) => {
          const t = performance.now();
          await upload(small, `small${i}`);
          return performance.now() - t;
        }),
      );
      times.sort((a, b) => a - b);
      results[mode].p50ms.push(times[Math.floor(times.length / 2)]!);
    } finally {
      worker.shutdown();
      await running;
      s3.destroy();
      await connection.close();
      await workerConnection.close();
      await tracing?.shutdown();
    }
  };

  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) await phase(mode);
    }
  } finally {
    await jaeger.stop();
    await stack.stop();
    await rm(work, { recursive: true, force: true });
  }
  const best = (xs: number[], pick: (a: number, b: number) => number) => xs.reduce((a, b) => pick(a, b));
  const off = { mibps: best(results.off.mibps, Math.max), p50ms: best(results.off.p50ms, Math.min) };
  const on = { mibps: best(results.on.mibps, Math.max), p50ms: best(results.on.p50ms, Math.min) };
  console.log(
    JSON.stringify(
      {
        size,
        smallCount,
        rounds,
        raw: results,
        best: { off, on },
        throughputOverheadPct: Number((((off.mibps - on.mibps) / off.mibps) * 100).toFixed(1)),
        p50OverheadPct: Number((((on.p50ms - off.p50ms) / off.p50ms) * 100).toFixed(1)),
      },
      null,
      2,
    ),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
