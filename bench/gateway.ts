/**
 * The `gateway` section of `npm run bench` (`--only gateway`): tus-js-client in the bench process
 * against three tus servers on the same MinIO, in one run —
 *
 * - gateway: `upload-saga gateway` as its own process (the built package, dist/: `npm run build` first),
 *   with an upload worker in another;
 * - tusd: the reference server (`src/embedded/tusd.ts`) with its S3 store, at its defaults;
 * - tus-node-server: `@tus/server` with `@tus/s3-store` (bench/tus-node-server.ts), at its defaults —
 *
 * each for one PATCH of the whole file, 8 MiB PATCHes, and parallel uploads (tus-js-client's
 * `parallelUploads`: partial uploads joined by a final one, which needs the concatenation
 * extension; a server whose OPTIONS does not list `concatenation` in Tus-Extension gets the row
 * "unsupported"). Each repetition starts with the next server, so none always runs first; the
 * best run counts. Per row: MB/s (MiB per second, like every section), the ratio to tusd's row,
 * and the server's peak RSS while the row ran (VmHWM, reset before each upload through
 * /proc/<pid>/clear_refs).
 *
 * Why in one run: the figures depend on the machine and on what else it does; servers measured
 * minutes apart on a shared 2-core machine differ by more than the servers do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tus from 'tus-js-client';
import type { EmbeddedStack } from '../src/embedded';
import { startTusdServer } from '../src/embedded/tusd';
import { hashToken } from '../src/gateway/config';
import { siblingModule } from '../src/module-path';
import { cpuSeconds, currentRssMiB, mainThreadCpuSeconds, mbps, MiB, peakRssMiB, timed } from './measure';

export const TUS_SERVERS = ['gateway', 'tusd', 'tus-node-server'] as const;
export type TusServerName = (typeof TUS_SERVERS)[number];

export const TUS_MODES = ['one PATCH', '8 MiB PATCHes', 'parallel uploads'] as const;
export type TusMode = (typeof TUS_MODES)[number];

/** One server in one way of sending. */
export interface GatewayBenchRow {
  server: TusServerName;
  mode: TusMode;
  /** Best of the repetitions; absent when the server cannot do this mode. */
  mbps?: number;
  runsMBps: number[];
  /** This row's MB/s ÷ tusd's in the same mode. */
  ratioToTusd?: number;
  /** Highest VmHWM of the server process over this row's uploads (reset before each). */
  peakRssMiB?: number;
  /**
   * CPU seconds per GiB uploaded, mean over the runs, of the server's processes: the gateway's
   * include its upload worker and the Temporal dev server. A measure the machine's load does not
   * skew the way it skews MB/s.
   */
  cpuSecondsPerGiB?: number;
  /** Mean over the runs: from the start until creation answered (a single upload's POST; absent for parallel uploads). */
  createMs?: number;
  /**
   * Parallel uploads only, mean over the runs: from tus-js-client's last progress event until the
   * upload was reported done. On Node it reports a PATCH's last bytes only with its answer, so this
   * is from the last partial's answer: the final's creation and the join.
   */
  finishMs?: number;
  /** CPU seconds per GiB the S3 store (MinIO) spent during the row's uploads, mean over the runs. */
  storeCpuSecondsPerGiB?: number;
  /** Why the row did not run. */
  unsupported?: string;
}

/** What the section reports. */
export interface GatewayBenchResult {
  bytes: number;
  reps: number;
  parallelUploads: number;
  servers: Partial<Record<TusServerName, { settings: string; idleRssMiB: number; extensions: string[] }>>;
  rows: GatewayBenchRow[];
}

export interface GatewayBenchOptions {
  stack: EmbeddedStack;
  /** Temporal and S3 variables, as the other sections' workers get them. */
  env: Record<string, string>;
  bucket: string;
  /** Scratch directory (tusd's log). */
  work: string;
  /** Starts an upload worker process with these variables. */
  startWorker: (env: Record<string, string>) => Promise<ChildProcess>;
  /** Stops a process this section started. */
  stopProcess: (child: ChildProcess) => Promise<void>;
  /** Registers a child process, so it is stopped on the way out whatever happens. */
  track: (child: ChildProcess) => void;
  size: number;
  reps: number;
  /** The servers to run (all by default; fewer to profile one). */
  servers?: readonly TusServerName[];
  /** `parallelUploads` of the parallel row. */
  parallelUploads: number;
  /** Extra variables for the gateway (e.g. UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT). */
  gatewayEnv: Record<string, string>;
  /** Write a CPU profile of the gateway process here (node --cpu-prof). */
  cpuProfDir?: string;
  log: (line: string) => void;
}

