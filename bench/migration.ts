/**
 * The `migration` section of `npm run bench` (`--only migration`): `objects` objects totalling
 * `totalBytes` in one bucket of the bench's MinIO, copied to another bucket of the same MinIO by
 * the migration saga (server-side CopyObject), by `aws s3 sync` and by `rclone sync` (each with its
 * own default concurrency; both also copy server-side between two buckets of one store). Each
 * repetition runs all three into fresh prefixes, who goes first rotating; the best run of each
 * counts. Rows: objects/s and MB/s of each, the saga's ratio to the better of the two tools, CPU
 * seconds of the worker and MinIO during the saga's runs, and the history events of its runs.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import type { EmbeddedStack } from '../src/embedded';
import { BatchClient } from '../src/batch-client';
import { cpuSeconds, MiB, rcloneS3Flags, timed } from './measure';

/** Objects/s and MB/s of one tool's best run. */
export interface MigrationRate {
  objectsPerSecond: number;
  MBps: number;
  /** Every run's seconds, in the order run. */
  runsSeconds: number[];
}

/** The section's result. */
export interface MigrationBenchResult {
  objects: number;
  totalBytes: number;
  reps: number;
  saga: MigrationRate;
  awsCliSync?: MigrationRate;
  rcloneSync?: MigrationRate;
  /** Saga objects/s over the better tool's (best runs). */
  ratio?: number;
  /** CPU seconds per saga run (mean): the worker and MinIO. */
  sagaCpuSeconds: { worker: number; minio: number };
  /** History events of the last saga migration's runs (continue-as-new). */
  runs: number;
  eventsTotal: number;
  /** Load average (1 min) when the section started and ended. */
  loadAverage: [number, number];
}

/** What the section needs from the bench. */
export interface MigrationBenchOptions {
  stack: EmbeddedStack;
  env: Record<string, string>;
  client: Client;
  s3: S3Client;
  work: string;
  objects: number;
  totalBytes: number;
  reps: number;
  startWorker(env: Record<string, string>): Promise<ChildProcess>;
  stopProcess(child: ChildProcess): Promise<void>;
  /** Runs a command line tool; rejects on a non-zero exit. */
  run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void>;
  have: { aws: boolean; rclone: boolean };
  loadAverage(): number;
  log(line: string): void;
}

const SOURCE = 'bench-migration-src';
const DESTINATION = 'bench-migration-dst';
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((err: unknown) => {
    if (!(err instanceof Error && /BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(err.name))) throw err;
  });
}

/** Deletes every object under `prefix` (1,000 a request). */
async function emptyPrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  for (;;) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length === 0) return;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
  }
}

async function countUnder(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let count = 0;
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    count += page.KeyCount ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return count;
}

