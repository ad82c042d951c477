/**
 * `npm run bench`: the saga side by side with the plain tools, in one run, on the same MinIO,
 * with the same part size and concurrency. Starts its own servers; prints a Markdown table, or one
 * JSON document with `--json` (progress goes to stderr either way).
 *
 * - throughput: the saga vs `@aws-sdk/lib-storage` Upload (the baseline), plus `aws s3 cp`,
 *   `rclone` (when installed) and one streaming PutObject (the ceiling). Best of `--reps` runs each,
 *   which tool goes first rotating; the saga's ratio to the fastest of lib-storage, `aws s3 cp` and
 *   rclone; CPU ms per MiB of each tool's client side, of MinIO and of Temporal.
 *   `--throughput-cpu-prof <dir>` profiles the worker.
 * - memory: peak RSS (VmHWM) of a fresh worker process uploading a multi-GiB file, against the
 *   documented bound: idle worker + 2 × partSize × concurrency + 64 MiB.
 * - latency: 50 concurrent 1 MiB uploads through the saga vs a minimal hand-written workflow that
 *   makes the same S3 calls, in `--latency-rounds` rounds of both (which side goes first alternates); the
 *   percentiles pool every round's uploads of a side. One round of each is at the mercy of what
 *   else the 2-core machine did in that half minute (single rounds ranged ×1.15–×1.79).
 * - history: events per run of the real upload workflow walking 10,000 parts (stand-in activities).
 * - startup: a worker process from spawn to its first poll and its idle RSS, before (tsx from
 *   src/, workflows bundled at start) and after (dist/ with the prebundled workflows), in
 *   `--startup-rounds` rounds of both, which goes first alternating (see startup.ts). Needs
 *   `npm run build` first.
 *
 * - telemetry: what metrics, tracing and logs cost: 1 GiB throughput and the p50 of 50 concurrent
 *   1 MiB uploads through a worker with all three on (Prometheus endpoint scraped every second,
 *   OTLP to a real Jaeger, JSON logs at info) and one with all three off, alternating (see telemetry.ts).
 *
 * - gateway: tus-js-client against the gateway, tusd (S3 store) and @tus/server + @tus/s3-store on
 *   the same MinIO: one PATCH, 8 MiB PATCHes, parallel uploads; MB/s, ratio to tusd, each server's
 *   peak RSS per row (see gateway.ts). `--gateway-parts-in-flight` and `--gateway-part-size` set
 *   the gateway's; `--gateway-cpu-prof <dir>` profiles it.
 *
 * - batch: 10,000 × 64 KiB and 1,000 × 1 MiB files from a local directory as one batch saga, `aws s3
 *   cp --recursive` and `rclone copy` (bench/batch.ts; `--batch-rows` for other sizes, e.g. `1000x64KiB`
 *   for a short run; `--batch-tuning` for other chunk sizes and concurrencies; `--batch-cpu-prof
 *   <dir>` profiles the worker).
 *
 * - migration: 1,000 objects totalling 1 GiB from one bucket to another on the same MinIO: the
 *   migration saga (server-side copy), `aws s3 sync` and `rclone sync`, who goes first rotating
 *   (bench/migration.ts; `--migration-objects 100 --migration-bytes 100MiB` for a quick run).
 *
 * - scaleOut: uploads/s of 100 concurrent 1 MiB uploads with 1, 2 and 3 worker processes on one
 *   task queue, for one tenant and for eight, on the real Temporal server on PostgreSQL (started
 *   for the section; `--scale-out-temporal dev-server` uses the run's dev server), with CPU per
 *   upload by process and the ledgers' updates (see scale-out.ts).
 *
 * `--only <sections...>` runs just those sections, e.g. `npm run bench -- --json --only startup`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { Command } from 'commander';
import { UploadClient } from '../src/client';
import { loadConfig, parseByteSize, type WorkerConfig } from '../src/config';
import { createS3Client } from '../src/connections';
import { startEmbeddedStack, startJaeger, startTemporalPostgresServer, type EmbeddedStack } from '../src/embedded';
import { findFreePort } from '../src/embedded/free-port';
import { siblingModule } from '../src/module-path';
import { UPLOAD_SEARCH_ATTRIBUTE_TYPES } from '../src/upload/search-attributes';
import { bundleUploadWorkflows, createUploadWorker } from '../src/worker';
import { quotaLedgerWorkflowId } from '../src/workflows/quota-ledger';
import { standInUploadActivities } from '../test/support/stand-in-upload-activities';
import { createBaselineActivities } from './baseline-activities';
import { benchGateway, gatewayMarkdown, TUS_SERVERS, type GatewayBenchResult, type TusServerName } from './gateway';
import { breakdownMarkdown, latencyBreakdown } from './latency-breakdown';
import { batchMarkdown, benchBatch, parseBatchTuning, type BatchBenchRow } from './batch';
import { benchMigration, migrationMarkdown, type MigrationBenchResult } from './migration';
import {
  cpuSeconds,
  currentRssMiB,
  makeBenchFile,
  mbps,
  MiB,
  peakRssMiB,
  percentile,
  rcloneS3Flags,
  timed,
  waitedChildrenCpuSeconds,
} from './measure';
import { benchScaleOut, scaleOutMarkdown, type ScaleOutRow } from './scale-out';
import { benchStartup, type StartupRow } from './startup';
import { benchTelemetry, type TelemetryRow } from './telemetry';

const BUCKET = 'bench';
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

interface Options {
  json: boolean;
  sizes: string;
  memorySize: string;
  partSize: string;
  concurrency: string;
  reps: string;
  latencyUploads: string;
  batchRows: string;
  batchTuning?: string;
  batchCpuProf?: string;
  migrationObjects: string;
  migrationBytes: string;
  migrationReps: string;
  migrationCpuProf?: string;
  latencyRounds: string;
  skip: string[];
  only?: string[];
  startupRounds: string;
  breakdown: boolean;
  telemetrySize: string;
  telemetryRounds: string;
  telemetryParts: string;
  gatewaySize: string;
  gatewayReps: string;
  gatewayParallelUploads: string;
  gatewayPartsInFlight?: string;
  gatewayPartSize?: string;
  gatewayCpuProf?: string;
  gatewayServers: string;
  throughputCpuProf?: string;
  scaleOutUploads: string;
  scaleOutWorkers: string;
  scaleOutTenants: string;
  scaleOutTemporal: string;
}

const SECTIONS = [
  'throughput',
  'memory',
  'latency',
  'history',
  'startup',
  'telemetry',
  'gateway',
  'batch',
  'migration',
  'scaleOut',
] as const;

interface ThroughputRow {
  bytes: number;
  partSize: number;
  concurrency: number;
  sagaMBps: number;
  libStorageMBps: number;
  ratio: number;
  awsCliMBps?: number;
  rcloneMBps?: number;
  putObjectMBps?: number;
  /** The fastest of the tools a user would otherwise run (lib-storage, `aws s3 cp`, rclone), and the saga's ratio to it. */
  fastestPeer: string;
  ratioToFastestPeer: number;
  /** CPU ms per MiB moved, mean over the repetitions, per tool: see {@link CpuPerMiB}. */
  cpuMsPerMiB: Record<string, CpuPerMiB>;
}