/** A running tus server the bench uploads to. */
interface TusServer {
  endpoint: string;
  pid: number;
  /** Every process whose CPU time is the server's. */
  cpuPids: number[];
  headers: Record<string, string>;
  settings: string;
}

/** Spawns a Node process running `args` and waits for its `url http://…` line. */
async function startNodeServer(
  args: string[],
  env: NodeJS.ProcessEnv,
  track: (child: ChildProcess) => void,
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  track(child);
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /url\s+(http:\/\/\S+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`${args.at(-1)} exited with ${code}`)));
  });
  return { child, url };
}

/**
 * The gateway as the package ships it (`dist/cli/main.js`, from `npm run build`), not through tsx:
 * a process that compiles its sources at start keeps a larger heap, and every full collection
 * marks all of it (with the gateway receiving 128 MiB that was a third more CPU on V8's helper
 * threads). Refuses a build older than any file under src/, so that a stale build is never measured.
 */
async function builtGatewayEntry(): Promise<string> {
  const root = path.resolve(__dirname, '..');
  const entry = path.join(root, 'dist/cli/main.js');
  const built = await stat(entry).then(
    (s) => s.mtimeMs,
    () => undefined,
  );
  if (built === undefined) throw new Error('dist/cli/main.js is missing: run `npm run build` before the gateway section');
  for (const file of await readdir(path.join(root, 'src'), { recursive: true })) {
    if ((await stat(path.join(root, 'src', file))).mtimeMs > built)
      throw new Error(`src/${file} is newer than dist/: run \`npm run build\` before the gateway section`);
  }
  return entry;
}

