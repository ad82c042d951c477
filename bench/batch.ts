/**
 * The `batch` section of `npm run bench` (`--only batch`): many small files from a local directory,
 * uploaded by ONE batch saga, by `aws s3 cp --recursive` and by `rclone copy` (each with its own
 * default concurrency), into fresh prefixes of the same MinIO. Rows: files/s and MB/s of each,
 * the saga's ratio to the better of the two tools, CPU ms per file of the worker, the dev server
 * and MinIO during the saga's run, and the history events of the batch's runs.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { EmbeddedStack } from '../src/embedded';
import { BatchClient } from '../src/batch-client';
import type { BatchRequest } from '../src/batch/batch-types';
import { cpuSeconds, MiB, rcloneS3Flags, timed, waitedChildrenCpuSeconds } from './measure';

/** One row: `files` files of `fileBytes` each. */
export interface BatchBenchRow {
  files: number;
  fileBytes: number;
  /** Request options the saga's batch ran with beyond its defaults. */
  tuning: BatchTuning;
  saga: { filesPerSecond: number; MBps: number };
  /** `cpuMsPerFile`: the tool's own process (and its children), for the saga's worker + dev server to be set against. */
  awsCli?: { filesPerSecond: number; MBps: number; cpuMsPerFile: number };
  rclone?: { filesPerSecond: number; MBps: number; cpuMsPerFile: number };
  /** Saga files/s over the better tool's. */
  ratio?: number;
  cpuMsPerFile: { worker: number; temporal: number; minio: number };
  /** Workflow runs of the batch (continue-as-new) and their history events. */
  runs: number;
  eventsPerRunMax: number;
  eventsTotal: number;
}

export interface BatchBenchOptions {
  stack: EmbeddedStack;
  env: Record<string, string>;
  client: Client;
  bucket: string;
  work: string;
  rows: { files: number; fileBytes: number }[];
  /** Request options of the saga's batch (chunk size, concurrencies); unset ones take the batch's defaults. */
  tuning?: BatchTuning;
  startWorker(env: Record<string, string>): Promise<ChildProcess>;
  stopProcess(child: ChildProcess): Promise<void>;
  /** Runs a command line tool; rejects on a non-zero exit. */
  run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void>;
  have: { aws: boolean; rclone: boolean };
  log(line: string): void;
}

/** The request options a bench run may set. */
export type BatchTuning = Partial<Pick<BatchRequest, 'filesPerChunk' | 'fileConcurrency' | 'chunkConcurrency' | 'chunksPerRun'>>;

const TUNABLE = ['filesPerChunk', 'fileConcurrency', 'chunkConcurrency', 'chunksPerRun'] as const;