/**
 * Where one tool's CPU went, in ms per MiB moved. `client`: this process, the saga's worker process
 * and any command this process ran (counted once it exited), so every tool carries the same idle
 * pollers; `minio`: the store; `temporal`: the dev server (orchestration, the saga's alone).
 */
interface CpuPerMiB {
  client: number;
  minio: number;
  temporal: number;
}

/** The tools a user would run instead of the saga; the saga's target is the fastest of them. */
const PEERS = ['libStorage', 'awsCli', 'rclone'] as const;

function which(binary: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    child.on('exit', (code) => resolve(code === 0));
  });
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}: ${stderr.slice(-500)}`))));
  });
}

/** Every worker process the benchmark started; all are stopped on the way out, error or not. */
const workerProcesses = new Set<ChildProcess>();

/**
 * A worker in its own process, so its memory is its own. Ready when it logs that it runs, or, with
 * `readyUrl` (its health endpoint's /readyz: for workers whose logs are off), when that answers 200.
 */
async function startWorkerProcess(
  env: Record<string, string>,
  readyUrl?: string,
  { nodeArgs = [], entry = siblingModule(__dirname, '../src/worker') }: { nodeArgs?: string[]; entry?: string } = {},
): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', entry], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  workerProcesses.add(child);
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stderr!.on('data', (c: Buffer) => {
      seen += c.toString();
      if (seen.length > 100_000) seen = seen.slice(-10_000);
      if (!readyUrl && seen.includes('upload-saga worker on task queue')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`worker exited ${code}: ${seen.slice(-1000)}`)));
    if (readyUrl) {
      const poll = async (): Promise<void> => {
        while (child.exitCode === null) {
          const ok = await fetch(readyUrl).then(
            (r) => r.ok,
            () => false,
          );
          if (ok) return resolve();
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      void poll();
    }
  });
  await new Promise((r) => setTimeout(r, 1500)); // let it start polling
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--json', 'print one JSON document instead of Markdown', false)
    .option('--sizes <list>', 'throughput file sizes', '128MiB,1GiB')
    .option('--memory-size <size>', 'file size of the memory run', '2GiB')
    .option('--part-size <size>', 'part size for every tool', '8MiB')
    .option('--concurrency <n>', 'parts in flight for every tool', '4')
    .option('--reps <n>', 'runs per tool and size (best counts)', '2')
    .option('--batch-rows <rows>', 'batch section: files x size per row', '10000x64KiB,1000x1MiB')
    .option(
      '--batch-tuning <list>',
      'batch section: request options of the saga, e.g. filesPerChunk=256,fileConcurrency=16,chunkConcurrency=3 (default: its own)',
    )
    .option('--batch-cpu-prof <dir>', "write a CPU profile of the batch section's worker process (node --cpu-prof) to this directory")
    .option('--migration-objects <n>', 'migration section: objects in the source bucket', '1000')
    .option('--migration-bytes <size>', 'migration section: their total size', '1GiB')
    .option('--migration-reps <n>', 'migration section: repetitions, who goes first rotating (best counts)', '2')
    .option(
      '--migration-cpu-prof <dir>',
      "write a CPU profile of the migration section's worker process (node --cpu-prof) to this directory",
    )
    .option('--latency-uploads <n>', 'concurrent 1 MiB uploads', '50')
    .option('--latency-rounds <n>', 'rounds of the latency run, each of both sides, which goes first alternating', '4')
    .option('--skip <parts...>', `skip any of ${SECTIONS.join(', ')}`, [])
    .option('--only <parts...>', `run only these of ${SECTIONS.join(', ')}`)
    .option('--startup-rounds <n>', 'rounds of the startup run, each of both variants, which goes first alternating', '3')
    .option('--breakdown', 'after the latency run, print where the time went (from the recorded histories)', false)
    .option('--telemetry-size <size>', 'file size of the telemetry throughput run', '1GiB')
    .option('--telemetry-rounds <n>', 'rounds of the telemetry run, each of both variants, which goes first alternating', '5')
    .option('--telemetry-parts <list>', 'what "on" turns on, of metrics, traces, logs (to see what each costs)', 'metrics,traces,logs')
    .option('--gateway-size <size>', 'file size of the gateway section', '128MiB')
    .option('--gateway-reps <n>', 'repetitions of the gateway section, which server goes first rotating (best counts)', '3')
    .option('--gateway-parallel-uploads <n>', "tus-js-client's parallelUploads in the parallel row", '4')
    .option('--gateway-parts-in-flight <n>', "the gateway's UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT (default: its own)")
    .option('--gateway-part-size <size>', "the gateway's UPLOAD_SAGA_GATEWAY_PART_SIZE (default: its own)")
    .option('--gateway-servers <list>', `tus servers of the gateway section, of ${TUS_SERVERS.join(', ')}`, TUS_SERVERS.join(','))
    .option('--gateway-cpu-prof <dir>', 'write a CPU profile of the gateway process (node --cpu-prof) to this directory')
    .option(
      '--throughput-cpu-prof <dir>',
      "write a CPU profile of the throughput section's worker process (node --cpu-prof) to this directory",
    )
    .option('--scale-out-uploads <n>', 'concurrent 1 MiB uploads per scale-out round', '100')
    .option('--scale-out-workers <list>', 'worker process counts of the scale-out section', '1,2,3')
    .option('--scale-out-tenants <n>', 'tenants of the scale-out rounds that spread their uploads', '8')
    .option('--scale-out-temporal <server>', 'Temporal server of the scale-out section: postgres or dev-server', 'postgres')
    .parse();
  const opts = program.opts<Options>();
  const partSize = parseByteSize(opts.partSize)!;
  const concurrency = Number(opts.concurrency);
  const reps = Number(opts.reps);
  for (const section of [...opts.skip, ...(opts.only ?? [])]) {
    if (!(SECTIONS as readonly string[]).includes(section)) throw new Error(`unknown section "${section}" (${SECTIONS.join(', ')})`);
  }
  const skip = new Set<string>(opts.only ? SECTIONS.filter((section) => !opts.only!.includes(section)) : opts.skip);

  Runtime.install({ logger: new DefaultLogger('WARN') });
  const work = await mkdtemp(path.join(os.tmpdir(), 'upload-saga-bench-'));
  log(`starting Temporal dev server and MinIO (data in ${work})`);
  const stack: EmbeddedStack = await startEmbeddedStack({ buckets: [BUCKET] });
  const env = {
    TEMPORAL_ADDRESS: stack.temporal.address,
    TEMPORAL_NAMESPACE: stack.temporal.namespace,
    S3_ENDPOINT: stack.s3.endpoint,
    S3_REGION: stack.s3.region,
    S3_ACCESS_KEY_ID: stack.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
    UPLOAD_SAGA_ALLOWED_ROOTS: work,
    UPLOAD_SAGA_QUOTA_DEFAULT: '100TiB',
    UPLOAD_SAGA_MAX_CONCURRENT_ACTIVITIES: '64',
  };
  const config: WorkerConfig = loadConfig(env);
  const s3: S3Client = createS3Client(config.s3);
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const uploads = new UploadClient({ client, taskQueue: 'upload-saga' });
  const machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 1024 ** 3),
    node: process.version,
  };
  const results: Record<string, unknown> = { machine, partSize, concurrency };
  let n = 0;
  const key = (tool: string) => `bench/${tool}-${Date.now()}-${n++}`;

  const sagaWorkflowIds: string[] = [];
  const sagaUpload = async (file: string, size: number) => {
    const handle = await uploads.start({
      uploadId: `bench-${Date.now()}-${n++}`,
      tenant: 'bench',
      source: { type: 'file', path: file },
      destination: { bucket: BUCKET, key: key('saga') },
      partSize,
      partConcurrency: concurrency,
      declaredSize: size,
    });
    sagaWorkflowIds.push(handle.workflowId);
    return handle.result();
  };

  try {
    if (!skip.has('throughput')) {
      const profile = opts.throughputCpuProf;
      const worker = await startWorkerProcess(env, undefined, {
        nodeArgs: profile ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(profile)] : [],
      });
      const haveAws = await which('aws');
      const haveRclone = await which('rclone');
      const awsConfig = path.join(work, 'aws-config');
      await writeFile(
        awsConfig,
        `[default]\nregion = ${stack.s3.region}\ns3 =\n  multipart_chunksize = ${partSize / MiB}MB\n  multipart_threshold = ${partSize / MiB}MB\n  max_concurrent_requests = ${concurrency}\n`,
      );
      // rclone refuses a custom CA bundle on plain-HTTP endpoints; the local MinIO needs none.
      const { AWS_CA_BUNDLE: _caBundle, ...inherited } = process.env;
      const toolEnv = {
        ...inherited,
        AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
        AWS_CONFIG_FILE: awsConfig,
      };
      // One unmeasured upload of two parts through the saga and through lib-storage first, as the
      // latency section does: a deployed worker has loaded its modules and bundle and opened its
      // connections before its first large upload. (aws and rclone start a process per run: they
      // pay their start-up in every run, as a user of them does.)
      const warmUp = path.join(work, 'throughput-warm-up.bin');
      await makeBenchFile(warmUp, 2 * partSize);
      await sagaUpload(warmUp, 2 * partSize);
      await new Upload({ client: s3, params: { Bucket: BUCKET, Key: key('lib'), Body: createReadStream(warmUp) }, partSize }).done();
      await rm(warmUp, { force: true });
      const rows: ThroughputRow[] = [];
      for (const sizeText of opts.sizes.split(',')) {
        const size = parseByteSize(sizeText)!;
        const file = path.join(work, `throughput-${sizeText}.bin`);
        await makeBenchFile(file, size);
        await readFile(file).catch(() => undefined); // warm the page cache for every tool alike (≤ 2 GiB)
        const best: Record<string, number> = {};
        const cpu: Record<string, CpuPerMiB[]> = {};
        const cpuNow = async (): Promise<CpuPerMiB> => ({
          client: (await cpuSeconds(process.pid)) + (await cpuSeconds(worker.pid!)) + (await waitedChildrenCpuSeconds(process.pid)),
          minio: await cpuSeconds(stack.s3.pid),
          temporal: await cpuSeconds(stack.temporal.pid),
        });
        const measure = async (tool: string, fn: () => Promise<unknown>) => {
          const before = await cpuNow();
          const { ms } = await timed(fn);
          const after = await cpuNow();
          const perMiB = (side: keyof CpuPerMiB) => ((after[side] - before[side]) * 1000) / (size / MiB);
          (cpu[tool] ??= []).push({ client: perMiB('client'), minio: perMiB('minio'), temporal: perMiB('temporal') });
          best[tool] = Math.max(best[tool] ?? 0, mbps(size, ms));
          log(
            `${sizeText} ${tool}: ${mbps(size, ms).toFixed(1)} MB/s, CPU ms/MiB client ${perMiB('client').toFixed(2)}, MinIO ${perMiB('minio').toFixed(2)}, Temporal ${perMiB('temporal').toFixed(2)}`,
          );
        };
        const tools: [string, () => Promise<unknown>][] = [
          [
            'libStorage',
            () =>
              new Upload({
                client: s3,
                params: { Bucket: BUCKET, Key: key('lib'), Body: createReadStream(file) },
                partSize,
                queueSize: concurrency,
              }).done(),
          ],
          ['saga', () => sagaUpload(file, size)],
          [
            'putObject',
            () => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key('put'), Body: createReadStream(file), ContentLength: size })),
          ],
        ];
        if (haveAws)
          tools.push([
            'awsCli',
            () =>
              run(
                'aws',
                ['--endpoint-url', stack.s3.endpoint, 's3', 'cp', '--only-show-errors', file, `s3://${BUCKET}/${key('aws')}`],
                toolEnv,
              ),
          ]);
        if (haveRclone)
          tools.push([
            'rclone',
            () =>
              run(
                'rclone',
                [
                  'copyto',
                  file,
                  `:s3:${BUCKET}/${key('rclone')}`,
                  ...rcloneS3Flags(stack.s3),
                  '--s3-chunk-size',
                  `${partSize / MiB}M`,
                  '--s3-upload-concurrency',
                  String(concurrency),
                  '--s3-upload-cutoff',
                  `${partSize / MiB}M`,
                ],
                toolEnv,
              ),
          ]);
        // Each repetition starts with the next tool (a rotation): no tool always runs first, on the
        // emptiest bucket and the coolest machine, or always last.
        for (let rep = 0; rep < reps; rep++) {
          for (let i = 0; i < tools.length; i++) {
            const [tool, fn] = tools[(rep + i) % tools.length]!;
            await measure(tool, fn);
          }
        }
        const fastestPeer = PEERS.filter((peer) => best[peer] !== undefined).reduce((a, b) => (best[b]! > best[a]! ? b : a));
        const meanOf = (runs: CpuPerMiB[], side: keyof CpuPerMiB) => round(runs.reduce((sum, r) => sum + r[side], 0) / runs.length, 2);
        rows.push({
          bytes: size,
          partSize,
          concurrency,
          sagaMBps: round(best.saga!),
          libStorageMBps: round(best.libStorage!),
          ratio: round(best.saga! / best.libStorage!, 3),
          ...(best.awsCli ? { awsCliMBps: round(best.awsCli) } : {}),
          ...(best.rclone ? { rcloneMBps: round(best.rclone) } : {}),
          putObjectMBps: round(best.putObject!),
          fastestPeer,
          ratioToFastestPeer: round(best.saga! / best[fastestPeer]!, 3),
          cpuMsPerMiB: Object.fromEntries(
            Object.entries(cpu).map(([tool, runs]) => [
              tool,
              { client: meanOf(runs, 'client'), minio: meanOf(runs, 'minio'), temporal: meanOf(runs, 'temporal') },
            ]),
          ),
        });
        await rm(file, { force: true });
      }
      results.throughput = rows;
      await stopProcess(worker);
    }

    if (!skip.has('memory')) {
      const size = parseByteSize(opts.memorySize)!;
      const file = path.join(work, 'memory.bin');
      await makeBenchFile(file, size);
      const worker = await startWorkerProcess(env);
      await new Promise((r) => setTimeout(r, 2000));
      const idle = await currentRssMiB(worker.pid!);
      const { ms } = await timed(() => sagaUpload(file, size));
      const peak = await peakRssMiB(worker.pid!);
      const bound = idle + (2 * partSize * concurrency) / MiB + 64;
      log(
        `memory: ${size / MiB} MiB in ${(ms / 1000).toFixed(1)} s, idle ${idle.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB, bound ${bound.toFixed(0)} MiB`,
      );
      results.memory = {
        fileBytes: size,
        partSize,
        concurrency,
        idleRssMiB: round(idle),
        peakRssMiB: round(peak),
        boundMiB: round(bound),
        withinBound: peak <= bound,
      };
      await stopProcess(worker);
      await rm(file, { force: true });
    }

    if (!skip.has('latency')) {
      const count = Number(opts.latencyUploads);
      const file = path.join(work, 'small.bin');
      await makeBenchFile(file, MiB);
      const worker = await startWorkerProcess(env);
      const workerConnection = await NativeConnection.connect({ address: config.temporal.address });
      const baselineWorker = await Worker.create({
        connection: workerConnection,
        namespace: config.temporal.namespace,
        taskQueue: 'bench-baseline',
        workflowsPath: siblingModule(__dirname, './baseline'),
        activities: createBaselineActivities(s3),
        maxConcurrentActivityTaskExecutions: 64,
      });
      // CPU seconds each process spent during a phase: on a machine shared with other work this
      // says what each side costs, where wall-clock latency also measures everyone else's load.
      const processes = { temporal: stack.temporal.pid, minio: stack.s3.pid, sagaWorker: worker.pid!, bench: process.pid };
      const cpu = async () =>
        Object.fromEntries(await Promise.all(Object.entries(processes).map(async ([name, pid]) => [name, await cpuSeconds(pid)] as const)));
      const latencies = async (one: (i: number) => Promise<unknown>) => {
        const cpuBefore = await cpu();
        const started = performance.now();
        const each = await Promise.all(Array.from({ length: count }, async (_, i) => (await timed(() => one(i))).ms));
        const totalMs = performance.now() - started;
        const cpuAfter = await cpu();
        const cpuMsPerUpload = Object.fromEntries(
          Object.keys(processes).map((name) => [name, round(((cpuAfter[name]! - cpuBefore[name]!) * 1000) / count)]),
        );
        return { each, totalMs, cpuMsPerUpload };
      };
      const result = await baselineWorker.runUntil(async () => {
        // one warm-up of each, so bundling and first connections are not measured
        await sagaUpload(file, MiB);
        await client.workflow.execute('baselineUploadWorkflow', {
          taskQueue: 'bench-baseline',
          workflowId: `baseline-warmup-${Date.now()}`,
          args: [{ bucket: BUCKET, key: key('base'), path: file }],
        });
        const rounds = Number(opts.latencyRounds);
        const sagaRounds: Awaited<ReturnType<typeof latencies>>[] = [];
        const baselineRounds: Awaited<ReturnType<typeof latencies>>[] = [];
        const baselineWorkflowIds: string[] = [];
        for (let r = 0; r < rounds; r++) {
          // The breakdown reads the last round's histories.
          sagaWorkflowIds.length = 0;
          baselineWorkflowIds.length = 0;
          const sagaRound = () => latencies(() => sagaUpload(file, MiB));
          const baselineRound = () =>
            latencies((i) => {
              const workflowId = `baseline-${Date.now()}-${i}`;
              baselineWorkflowIds.push(workflowId);
              return client.workflow.execute('baselineUploadWorkflow', {
                taskQueue: 'bench-baseline',
                workflowId,
                args: [{ bucket: BUCKET, key: key('base'), path: file }],
              });
            });
          // Alternating which side goes first: the dev server's SQLite grows with every round, so
          // the side that always ran second would always meet the bigger database.
          if (r % 2 === 0) {
            sagaRounds.push(await sagaRound());
            baselineRounds.push(await baselineRound());
          } else {
            baselineRounds.push(await baselineRound());
            sagaRounds.push(await sagaRound());
          }
          log(
            `latency round ${r + 1} of ${rounds}: saga p50 ${percentile(sagaRounds.at(-1)!.each, 50).toFixed(0)} ms, baseline p50 ${percentile(baselineRounds.at(-1)!.each, 50).toFixed(0)} ms`,
          );
        }
        const pooled = (all: typeof sagaRounds) => ({
          each: all.flatMap((r) => r.each),
          totalMs: all.reduce((sum, r) => sum + r.totalMs, 0),
          cpuMsPerUpload: Object.fromEntries(
            Object.keys(processes).map((name) => [name, round(all.reduce((sum, r) => sum + r.cpuMsPerUpload[name]!, 0) / all.length)]),
          ),
          roundP50Ms: all.map((r) => round(percentile(r.each, 50))),
        });
        const saga = pooled(sagaRounds);
        const baseline = pooled(baselineRounds);
        return { saga, baseline, baselineWorkflowIds };
      });
      await workerConnection.close();
      const p50 = percentile(result.saga.each, 50);
      const baselineP50 = percentile(result.baseline.each, 50);
      results.latency = {
        uploads: count,
        fileBytes: MiB,
        p50Ms: round(p50),
        p95Ms: round(percentile(result.saga.each, 95)),
        sagasPerSecond: round(result.saga.each.length / (result.saga.totalMs / 1000)),
        rounds: result.saga.roundP50Ms.length,
        roundP50Ms: { saga: result.saga.roundP50Ms, baseline: result.baseline.roundP50Ms },
        baselineP50Ms: round(baselineP50),
        baselineP95Ms: round(percentile(result.baseline.each, 95)),
        overheadRatio: round(p50 / baselineP50, 3),
        cpuMsPerUpload: { saga: result.saga.cpuMsPerUpload, baseline: result.baseline.cpuMsPerUpload },
      };
      log(`latency: saga p50 ${p50.toFixed(0)} ms vs baseline p50 ${baselineP50.toFixed(0)} ms`);
      log(
        `CPU ms per upload: saga ${JSON.stringify(result.saga.cpuMsPerUpload)}, baseline ${JSON.stringify(result.baseline.cpuMsPerUpload)}`,
      );
      if (opts.breakdown) {
        const breakdown = await latencyBreakdown(client, {
          sagaWorkflowIds: [...sagaWorkflowIds],
          baselineWorkflowIds: result.baselineWorkflowIds,
          ledgerWorkflowId: quotaLedgerWorkflowId('bench'),
        });
        (results.latency as Record<string, unknown>).breakdown = breakdown;
        process.stderr.write(breakdownMarkdown(breakdown));
      }
      await stopProcess(worker);
    }

    if (!skip.has('history')) {
      const workerConnection = await NativeConnection.connect({ address: config.temporal.address });
      const historyConfig = { ...config, temporal: { ...config.temporal, taskQueue: 'bench-history' } };
      const worker = await createUploadWorker({
        config: historyConfig,
        connection: workerConnection,
        client,
        s3,
        activities: standInUploadActivities({ size: 10_000 * 5 * MiB }),
      });
      const history = await worker.runUntil(async () => {
        const handle = await new UploadClient({ client, taskQueue: 'bench-history' }).start({
          uploadId: `history-${Date.now()}`,
          tenant: 'bench',
          source: { type: 'file', path: '/stand-in/10000-parts.bin' },
          destination: { bucket: BUCKET, key: 'bench/10000-parts.bin' },
          partSize: 5 * MiB,
        });
        const result = await handle.result();
        // Every run of the workflow id (continue-as-new would add runs): the largest history counts.
        const runIds: string[] = [];
        for (let attempt = 0; runIds.length === 0 && attempt < 20; attempt++) {
          if (attempt > 0) await new Promise((r) => setTimeout(r, 500)); // visibility trails the history a little
          for await (const execution of client.workflow.list({ query: `WorkflowId = "${handle.workflowId}"` }))
            runIds.push(execution.runId);
        }
        if (runIds.length === 0) throw new Error(`history: no run of ${handle.workflowId} is visible`);
        const events = await Promise.all(
          runIds.map(async (runId) => (await client.workflow.getHandle(handle.workflowId, runId).fetchHistory()).events?.length ?? 0),
        );
        return { parts: result.partCount, maxEventsPerRun: Math.max(...events), runs: runIds.length };
      });
      await workerConnection.close();
      results.history = history;
      log(`history: 10,000 parts in ${history.maxEventsPerRun} events`);
    }

    if (!skip.has('startup')) {
      const startup = await benchStartup({
        client,
        env,
        rounds: Number(opts.startupRounds),
        track: (child) => workerProcesses.add(child),
        log,
      });
      results.startup = startup;
      log(
        `startup: first poll ${startup.before.firstPollMs} → ${startup.after.firstPollMs} ms (×${startup.firstPollRatio}), ` +
          `idle RSS ${startup.before.idleRssMiB} → ${startup.after.idleRssMiB} MiB (×${startup.idleRssRatio})`,
      );
    }
    if (!skip.has('telemetry')) {
      const jaeger = await startJaeger({ dataDir: path.join(work, 'jaeger'), stopGraceMs: 2_000 });
      try {
        const metricsPort = await findFreePort();
        const parts = new Set(opts.telemetryParts.split(','));
        for (const part of parts) if (!['metrics', 'traces', 'logs'].includes(part)) throw new Error(`unknown telemetry part "${part}"`);
        // Both variants report readiness on their health endpoint: the "off" one logs nothing.
        const healthPort = await findFreePort();
        const telemetry = await benchTelemetry({
          uploads,
          bucket: BUCKET,
          work,
          startWorker: (variantEnv) =>
            startWorkerProcess(
              {
                ...variantEnv,
                UPLOAD_SAGA_HEALTH_PORT: String(healthPort),
                UPLOAD_SAGA_HEALTH_HOST: '127.0.0.1',
                UPLOAD_SAGA_HEALTH_BUCKET: BUCKET,
              },
              `http://127.0.0.1:${healthPort}/readyz`,
            ),
          stopWorker: stopProcess,
          onEnv: {
            ...env,
            ...(parts.has('metrics') ? { UPLOAD_SAGA_METRICS_PORT: String(metricsPort), UPLOAD_SAGA_METRICS_HOST: '127.0.0.1' } : {}),
            ...(parts.has('traces') ? { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, OTEL_SERVICE_NAME: 'upload-saga-bench' } : {}),
            LOG_LEVEL: parts.has('logs') ? 'info' : 'silent',
            LOG_FORMAT: 'json',
          },
          offEnv: { ...env, LOG_LEVEL: 'silent' },
          metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
          countTraces: async () => {
            // The search depth must stay below the store's capacity (startJaeger's maxTraces, 10,000 by default).
            const response = await fetch(`${jaeger.queryUrl}/api/traces?service=upload-saga-bench&limit=9999&lookback=1h`);
            return response.ok ? (((await response.json()) as { data?: unknown[] }).data?.length ?? 0) : 0;
          },
          largeBytes: parseByteSize(opts.telemetrySize)!,
          smallUploads: Number(opts.latencyUploads),
          rounds: Number(opts.telemetryRounds),
          partSize,
          concurrency,
          log,
        });
        results.telemetry = { parts: [...parts], ...telemetry };
        log(
          `telemetry: ${telemetry.off.largeMBps} → ${telemetry.on.largeMBps} MB/s (overhead ${(telemetry.throughputOverhead * 100).toFixed(1)} %), ` +
            `p50 ${telemetry.off.smallP50Ms} → ${telemetry.on.smallP50Ms} ms (overhead ${(telemetry.p50Overhead * 100).toFixed(1)} %)`,
        );
      } finally {
        await jaeger.stop();
      }
    }
    if (!skip.has('batch')) {
      results.batch = await benchBatch({
        stack,
        env,
        client,
        bucket: BUCKET,
        work,
        rows: opts.batchRows.split(',').map((row) => {
          const [files, size] = row.split('x');
          return { files: Number(files), fileBytes: parseByteSize(size!)! };
        }),
        tuning: parseBatchTuning(opts.batchTuning),
        startWorker: (workerEnv) =>
          startWorkerProcess(workerEnv, undefined, {
            nodeArgs: opts.batchCpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(opts.batchCpuProf)] : [],
          }),
        stopProcess,
        run,
        have: { aws: await which('aws'), rclone: await which('rclone') },
        log,
      });
    }
    if (!skip.has('migration')) {
      results.migration = await benchMigration({
        stack,
        env,
        client,
        s3,
        work,
        objects: Number(opts.migrationObjects),
        totalBytes: parseByteSize(opts.migrationBytes)!,
        reps: Number(opts.migrationReps),
        startWorker: (workerEnv) =>
          startWorkerProcess(workerEnv, undefined, {
            nodeArgs: opts.migrationCpuProf ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(opts.migrationCpuProf)] : [],
          }),
        stopProcess,
        run,
        have: { aws: await which('aws'), rclone: await which('rclone') },
        loadAverage: () => os.loadavg()[0]!,
        log,
      });
    }
    if (!skip.has('gateway')) {
      results.gateway = await benchGateway({
        stack,
        env,
        bucket: BUCKET,
        work,
        startWorker: (workerEnv) => startWorkerProcess(workerEnv),
        stopProcess,
        track: (child) => workerProcesses.add(child),
        size: parseByteSize(opts.gatewaySize)!,
        reps: Number(opts.gatewayReps),
        parallelUploads: Number(opts.gatewayParallelUploads),
        servers: opts.gatewayServers.split(',').map((name) => {
          if (!(TUS_SERVERS as readonly string[]).includes(name))
            throw new Error(`unknown tus server "${name}" (${TUS_SERVERS.join(', ')})`);
          return name as TusServerName;
        }),
        gatewayEnv: {
          ...(opts.gatewayPartsInFlight ? { UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT: opts.gatewayPartsInFlight } : {}),
          ...(opts.gatewayPartSize ? { UPLOAD_SAGA_GATEWAY_PART_SIZE: opts.gatewayPartSize } : {}),
        },
        ...(opts.gatewayCpuProf ? { cpuProfDir: path.resolve(opts.gatewayCpuProf) } : {}),
        log,
      });
    }
    if (!skip.has('scaleOut')) results.scaleOut = await runScaleOut(opts, { stack, env, work, client, log });
  } finally {
    await Promise.all([...workerProcesses].map(stopProcess));
    s3.destroy();
    await connection.close();
    await stack.stop();
    await rm(work, { recursive: true, force: true });
  }

  if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else process.stdout.write(markdown(results));
}

