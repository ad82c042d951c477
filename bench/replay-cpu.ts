/**
 * Workflow-side CPU per upload without any server: replays one recorded history (test/histories)
 * many times on the workflow bundle workers run, on the same bundle with the SDK's own OpenTelemetry
 * workflow interceptors in place of ours (src/telemetry/workflow/interceptors.ts, which make spans
 * only for runs that carry a trace context) and without any tracing interceptors (for comparison
 * only, see docs/explanation/performance.md#latency), and prints the CPU milliseconds per replay of this
 * process. A replay runs the same workflow code and activations as the run that recorded it, so
 * this is the CPU the worker spends in workflow tasks per upload (not its activities, not core's
 * polling).
 *
 *   npx tsx bench/replay-cpu.ts [history file] [replays] [rounds]     # default one-put-completed.json 300 2
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
  const rounds = Number(process.argv[4] ?? 2);
  const history = historyFromJson(JSON.parse(readFileSync(path.join(__dirname, '../test/histories', file), 'utf8')));
  const sdkInterceptors = require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');
  const [ours, sdk, untraced] = await Promise.all([
    bundleUploadWorkflows(),
    bundleWorkflowCode({
      workflowsPath,
      workflowInterceptorModules: [sagaWorkflowInterceptorsPath, sdkInterceptors],
      logger: new DefaultLogger('WARN'),
    }),
    bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [sagaWorkflowInterceptorsPath], logger: new DefaultLogger('WARN') }),
  ]);
  // Alternating, round by round: on a shared machine neither side always meets the same load.
  const results = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const [name, bundle] of [
      ['as workers run it (our tracing interceptors)', ours],
      ["with the SDK's OpenTelemetry interceptors", sdk],
      ['without tracing interceptors', untraced],
    ] as const) {
      const ms = await cpuMsPerReplay(bundle, history, replays);
      results.set(name, [...(results.get(name) ?? []), ms]);
      console.log(`${file}: ${name}: ${ms.toFixed(1)} CPU ms per replay (${replays} replays)`);
    }
  }
  for (const [name, all] of results) {
    const sorted = [...all].sort((a, b) => a - b);
    console.log(`${file}: ${name}: median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} CPU ms per replay over ${rounds} rounds`);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
