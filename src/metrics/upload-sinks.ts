/**
 * The sink through which upload workflows report their start and their ending to the worker's
 * metrics. Workflow code: imports nothing but `@temporalio/workflow` and types.
 *
 * Why sinks: a counter cannot be incremented from workflow code (it is sandboxed, and it is
 * replayed), and counting in activities would count attempts, not uploads. A sink call is not a
 * command: it leaves no event in history, so adding one changes no recorded history (the replay
 * test proves it), and it runs only when the workflow code runs for the first time — not during
 * replay (`callDuringReplay` is false) — so an upload is counted once even when its history is
 * replayed on another worker. (The worker runs a task's sink calls after its activation; a
 * workflow task that fails after a call and is retried may repeat it: rare, and at worst one
 * upload counted twice.)
 */
import { proxySinks, type Sinks } from '@temporalio/workflow';

/** Which workflow an upload runs in. */
export type UploadKind = 'worker' | 'gateway';

/** What an ended upload reports; `failure` for every outcome but completed. */
export interface UploadEndedReport {
  kind: UploadKind;
  outcome: string;
  failure?: { step: string; cause: string; compensations: { step: string; status: string }[] };
}

/** The sinks upload workflows call (registered on the worker by `uploadMetricsSinks`). */
export interface UploadMetricsSinks extends Sinks {
  uploadMetrics: {
    /** The upload's first run started (not a continued run, not a replay). */
    started(kind: UploadKind): void;
    /** The upload ended. */
    ended(report: UploadEndedReport): void;
  };
}

/** The metrics sink, for workflow code. Calls to it are dropped by workers that did not register it. */
export function uploadMetricsSink(): UploadMetricsSinks['uploadMetrics'] {
  return proxySinks<UploadMetricsSinks>().uploadMetrics;
}

/** The failure part of {@link UploadEndedReport} from a saga failure report (plain data). */
export function endedFailure(
  report: { failedStep: string; cause: { type: string }; compensations: readonly { step: string; status: string }[] } | undefined,
): UploadEndedReport['failure'] {
  if (!report) return undefined;
  return {
    step: report.failedStep,
    cause: report.cause.type,
    compensations: report.compensations.map(({ step, status }) => ({ step, status })),
  };
}