/**
 * The scale-out section on the server `--scale-out-temporal` names: the real server on PostgreSQL
 * is started for it (databases of its own, dropped after), the dev server is the run's. Workers
 * load one workflow bundle built here (bundling in each of three workers would cost each 15 s of
 * CPU, measured as nothing of the scale-out).
 */
async function runScaleOut(
  opts: Options,
  run: { stack: EmbeddedStack; env: Record<string, string>; work: string; client: Client; log: (line: string) => void },
): Promise<ScaleOutRow> {
  const kind = opts.scaleOutTemporal;
  if (kind !== 'postgres' && kind !== 'dev-server') throw new Error(`--scale-out-temporal must be postgres or dev-server, got "${kind}"`);
  const bundlePath = path.join(run.work, 'scale-out-workflows.js');
  await writeFile(bundlePath, (await bundleUploadWorkflows()).code);
  const server =
    kind === 'postgres'
      ? await startTemporalPostgresServer({
          dataDir: path.join(run.work, 'temporal-postgres'),
          searchAttributes: UPLOAD_SEARCH_ATTRIBUTE_TYPES,
        })
      : undefined;
  const connection = server ? await Connection.connect({ address: server.address }) : undefined;
  try {
    const client = connection ? new Client({ connection, namespace: server!.namespace }) : run.client;
    const workerEnv = {
      ...run.env,
      ...(server ? { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace } : {}),
      FAULTS_WORKFLOW_BUNDLE: bundlePath,
    };
    const { serverVersion } = await client.workflowService.getSystemInfo({});
    return await benchScaleOut({
      client,
      server: server
        ? `the Temporal server ${serverVersion} on PostgreSQL (temporal-server, one process, SQL visibility)`
        : `the Temporal CLI dev server (server ${serverVersion}, SQLite)`,
      serverPid: server ? server.pid : run.stack.temporal.pid,
      minioPid: run.stack.s3.pid,
      bucket: BUCKET,
      work: run.work,
      workerCounts: opts.scaleOutWorkers.split(',').map(Number),
      uploads: Number(opts.scaleOutUploads),
      tenants: Number(opts.scaleOutTenants),
      startWorker: async (taskQueue) => {
        const child = await startWorkerProcess({ ...workerEnv, TEMPORAL_TASK_QUEUE: taskQueue }, undefined, {
          entry: siblingModule(__dirname, '../test/faults/bundled-worker'),
        });
        return child;
      },
      stopProcess: async (child) => {
        await stopProcess(child);
        workerProcesses.delete(child);
      },
      log: run.log,
    });
  } finally {
    await connection?.close();
    await server?.stop();
  }
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function markdown(results: Record<string, unknown>): string {
  const lines: string[] = [];
  const machine = results.machine as Record<string, unknown>;
  lines.push(`Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}`, '');
  const rows = results.throughput as ThroughputRow[] | undefined;
  if (rows) {
    lines.push(
      '| size | part size × concurrency | saga MB/s | lib-storage MB/s | ratio | aws s3 cp | rclone | PutObject (ceiling) | saga ÷ fastest peer |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const r of rows) {
      lines.push(
        `| ${r.bytes / MiB} MiB | ${r.partSize / MiB} MiB × ${r.concurrency} | ${r.sagaMBps} | ${r.libStorageMBps} | ${r.ratio} | ${r.awsCliMBps ?? '—'} | ${r.rcloneMBps ?? '—'} | ${r.putObjectMBps ?? '—'} | ${r.ratioToFastestPeer} (${r.fastestPeer}) |`,
      );
    }
    lines.push('', '| size | tool | CPU ms/MiB: client | MinIO | Temporal |', '| --- | --- | --- | --- | --- |');
    for (const r of rows) {
      for (const [tool, c] of Object.entries(r.cpuMsPerMiB))
        lines.push(`| ${r.bytes / MiB} MiB | ${tool} | ${c.client} | ${c.minio} | ${c.temporal} |`);
    }
    lines.push('');
  }
  const batchRows = results.batch as BatchBenchRow[] | undefined;
  if (batchRows) lines.push(...batchMarkdown(batchRows));
  const migration = results.migration as MigrationBenchResult | undefined;
  if (migration) lines.push(...migrationMarkdown(migration));
  const memory = results.memory as Record<string, number> | undefined;
  if (memory)
    lines.push(
      `Memory: ${memory.fileBytes! / MiB} MiB upload, worker peak RSS ${memory.peakRssMiB} MiB (idle ${memory.idleRssMiB} MiB), bound ${memory.boundMiB} MiB`,
      '',
    );
  const latency = results.latency as Record<string, number> | undefined;
  if (latency) {
    lines.push(
      `Latency (${latency.uploads} concurrent 1 MiB uploads): saga p50 ${latency.p50Ms} ms, p95 ${latency.p95Ms} ms, ${latency.sagasPerSecond} sagas/s; baseline p50 ${latency.baselineP50Ms} ms; overhead ×${latency.overheadRatio}`,
      '',
    );
  }
  const history = results.history as Record<string, number> | undefined;
  if (history)
    lines.push(`History: ${history.parts} parts in ${history.runs} run(s), ${history.maxEventsPerRun} events at most per run`, '');
  const startup = results.startup as StartupRow | undefined;
  if (startup) {
    lines.push(
      `| worker startup (median of ${startup.rounds}) | first poll | idle RSS |`,
      '| --- | --- | --- |',
      `| before: \`${startup.before.command}\` | ${startup.before.firstPollMs} ms | ${startup.before.idleRssMiB} MiB |`,
      `| after: \`${startup.after.command}\` | ${startup.after.firstPollMs} ms | ${startup.after.idleRssMiB} MiB |`,
      '',
    );
  }
  const telemetry = results.telemetry as TelemetryRow | undefined;
  if (telemetry) {
    lines.push(
      `| telemetry (${telemetry.rounds} rounds) | ${telemetry.largeBytes / MiB} MiB upload | p50 of ${telemetry.smallUploads} × 1 MiB |`,
      '| --- | --- | --- |',
      `| off | ${telemetry.off.largeMBps} MB/s | ${telemetry.off.smallP50Ms} ms |`,
      `| on: metrics (scraped each second), traces to Jaeger, JSON logs | ${telemetry.on.largeMBps} MB/s | ${telemetry.on.smallP50Ms} ms |`,
      `| overhead (bound) | ${(telemetry.throughputOverhead * 100).toFixed(1)} % (≤ 5 %) | ${(telemetry.p50Overhead * 100).toFixed(1)} % (≤ 10 %) |`,
      '',
    );
  }
  const gateway = results.gateway as GatewayBenchResult | undefined;
  if (gateway) lines.push(gatewayMarkdown(gateway));
  const scaleOut = results.scaleOut as ScaleOutRow | undefined;
  if (scaleOut) lines.push(scaleOutMarkdown(scaleOut));
  return `${lines.join('\n')}\n`;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
