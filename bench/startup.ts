/**
 * The `startup` section of `npm run bench`: a worker process from spawn to its first poll, and its
 * resident memory once idle, two ways in the same run:
 *
 * - before: the TypeScript sources through tsx, the workflow code bundled at start (webpack + swc),
 *   as the worker ran before the package had a build;
 * - after: the compiled dist/ with the workflow bundle shipped in it (`npm run build`).
 *
 * "First poll" is when Temporal's DescribeTaskQueue first lists a workflow-task poller on the
 * worker's own (fresh) task queue: the worker is then really waiting for work. Idle RSS is VmRSS
 * {@link IDLE_SETTLE_MS} after that. Rounds alternate which variant goes first; medians count.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { currentRssMiB, percentile } from './measure';

const ROOT = path.resolve(__dirname, '..');
const IDLE_SETTLE_MS = 3000;

/** How each variant starts a worker process. */
export const STARTUP_VARIANTS = {
  before: { label: 'tsx from src/, workflows bundled at start', args: ['--import', 'tsx', path.join(ROOT, 'src/worker.ts')] },
  after: { label: 'node dist/, prebundled workflows', args: [path.join(ROOT, 'dist/worker.js')] },
} as const;

type Variant = keyof typeof STARTUP_VARIANTS;

/** One variant's medians over the rounds, and every sample. */
export interface StartupSide {
  command: string;
  firstPollMs: number;
  idleRssMiB: number;
  samples: { firstPollMs: number; idleRssMiB: number }[];
}

/** The `startup` row: before, after, and how much less after takes. */
export interface StartupRow {
  rounds: number;
  before: StartupSide;
  after: StartupSide;
  /** before ÷ after. */
  firstPollRatio: number;
  idleRssRatio: number;
}

async function hasWorkflowPoller(client: Client, taskQueue: string): Promise<boolean> {
  const response = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (response.pollers?.length ?? 0) > 0;
}

async function measureOnce(
  variant: Variant,
  client: Client,
  env: Record<string, string>,
  track: (child: ChildProcess) => void,
): Promise<{ firstPollMs: number; idleRssMiB: number }> {
  const taskQueue = `bench-startup-${variant}-${Date.now()}`;
  const started = performance.now();
  const child = spawn(process.execPath, [...STARTUP_VARIANTS[variant].args], {
    env: { ...process.env, ...env, TEMPORAL_TASK_QUEUE: taskQueue },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  track(child);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  try {
    let firstPollMs: number | undefined;
    while (firstPollMs === undefined) {
      if (child.exitCode !== null) throw new Error(`worker (${variant}) exited ${child.exitCode}: ${stderr.slice(-1000)}`);
      if (performance.now() - started > 120_000)
        throw new Error(`worker (${variant}) did not poll within 2 minutes: ${stderr.slice(-1000)}`);
      if (await hasWorkflowPoller(client, taskQueue)) firstPollMs = performance.now() - started;
      else await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MS));
    const idleRssMiB = await currentRssMiB(child.pid!);
    return { firstPollMs: Math.round(firstPollMs), idleRssMiB: Math.round(idleRssMiB) };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Runs `rounds` rounds of both variants (alternating which goes first) and returns the medians. */
export async function benchStartup(options: {
  client: Client;
  env: Record<string, string>;
  rounds: number;
  track: (child: ChildProcess) => void;
  log: (line: string) => void;
}): Promise<StartupRow> {
  if (!existsSync(STARTUP_VARIANTS.after.args[0])) throw new Error('dist/worker.js is missing: run `npm run build` first');
  const samples: Record<Variant, { firstPollMs: number; idleRssMiB: number }[]> = { before: [], after: [] };
  for (let round = 0; round < options.rounds; round++) {
    const order: Variant[] = round % 2 === 0 ? ['before', 'after'] : ['after', 'before'];
    for (const variant of order) {
      const sample = await measureOnce(variant, options.client, options.env, options.track);
      samples[variant].push(sample);
      options.log(
        `startup round ${round + 1}/${options.rounds}, ${variant}: first poll ${sample.firstPollMs} ms, idle RSS ${sample.idleRssMiB} MiB`,
      );
    }
  }
  const side = (variant: Variant): StartupSide => ({
    command: `node ${STARTUP_VARIANTS[variant].args.map((a) => path.relative(ROOT, a) || a).join(' ')}`,
    firstPollMs: percentile(
      samples[variant].map((s) => s.firstPollMs),
      50,
    ),
    idleRssMiB: percentile(
      samples[variant].map((s) => s.idleRssMiB),
      50,
    ),
    samples: samples[variant],
  });
  const before = side('before');
  const after = side('after');
  return {
    rounds: options.rounds,
    before,
    after,
    firstPollRatio: Math.round((before.firstPollMs / after.firstPollMs) * 100) / 100,
    idleRssRatio: Math.round((before.idleRssMiB / after.idleRssMiB) * 100) / 100,
  };
}