/** Resets a process's VmHWM to its current RSS (Linux ≥ 4.0); false where that is not allowed. */
async function resetPeakRss(pid: number): Promise<boolean> {
  return writeFile(`/proc/${pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
}

/** The extensions a tus server lists in its OPTIONS answer. */
async function extensionsOf(endpoint: string): Promise<string[]> {
  const response = await fetch(endpoint, { method: 'OPTIONS', headers: { 'Tus-Resumable': '1.0.0' } });
  return (response.headers.get('tus-extension') ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
}

/** When, from the start, the upload's URL was known (creation answered), and when tus-js-client last reported progress. */
interface Phases {
  createdMs: number;
  lastProgressMs: number;
}

function upload(data: Buffer, endpoint: string, headers: Record<string, string>, mode: TusMode, parallelUploads: number): Promise<Phases> {
  const start = performance.now();
  const phases: Phases = { createdMs: NaN, lastProgressMs: NaN };
  return new Promise<Phases>((resolve, reject) => {
    const run = new tus.Upload(data, {
      endpoint,
      headers,
      ...(mode === '8 MiB PATCHes' ? { chunkSize: 8 * MiB } : {}),
      ...(mode === 'parallel uploads' ? { parallelUploads } : {}),
      metadata: { filename: 'bench.bin' },
      retryDelays: null,
      storeFingerprintForResuming: false,
      onUploadUrlAvailable: () => void (phases.createdMs ||= performance.now() - start),
      onProgress: (sent, total) => {
        if (sent === total) phases.lastProgressMs = performance.now() - start;
      },
      onSuccess: () => resolve(phases),
      onError: reject,
    });
    run.start();
  });
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Runs the section; every process it starts is stopped before it returns. */
export async function benchGateway(options: GatewayBenchOptions): Promise<GatewayBenchResult> {
  const { stack, env, bucket, log } = options;
  const started: ChildProcess[] = [];
  const track = (child: ChildProcess) => {
    started.push(child);
    options.track(child);
  };
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const taskQueue = 'bench-gateway';
    const worker = await options.startWorker({ ...env, TEMPORAL_TASK_QUEUE: taskQueue });
    closers.push(() => options.stopProcess(worker));

    const token = 'bench-gateway-token';
    const gateway = await startNodeServer(
      [
        ...(options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir] : []),
        await builtGatewayEntry(),
        'gateway',
        '--port',
        '0',
      ],
      {
        ...process.env,
        ...env,
        TEMPORAL_TASK_QUEUE: taskQueue,
        UPLOAD_SAGA_GATEWAY_BUCKET: bucket,
        // A tenant of its own: a tenant's quota ledger runs on the task queue of its first upload,
        // and the latency section's uploads (tenant "bench") ran on a queue nobody serves any more.
        UPLOAD_SAGA_GATEWAY_TOKENS: `bench-gateway=${hashToken(token)}`,
        UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZE: '10GiB',
        UPLOAD_SAGA_GATEWAY_RATE_LIMIT: '1000',
        LOG_LEVEL: 'warn',
        ...options.gatewayEnv,
      },
      track,
    );
    closers.push(() => options.stopProcess(gateway.child));

    const chosen = TUS_SERVERS.filter((name) => (options.servers ?? TUS_SERVERS).includes(name));
    const servers: Partial<Record<TusServerName, TusServer>> = {
      gateway: {
        endpoint: `${gateway.url}/files`,
        pid: gateway.child.pid!,
        cpuPids: [gateway.child.pid!, worker.pid!, stack.temporal.pid],
        headers: { Authorization: `Bearer ${token}` },
        settings: `part size ${options.gatewayEnv.UPLOAD_SAGA_GATEWAY_PART_SIZE ?? '5MiB'}, parts in flight per PATCH ${options.gatewayEnv.UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT ?? 'default'}`,
      },
    };
    if (chosen.includes('tusd')) {
      const tusd = await startTusdServer({
        dataDir: path.join(options.work, 'tusd'),
        s3: {
          endpoint: stack.s3.endpoint,
          region: stack.s3.region,
          accessKeyId: stack.s3.accessKeyId,
          secretAccessKey: stack.s3.secretAccessKey,
          bucket,
          objectPrefix: 'tusd/',
        },
      });
      closers.push(() => tusd.stop());
      servers.tusd = {
        endpoint: tusd.endpoint,
        pid: tusd.pid,
        cpuPids: [tusd.pid],
        headers: {},
        settings: 'tusd v2.9.1, S3 store at its defaults',
      };
    }
    if (chosen.includes('tus-node-server')) {
      const tusNode = await startNodeServer(
        ['--import', 'tsx', siblingModule(__dirname, './tus-node-server')],
        { ...process.env, ...env, TUS_NODE_BUCKET: bucket },
        track,
      );
      closers.push(() => options.stopProcess(tusNode.child));
      servers['tus-node-server'] = {
        endpoint: `${tusNode.url}/files`,
        pid: tusNode.child.pid!,
        cpuPids: [tusNode.child.pid!],
        headers: {},
        settings: '@tus/server + @tus/s3-store at their defaults',
      };
    }
    const info: GatewayBenchResult['servers'] = {};
    for (const name of chosen) {
      const server = servers[name]!;
      const entry = {
        settings: server.settings,
        idleRssMiB: round(await currentRssMiB(server.pid)),
        extensions: await extensionsOf(server.endpoint),
      };
      info[name] = entry;
      log(`${name}: ${server.endpoint}, idle RSS ${entry.idleRssMiB} MiB, extensions ${entry.extensions.join(',')}`);
    }

    const data = randomBytes(options.size);
    const runs = new Map<string, { mbps: number[]; peak: number; cpu: number[]; create: number[]; finish: number[]; storeCpu: number[] }>();
    const cpuEach = (pids: number[]) => Promise.all(pids.map(cpuSeconds));
    const rowKey = (server: TusServerName, mode: TusMode) => `${server}/${mode}`;
    let resettable = true;
    for (let rep = 0; rep < options.reps; rep++) {
      for (const mode of TUS_MODES) {
        for (let i = 0; i < chosen.length; i++) {
          const name = chosen[(rep + i) % chosen.length]!;
          if (mode === 'parallel uploads' && !info[name]!.extensions.includes('concatenation')) continue;
          const server = servers[name]!;
          resettable = (await resetPeakRss(server.pid)) && resettable;
          const cpuBefore = await cpuEach(server.cpuPids);
          const storeCpuBefore = await cpuSeconds(stack.s3.pid);
          const mainBefore = await mainThreadCpuSeconds(server.pid);
          const { ms, value: phases } = await timed(() => upload(data, server.endpoint, server.headers, mode, options.parallelUploads));
          // Per process (the gateway's: gateway, worker, Temporal), for where the CPU went.
          const cpuByProcess = (await cpuEach(server.cpuPids)).map((after, i) => after - cpuBefore[i]!);
          const cpu = cpuByProcess.reduce((a, b) => a + b, 0);
          const storeCpu = (await cpuSeconds(stack.s3.pid)) - storeCpuBefore;
          const mainThreadCpu = (await mainThreadCpuSeconds(server.pid)) - mainBefore;
          const peak = await peakRssMiB(server.pid);
          const entry = runs.get(rowKey(name, mode)) ?? { mbps: [], peak: 0, cpu: [], create: [], finish: [], storeCpu: [] };
          entry.create.push(phases.createdMs);
          if (mode === 'parallel uploads') entry.finish.push(ms - phases.lastProgressMs);
          entry.storeCpu.push(storeCpu / (options.size / 1024 ** 3));
          entry.mbps.push(round(mbps(options.size, ms)));
          entry.cpu.push(cpu / (options.size / 1024 ** 3));
          entry.peak = Math.max(entry.peak, peak);
          runs.set(rowKey(name, mode), entry);
          log(
            `rep ${rep + 1}, ${mode}, ${name}: ${mbps(options.size, ms).toFixed(1)} MB/s, ${mode === 'parallel uploads' ? `done ${(ms - phases.lastProgressMs).toFixed(0)} ms after the partials' answers` : `created after ${phases.createdMs.toFixed(0)} ms`}, peak RSS ${peak.toFixed(0)} MiB, CPU ${cpu.toFixed(2)} s (${cpuByProcess.map((s) => s.toFixed(2)).join(' + ')}; server's main thread ${mainThreadCpu.toFixed(2)}), store CPU ${storeCpu.toFixed(2)} s`,
          );
        }
      }
    }
    if (!resettable) log('peak RSS could not be reset between rows (/proc/<pid>/clear_refs): figures are cumulative');

    const rows: GatewayBenchRow[] = [];
    for (const mode of TUS_MODES) {
      const tusdBest = Math.max(...(runs.get(rowKey('tusd', mode))?.mbps ?? [NaN]));
      for (const name of chosen) {
        const entry = runs.get(rowKey(name, mode));
        if (!entry) {
          rows.push({ server: name, mode, runsMBps: [], unsupported: 'no concatenation extension (Tus-Extension)' });
          continue;
        }
        const best = Math.max(...entry.mbps);
        rows.push({
          server: name,
          mode,
          mbps: best,
          runsMBps: entry.mbps,
          ...(Number.isFinite(tusdBest) ? { ratioToTusd: round(best / tusdBest, 2) } : {}),
          peakRssMiB: round(entry.peak),
          cpuSecondsPerGiB: round(mean(entry.cpu)),
          ...(mode === 'parallel uploads' ? {} : { createMs: Math.round(mean(entry.create)) }),
          ...(entry.finish.length > 0 ? { finishMs: Math.round(mean(entry.finish)) } : {}),
          storeCpuSecondsPerGiB: round(mean(entry.storeCpu)),
        });
      }
    }
    return {
      bytes: options.size,
      reps: options.reps,
      parallelUploads: options.parallelUploads,
      servers: info,
      rows,
    };
  } finally {
    for (const close of closers.reverse()) await close().catch((err: unknown) => log(`cleanup: ${String(err)}`));
  }
}