/** `filesPerChunk=256,fileConcurrency=16` as {@link BatchTuning}; undefined or '' is none. */
export function parseBatchTuning(list: string | undefined): BatchTuning {
  const tuning: BatchTuning = {};
  for (const item of (list ?? '').split(',').filter(Boolean)) {
    const [name, value] = item.split('=');
    if (!(TUNABLE as readonly string[]).includes(name!) || !/^\d+$/.test(value ?? ''))
      throw new Error(`--batch-tuning: "${item}" is not one of ${TUNABLE.join(', ')} = a whole number`);
    tuning[name as (typeof TUNABLE)[number]] = Number(value);
  }
  return tuning;
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

export async function benchBatch(options: BatchBenchOptions): Promise<BatchBenchRow[]> {
  const { stack, bucket, log } = options;
  const rows: BatchBenchRow[] = [];
  const awsConfig = path.join(options.work, 'aws-batch-config');
  await writeFile(awsConfig, `[default]\nregion = ${stack.s3.region}\n`);
  const { AWS_CA_BUNDLE: _caBundle, ...inherited } = process.env;
  const toolEnv = {
    ...inherited,
    AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
    AWS_CONFIG_FILE: awsConfig,
  };
  const taskQueue = 'bench-batch';
  const worker = await options.startWorker({ ...options.env, TEMPORAL_TASK_QUEUE: taskQueue });
  const batches = new BatchClient({ client: options.client, taskQueue });
  try {
    for (const { files, fileBytes } of options.rows) {
      const label = `${files} × ${fileBytes / 1024} KiB`;
      const dir = path.join(options.work, `batch-${files}-${fileBytes}`);
      // One random block, stamped with each file's number: distinct files without generating
      // random bytes for each (makeBenchFile's 16 MiB block per file would take minutes here).
      const block = randomBytes(fileBytes);
      for (let i = 0; i < files; i++) {
        const sub = path.join(dir, `d${Math.floor(i / 1000)}`);
        if (i % 1000 === 0) await mkdir(sub, { recursive: true });
        block.writeUInt32BE(i, 0);
        await writeFile(path.join(sub, `f${i}.bin`), block);
      }
      const bytes = files * fileBytes;
      const rate = (ms: number) => ({ filesPerSecond: round(files / (ms / 1000)), MBps: round(bytes / MiB / (ms / 1000)) });

      const processes = { worker: worker.pid!, temporal: stack.temporal.pid, minio: stack.s3.pid };
      const cpu = async () =>
        Object.fromEntries(await Promise.all(Object.entries(processes).map(async ([n, pid]) => [n, await cpuSeconds(pid)] as const)));
      const before = await cpu();
      const batchId = `bench-${files}-${fileBytes}-${Date.now()}`;
      const { ms } = await timed(async () => {
        const handle = await batches.start({
          batchId,
          tenant: 'bench-batch',
          source: { type: 'directory', path: dir },
          destination: { bucket, prefix: `bench-batch/${batchId}/` },
          ...options.tuning,
        });
        const result = await handle.result();
        if (result.filesDone !== files) throw new Error(`batch stored ${result.filesDone} of ${files} files`);
      });
      const after = await cpu();
      const saga = rate(ms);
      log(
        `batch ${label} saga: ${saga.filesPerSecond} files/s, ${saga.MBps} MB/s, CPU ms/file worker ${((after.worker! - before.worker!) * 1000) / files}`,
      );
      // Visibility is eventually consistent: the last run's history length settles within a second.
      await new Promise((r) => setTimeout(r, 2000));
      const lengths: number[] = [];
      for await (const execution of options.client.workflow.list({ query: `WorkflowId = "batch:bench-batch:${batchId}"` }))
        lengths.push(execution.historyLength);

      const row: BatchBenchRow = {
        files,
        fileBytes,
        tuning: options.tuning ?? {},
        saga,
        cpuMsPerFile: {
          worker: round(((after.worker! - before.worker!) * 1000) / files, 2),
          temporal: round(((after.temporal! - before.temporal!) * 1000) / files, 2),
          minio: round(((after.minio! - before.minio!) * 1000) / files, 2),
        },
        runs: lengths.length,
        eventsPerRunMax: Math.max(0, ...lengths),
        eventsTotal: lengths.reduce((a, b) => a + b, 0),
      };
      if (options.have.aws) {
        const awsCpuBefore = await waitedChildrenCpuSeconds(process.pid);
        const { ms: awsMs } = await timed(() =>
          options.run(
            'aws',
            [
              '--endpoint-url',
              stack.s3.endpoint,
              's3',
              'cp',
              '--recursive',
              '--only-show-errors',
              dir,
              `s3://${bucket}/bench-batch/aws-${batchId}/`,
            ],
            toolEnv,
          ),
        );
        row.awsCli = {
          ...rate(awsMs),
          cpuMsPerFile: round((((await waitedChildrenCpuSeconds(process.pid)) - awsCpuBefore) * 1000) / files, 2),
        };
        log(`batch ${label} aws s3 cp --recursive: ${row.awsCli.filesPerSecond} files/s, ${row.awsCli.cpuMsPerFile} CPU ms/file`);
      }
      if (options.have.rclone) {
        const rcloneCpuBefore = await waitedChildrenCpuSeconds(process.pid);
        const { ms: rcloneMs } = await timed(() =>
          options.run('rclone', ['copy', dir, `:s3:${bucket}/bench-batch/rclone-${batchId}/`, ...rcloneS3Flags(stack.s3)], toolEnv),
        );
        row.rclone = {
          ...rate(rcloneMs),
          cpuMsPerFile: round((((await waitedChildrenCpuSeconds(process.pid)) - rcloneCpuBefore) * 1000) / files, 2),
        };
        log(`batch ${label} rclone copy: ${row.rclone.filesPerSecond} files/s, ${row.rclone.cpuMsPerFile} CPU ms/file`);
      }
      const best = Math.max(row.awsCli?.filesPerSecond ?? 0, row.rclone?.filesPerSecond ?? 0);
      if (best > 0) row.ratio = round(saga.filesPerSecond / best, 2);
      rows.push(row);
      await rm(dir, { recursive: true, force: true });
    }
  } finally {
    await options.stopProcess(worker);
  }
  return rows;
}

/** The section's lines of the markdown report. */
export function batchMarkdown(rows: BatchBenchRow[]): string[] {
  const lines = [
    '| batch | saga files/s (MB/s) | aws s3 cp --recursive | rclone copy | ratio | CPU ms/file worker · dev server · MinIO | CPU ms/file aws · rclone | runs · events max/run |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  const cell = (r?: { filesPerSecond: number; MBps: number }) => (r ? `${r.filesPerSecond} (${r.MBps})` : '—');
  for (const r of rows) {
    lines.push(
      `| ${r.files} × ${r.fileBytes / 1024} KiB | ${cell(r.saga)} | ${cell(r.awsCli)} | ${cell(r.rclone)} | ${r.ratio ?? '—'} | ${r.cpuMsPerFile.worker} · ${r.cpuMsPerFile.temporal} · ${r.cpuMsPerFile.minio} | ${r.awsCli?.cpuMsPerFile ?? '—'} · ${r.rclone?.cpuMsPerFile ?? '—'} | ${r.runs} · ${r.eventsPerRunMax} |`,
    );
  }
  return [...lines, ''];
}