export async function benchMigration(options: MigrationBenchOptions): Promise<MigrationBenchResult> {
  const { stack, s3, log, objects, totalBytes } = options;
  const loadAtStart = options.loadAverage();
  const objectBytes = Math.floor(totalBytes / objects);
  await ensureBucket(s3, SOURCE);
  await ensureBucket(s3, DESTINATION);
  const sourcePrefix = `data-${objects}x${objectBytes}/`;
  if ((await countUnder(s3, SOURCE, sourcePrefix)) !== objects) {
    log(`migration: writing ${objects} objects of ${objectBytes} bytes to s3://${SOURCE}/${sourcePrefix}`);
    const block = randomBytes(objectBytes);
    let next = 0;
    const lane = async () => {
      while (next < objects) {
        const i = next++;
        const body = Buffer.from(block);
        body.writeUInt32BE(i, 0);
        await s3.send(new PutObjectCommand({ Bucket: SOURCE, Key: `${sourcePrefix}d${Math.floor(i / 100)}/o${i}.bin`, Body: body }));
      }
    };
    await Promise.all(Array.from({ length: 16 }, lane));
  }
  const awsConfig = path.join(options.work, 'aws-migration-config');
  await writeFile(awsConfig, `[default]\nregion = ${stack.s3.region}\n`);
  const { AWS_CA_BUNDLE: _caBundle, ...inherited } = process.env;
  const toolEnv = {
    ...inherited,
    AWS_ACCESS_KEY_ID: stack.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
    AWS_CONFIG_FILE: awsConfig,
  };
  const taskQueue = 'bench-migration';
  const worker = await options.startWorker({ ...options.env, TEMPORAL_TASK_QUEUE: taskQueue });
  const batches = new BatchClient({ client: options.client, taskQueue });
  const runsSeconds: Record<'saga' | 'awsCliSync' | 'rcloneSync', number[]> = { saga: [], awsCliSync: [], rcloneSync: [] };
  const cpu = { worker: 0, minio: 0 };
  let lastMigration = '';
  const stamp = Date.now();
  const tools: { name: keyof typeof runsSeconds; copy(prefix: string): Promise<void> }[] = [
    {
      name: 'saga',
      async copy(prefix) {
        const migrationId = `bench-${stamp}-${prefix.replace(/\W/g, '')}`;
        lastMigration = migrationId;
        const handle = await batches.migrate({
          migrationId,
          tenant: 'bench-migration',
          source: { bucket: SOURCE, prefix: sourcePrefix },
          destination: { bucket: DESTINATION, prefix },
        });
        const result = await handle.result();
        if (result.objectsCopied !== objects) throw new Error(`the migration copied ${result.objectsCopied} of ${objects} objects`);
      },
    },
  ];
  if (options.have.aws)
    tools.push({
      name: 'awsCliSync',
      copy: (prefix) =>
        options.run(
          'aws',
          [
            '--endpoint-url',
            stack.s3.endpoint,
            's3',
            'sync',
            '--only-show-errors',
            `s3://${SOURCE}/${sourcePrefix}`,
            `s3://${DESTINATION}/${prefix}`,
          ],
          toolEnv,
        ),
    });
  if (options.have.rclone)
    tools.push({
      name: 'rcloneSync',
      copy: (prefix) =>
        options.run(
          'rclone',
          ['sync', `:s3:${SOURCE}/${sourcePrefix}`, `:s3:${DESTINATION}/${prefix}`, ...rcloneS3Flags(stack.s3)],
          toolEnv,
        ),
    });
  try {
    for (let rep = 0; rep < options.reps; rep++) {
      const order = tools.map((_, i) => tools[(i + rep) % tools.length]!);
      for (const tool of order) {
        const prefix = `${tool.name}-${stamp}-r${rep}/`;
        const before = tool.name === 'saga' ? { worker: await cpuSeconds(worker.pid!), minio: await cpuSeconds(stack.s3.pid) } : undefined;
        const { ms } = await timed(() => tool.copy(prefix));
        if (before) {
          cpu.worker += (await cpuSeconds(worker.pid!)) - before.worker;
          cpu.minio += (await cpuSeconds(stack.s3.pid)) - before.minio;
        }
        const copied = await countUnder(s3, DESTINATION, prefix);
        if (copied !== objects) throw new Error(`${tool.name} left ${copied} of ${objects} objects under ${prefix}`);
        runsSeconds[tool.name].push(round(ms / 1000, 2));
        log(`migration rep ${rep + 1} ${tool.name}: ${round(objects / (ms / 1000))} objects/s (load ${options.loadAverage()})`);
        await emptyPrefix(s3, DESTINATION, prefix);
      }
    }
  } finally {
    await options.stopProcess(worker);
  }
  const rate = (seconds: number[]): MigrationRate | undefined => {
    if (seconds.length === 0) return undefined;
    const best = Math.min(...seconds);
    return { objectsPerSecond: round(objects / best), MBps: round(totalBytes / MiB / best), runsSeconds: seconds };
  };
  const lengths: number[] = [];
  await new Promise((r) => setTimeout(r, 2000));
  for await (const execution of options.client.workflow.list({ query: `WorkflowId = "migration:bench-migration:${lastMigration}"` }))
    lengths.push(execution.historyLength);
  const saga = rate(runsSeconds.saga)!;
  const awsCliSync = rate(runsSeconds.awsCliSync);
  const rcloneSync = rate(runsSeconds.rcloneSync);
  const better = Math.max(awsCliSync?.objectsPerSecond ?? 0, rcloneSync?.objectsPerSecond ?? 0);
  return {
    objects,
    totalBytes,
    reps: options.reps,
    saga,
    ...(awsCliSync ? { awsCliSync } : {}),
    ...(rcloneSync ? { rcloneSync } : {}),
    ...(better > 0 ? { ratio: round(saga.objectsPerSecond / better, 2) } : {}),
    sagaCpuSeconds: { worker: round(cpu.worker / options.reps, 2), minio: round(cpu.minio / options.reps, 2) },
    runs: lengths.length,
    eventsTotal: lengths.reduce((a, b) => a + b, 0),
    loadAverage: [loadAtStart, options.loadAverage()],
  };
}

/** The section's lines of the markdown report. */
export function migrationMarkdown(r: MigrationBenchResult): string[] {
  const cell = (rate?: MigrationRate) => (rate ? `${rate.objectsPerSecond} (${rate.MBps})` : '—');
  return [
    '| migration | saga objects/s (MB/s) | aws s3 sync | rclone sync | ratio | CPU s/run worker · MinIO | runs · events | load |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    `| ${r.objects} × ${round(r.totalBytes / r.objects / MiB, 2)} MiB, best of ${r.reps} | ${cell(r.saga)} | ${cell(r.awsCliSync)} | ${cell(r.rcloneSync)} | ${r.ratio ?? '—'} | ${r.sagaCpuSeconds.worker} · ${r.sagaCpuSeconds.minio} | ${r.runs} · ${r.eventsTotal} | ${r.loadAverage.join(' → ')} |`,
    '',
  ];
}
