/**
 * `npm run test:faults [-- <filter>…] [--list] [--keep] [--jobs N]`: runs the fault scenarios of
 * test/faults/scenarios, each on servers of its own, and prints one line per scenario as it ends
 * and then `N passed, N failed`. Exit code 1 when any failed.
 *
 * Filters match a scenario's number (`03`) or part of its name (`cancel`). `--list` prints the
 * scenarios and what each proves. `--keep` keeps the data directories (server logs, SQLite,
 * objects) of failed scenarios. Scenario logs go to `test/artifacts/faults/<NN-name>.log`.
 * `--jobs N` (default 2) runs up to N scenarios at once, in file order; a scenario marked
 * `exclusive` runs alone. `--jobs 1` runs them strictly one after the other.
 *
 * Why two at once: most scenarios spend their time waiting (an outage of 30 or 60 s, a heartbeat
 * timeout, a lock lapsing), not computing, and each has servers, ports and data of its own, so two
 * side by side share nothing but the CPU. A scenario that needs the machine to itself (many
 * processes, or figures compared against an unfaulted run) says `exclusive: true`.
 *
 * Why a plain tsx program and not vitest: scenarios kill servers and load the 2-core machine, so
 * how many run at once is decided here, each with its own servers and its own timeout, and the
 * output is specified line by line; vitest would add a global stack, parallel files and its own
 * reporter to work around, and none of its matchers are needed.
 */
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { bundleUploadWorkflows } from '../../src/worker';
import { createFaultContext, type FaultScenario } from './framework';
import { assertBatchInvariants, batchStoredBytes } from './batch-invariants';
import { assertTenantLedgerInvariants, assertUploadInvariants } from './invariants';

const SCENARIO_DIR = path.join(__dirname, 'scenarios');
const LOG_DIR = path.join(__dirname, '..', 'artifacts', 'faults');
const DEFAULT_TIMEOUT_MS = 360_000;
const DEFAULT_JOBS = 2;

interface Entry {
  readonly id: string;
  readonly scenario: FaultScenario;
}

function loadScenarios(): Entry[] {
  const entries: Entry[] = [];
  for (const file of fs.readdirSync(SCENARIO_DIR).sort()) {
    const match = /^(\d\d)-.+\.ts$/.exec(file);
    if (!match) continue;
    const exported = require(path.join(SCENARIO_DIR, file)) as { scenario?: FaultScenario; scenarios?: FaultScenario[] };
    const list = exported.scenarios ?? (exported.scenario ? [exported.scenario] : []);
    if (list.length === 0) throw new Error(`${file} exports neither \`scenario\` nor \`scenarios\``);
    for (const scenario of list) entries.push({ id: match[1]!, scenario });
  }
  const names = new Set<string>();
  for (const { id, scenario } of entries) {
    if (names.has(scenario.name)) throw new Error(`two scenarios are named ${scenario.name}`);
    names.add(scenario.name);
    if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(scenario.name)) throw new Error(`scenario ${id} name "${scenario.name}" is not kebab-case`);
  }
  return entries;
}

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * Errors nobody awaits (a timer of a gRPC retry, a socket event) would end the process and lose
 * the summary line: while scenarios run they fail every running scenario (the error does not say
 * whose it is); between scenarios — e.g. a timed-out scenario's leftovers hitting its closed
 * connection — they are only reported on stderr.
 */
const failRunningScenarios = new Set<(error: unknown) => void>();
function onStrayError(error: unknown): void {
  if (failRunningScenarios.size > 0) for (const fail of failRunningScenarios) fail(error);
  else process.stderr.write(`[faults] ignored an error after its scenario ended: ${describeError(error)}\n`);
}
process.on('uncaughtException', onStrayError);
process.on('unhandledRejection', onStrayError);