/** The section as a Markdown table. */
export function gatewayMarkdown(result: GatewayBenchResult): string {
  const lines = [
    `tus servers on one MinIO, tus-js-client, ${result.bytes / MiB} MiB, best of ${result.reps} (parallel: ${result.parallelUploads} partial uploads)`,
    '',
    '| mode | server | MB/s | × tusd | peak RSS (MiB) | CPU s per GiB | store CPU s per GiB | creation (ms) | parallel: done after the last partial answered (ms) | runs (MB/s) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of result.rows) {
    lines.push(
      r.unsupported
        ? `| ${r.mode} | ${r.server} | unsupported: ${r.unsupported} | — | — | — | — | — | — | — |`
        : `| ${r.mode} | ${r.server} | ${r.mbps} | ${r.ratioToTusd ?? '—'} | ${r.peakRssMiB} | ${r.cpuSecondsPerGiB} | ${r.storeCpuSecondsPerGiB ?? '—'} | ${r.createMs ?? '—'} | ${r.finishMs ?? '—'} | ${r.runsMBps.join(', ')} |`,
    );
  }
  lines.push('');
  for (const [name, server] of Object.entries(result.servers))
    lines.push(`- ${name}: ${server.settings}; idle RSS ${server.idleRssMiB} MiB`);
  return `${lines.join('\n')}\n`;
}
