/**
 * Workflow-side CPU per upload without any server: replays one recorded history (test/histories)
 * many times on the workflow bundle workers run, and on the same bundle without the OpenTelemetry
 * workflow interceptors (for comparison only: workers always run them, see
 * docs/explanation/performance.md#latency), and prints the CPU milliseconds per replay of this
 * process. A replay runs the same workflow code and activations as the run that recorded it, so
 * this is the CPU the worker spends in workflow tasks per upload (not its activities, not core's
 * polling).
 *
 *   npx tsx bench/replay-cpu.ts [history file] [replays]     # default one-put-completed.json 300
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { sagaWorkflowInterceptorsPath } from '../src/saga/activity';
import { bundleUploadWorkflows, workflowsPath } from '../src/worker';
import { WorkerMetrics } from '../src/metrics/worker-metrics';
import { uploadMetricsSinks } from '../src/metrics/worker-sinks';
import { workflowSpanSinks } from '../src/telemetry/temporal';
import { historyFromJson } from '../test/replay/history-json';

Runtime.install({ logger: new DefaultLogger('ERROR') });

async function cpuMsPerReplay(bundle: WorkflowBundleWithSourceMap, history: ReturnType<typeof historyFromJson>, replays: number) {
  const options = { workflowBundle: bundle, sinks: { ...workflowSpanSinks(undefined), ...uploadMetricsSinks(new WorkerMetrics()) } };
  async function* histories(count: number, tag: string) {
    for (let i = 0; i < count; i++) yield { history, workflowId: `replay-cpu-${tag}-${i}` };
  }
  // Warm-up: the first replays load modules and compile the bundle.
  for await (const r of Worker.runReplayHistories(options, histories(20, 'warm'))) if (r.error) throw r.error;
  const before = process.cpuUsage();
  for await (const r of Worker.runReplayHistories(options, histories(replays, 'measured'))) if (r.error) throw r.error;
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000 / replays;
}

async function main(): Promise<void> {
  const file = process.argv[2] ?? 'one-put-completed.json';
  const replays = Number(process.argv[3] ?? 300);
  const history = historyFromJson(JSON.parse(readFileSync(path.join(__dirname, '../test/histories', file), 'utf8')));
  const [traced, untraced] = await Promise.all([
    bundleUploadWorkflows(),
    bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [sagaWorkflowInterceptorsPath], logger: new DefaultLogger('WARN') }),
  ]);
  // Alternating, twice: on a shared machine neither side always meets the same load.
  for (let round = 0; round < 2; round++) {
    for (const [name, bundle] of [
      ['with tracing interceptors', traced],
      ['without', untraced],
    ] as const) {
      console.log(
        `${file}: ${name}: ${(await cpuMsPerReplay(bundle, history, replays)).toFixed(1)} CPU ms per replay (${replays} replays)`,
      );
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