async function runOne(entry: Entry, keep: boolean, workflowBundlePath: string): Promise<{ ok: boolean; line: string }> {
  const label = `${entry.id} ${entry.scenario.name}`;
  const started = Date.now();
  const seconds = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
  let handle: Awaited<ReturnType<typeof createFaultContext>> | undefined;
  let failure: unknown;
  try {
    handle = await createFaultContext({
      name: label,
      logDir: LOG_DIR,
      workflowBundlePath,
      ...(entry.scenario.temporal ? { temporal: entry.scenario.temporal } : {}),
    });
    const { ctx } = handle;
    const timeoutMs = entry.scenario.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    let failOnStrayError: ((error: unknown) => void) | undefined;
    const body = (async () => {
      await entry.scenario.run(ctx);
      // The invariants, for every tracked upload the scenario did not check itself.
      if (ctx.tracked.length === 0 && ctx.trackedBatches.length === 0)
        throw new Error('the scenario tracked no upload and no batch: its invariants cannot be checked');
      for (const upload of ctx.tracked) {
        if (!upload.checked) {
          await assertUploadInvariants(ctx, upload);
          upload.checked = true;
        }
      }
      for (const batch of ctx.trackedBatches) {
        if (!batch.checked) {
          await assertBatchInvariants(ctx, batch);
          batch.checked = true;
        }
      }
      const tenants = new Set([...ctx.tracked.map((u) => u.tenant), ...ctx.trackedBatches.map((b) => b.tenant)]);
      for (const tenant of tenants) {
        let batchBytes = 0;
        for (const batch of ctx.trackedBatches.filter((b) => b.tenant === tenant)) batchBytes += await batchStoredBytes(ctx, batch);
        await assertTenantLedgerInvariants(
          ctx,
          tenant,
          ctx.tracked.filter((u) => u.tenant === tenant),
          batchBytes,
        );
      }
    })();
    body.catch(() => undefined); // a timed-out body may still fail later; its failure is already reported
    try {
      await Promise.race([
        body,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
          failOnStrayError = (error) => reject(new Error(`uncaught error: ${describeError(error)}`));
          failRunningScenarios.add(failOnStrayError);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (failOnStrayError) failRunningScenarios.delete(failOnStrayError);
    }
  } catch (error) {
    failure = error;
    handle?.ctx.log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
  const duration = seconds();
  const notes = handle?.notes.length ? ` — ${handle.notes.join('; ')}` : '';
  try {
    await handle?.dispose({ keep: keep && failure !== undefined });
  } catch (error) {
    failure ??= new Error(`cleanup failed: ${describeError(error)}`);
  }
  if (failure === undefined) return { ok: true, line: `✓ ${label} (${duration})${notes}` };
  const reason = describeError(failure).replace(/\s*\n\s*/g, ' | ');
  const where = handle ? ` [log: ${path.relative(process.cwd(), handle.logFile)}${keep ? `, data: ${handle.dataDir}` : ''}]` : '';
  return { ok: false, line: `✗ ${label} (${duration}): ${reason}${where}` };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const keep = args.includes('--keep');
  const jobsIndex = args.indexOf('--jobs');
  const jobs = jobsIndex >= 0 ? Number(args[jobsIndex + 1]) : DEFAULT_JOBS;
  if (!Number.isInteger(jobs) || jobs < 1) throw new Error(`--jobs needs a whole number of at least 1, got ${args[jobsIndex + 1]}`);
  const filters = args.filter((a, i) => !a.startsWith('--') && !(jobsIndex >= 0 && i === jobsIndex + 1));
  const all = loadScenarios();
  const selected = all.filter(
    ({ id, scenario }) => filters.length === 0 || filters.some((f) => f === id || `${id} ${scenario.name}`.includes(f)),
  );
  if (args.includes('--list')) {
    for (const { id, scenario } of selected) console.log(`${id} ${scenario.name}: ${scenario.proves}`);
    return 0;
  }
  if (selected.length === 0) {
    console.log(`no scenario matches ${filters.join(' ')}`);
    console.log('0 passed, 0 failed');
    return 1;
  }
  // The runner process hosts no worker, but Temporal's native runtime logs through this logger.
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  // Bundled once here, loaded by every worker process (bundling costs each worker 15 s or more).
  const workflowBundlePath = path.join(os.tmpdir(), `upload-saga-faults-workflows-${process.pid}.js`);
  fs.writeFileSync(workflowBundlePath, (await bundleUploadWorkflows()).code);
  let passed = 0;
  let failed = 0;
  const running = new Set<Promise<void>>();
  const start = (entry: Entry): void => {
    const run = runOne(entry, keep, workflowBundlePath).then(({ ok, line }) => {
      console.log(line);
      if (ok) passed++;
      else failed++;
      running.delete(run);
    });
    running.add(run);
  };
  try {
    for (const entry of selected) {
      const alone = entry.scenario.exclusive === true;
      while (running.size >= (alone ? 1 : jobs)) await Promise.race(running);
      start(entry);
      if (alone) await Promise.all(running);
    }
    await Promise.all(running);
  } finally {
    fs.rmSync(workflowBundlePath, { force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
