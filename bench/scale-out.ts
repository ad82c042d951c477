/**
 * The `scaleOut` section of `npm run bench`: small-upload throughput with 1, 2 and 3 worker
 * processes on one task queue of the same Temporal server (the real server on PostgreSQL by
 * default, the run's dev server with `--scale-out-temporal dev-server`).
 *
 * For each worker count: that many worker processes on a fresh task queue, then `uploads`
 * concurrent 1 MiB uploads (the one-part fast path), twice — all for one tenant, then spread over
 * `tenants` tenants — each on fresh tenants, so no ledger is warm. Uploads/s is uploads ÷ the time
 * from the first start to the last end. Beside it, the CPU seconds each process spent per upload
 * (the workers together, the Temporal server, PostgreSQL's processes, MinIO, the bench) and how
 * many updates and signals the tenants' ledger workflows took, which says whether the per-tenant
 * ledger batches across workers or queues them.
 *
 * Why this shape: the question is whether anything in the design serialises across workers. One
 * tenant puts every reservation through one ledger workflow; many tenants do not. If uploads/s
 * with one tenant stays below many tenants' as workers are added, the ledger is the bottleneck;
 * if both follow the machine's CPU, the cores are.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { UploadClient } from '../src/client';
import { quotaLedgerWorkflowId } from '../src/workflows/quota-ledger';
import { cpuSeconds, makeBenchFile, MiB } from './measure';

/** One measured round: `workers` processes, `tenants` tenants. */
export interface ScaleOutRound {
  workers: number;
  tenants: number;
  uploads: number;
  seconds: number;
  uploadsPerSecond: number;
  /** CPU milliseconds per upload, by process (postgres: every process named postgres on the machine). */
  cpuMsPerUpload: Record<string, number>;
  /** Updates and signals the tenants' ledger workflows received, in all. */
  ledger: { updates: number; signals: number };
}

/** The `scaleOut` row. */
export interface ScaleOutRow {
  /** The Temporal server the rounds ran on. */
  server: string;
  uploads: number;
  fileBytes: number;
  rounds: ScaleOutRound[];
}

/** CPU seconds of every process whose command name is `postgres` (the server and its backends). */
async function postgresCpuSeconds(): Promise<number> {
  let total = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = (await readFile(path.join('/proc', entry, 'comm'), 'utf8')).trim();
      if (comm === 'postgres') total += await cpuSeconds(Number(entry));
    } catch {
      // The process ended while being read.
    }
  }
  return total;
}

export async function benchScaleOut(options: {
  client: Client;
  /** What the server is, for the row. */
  server: string;
  /** The Temporal server's process id. */
  serverPid: number;
  minioPid: number;
  bucket: string;
  work: string;
  workerCounts: number[];
  uploads: number;
  tenants: number;
  /** Starts one worker process on `taskQueue`, resolves once it polls. */
  startWorker: (taskQueue: string) => Promise<ChildProcess>;
  stopProcess: (child: ChildProcess) => Promise<void>;
  log: (line: string) => void;
}): Promise<ScaleOutRow> {
  const file = path.join(options.work, 'scale-out.bin');
  await makeBenchFile(file, MiB);
  const rounds: ScaleOutRound[] = [];
  const stamp = Date.now();
  for (const workers of options.workerCounts) {
    const taskQueue = `bench-scale-${workers}-${stamp}`;
    const children: ChildProcess[] = [];
    try {
      for (let i = 0; i < workers; i++) children.push(await options.startWorker(taskQueue));
      const uploads = new UploadClient({ client: options.client, taskQueue });
      for (const tenants of [1, options.tenants]) {
        const tenantNames = Array.from({ length: tenants }, (_, i) => `bench-scale-${workers}w-${tenants}t-${i}-${stamp}`);
        const processes: Record<string, () => Promise<number>> = {
          workers: async () => (await Promise.all(children.map((c) => cpuSeconds(c.pid!)))).reduce((a, b) => a + b, 0),
          temporal: () => cpuSeconds(options.serverPid),
          postgres: postgresCpuSeconds,
          minio: () => cpuSeconds(options.minioPid),
          bench: () => cpuSeconds(process.pid),
        };
        const cpu = async () =>
          Object.fromEntries(await Promise.all(Object.entries(processes).map(async ([name, read]) => [name, await read()] as const)));
        const before = await cpu();
        const started = performance.now();
        await Promise.all(
          Array.from({ length: options.uploads }, async (_, i) => {
            const handle = await uploads.start({
              uploadId: `scale-${i}`,
              tenant: tenantNames[i % tenants]!,
              source: { type: 'file', path: file },
              destination: { bucket: options.bucket, key: `bench/scale-out/${taskQueue}/${tenants}t/${i}` },
            });
            return handle.result();
          }),
        );
        const seconds = (performance.now() - started) / 1000;
        const after = await cpu();
        const ledger = { updates: 0, signals: 0 };
        for (const tenant of tenantNames) {
          const { events } = await options.client.workflow.getHandle(quotaLedgerWorkflowId(tenant)).fetchHistory();
          for (const event of events ?? []) {
            if (event.workflowExecutionUpdateAcceptedEventAttributes) ledger.updates++;
            if (event.workflowExecutionSignaledEventAttributes) ledger.signals++;
          }
        }
        const round: ScaleOutRound = {
          workers,
          tenants,
          uploads: options.uploads,
          seconds: Math.round(seconds * 10) / 10,
          uploadsPerSecond: Math.round((options.uploads / seconds) * 10) / 10,
          cpuMsPerUpload: Object.fromEntries(
            Object.keys(processes).map((name) => [name, Math.round(((after[name]! - before[name]!) * 1000) / options.uploads)]),
          ),
          ledger,
        };
        rounds.push(round);
        options.log(
          `scaleOut: ${workers} worker(s), ${tenants} tenant(s): ${round.uploadsPerSecond} uploads/s; CPU ms per upload ${JSON.stringify(round.cpuMsPerUpload)}; ledger ${ledger.updates} updates, ${ledger.signals} signals`,
        );
      }
    } finally {
      await Promise.all(children.map(options.stopProcess));
    }
  }
  return { server: options.server, uploads: options.uploads, fileBytes: MiB, rounds };
}

/** The row as Markdown. */
export function scaleOutMarkdown(row: ScaleOutRow): string {
  const names = Object.keys(row.rounds[0]?.cpuMsPerUpload ?? {});
  const lines = [
    `Scale-out on ${row.server}: ${row.uploads} concurrent ${row.fileBytes / MiB} MiB uploads per round`,
    '',
    `| workers | tenants | uploads/s | CPU ms per upload: ${names.join(' / ')} | ledger updates / signals |`,
    '| --- | --- | --- | --- | --- |',
    ...row.rounds.map(
      (r) =>
        `| ${r.workers} | ${r.tenants} | ${r.uploadsPerSecond} | ${names.map((n) => r.cpuMsPerUpload[n]).join(' / ')} | ${r.ledger.updates} / ${r.ledger.signals} |`,
    ),
    '',
  ];
  return lines.join('\n');
}
