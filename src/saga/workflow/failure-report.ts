/**
 * What a saga tells the world when it fails: which step failed, why, and what each compensation
 * did. One plain-data shape that travels as the failure's `details`, so the Web UI, the CLI and
 * application code all read the same report.
 */
import { ActivityFailure, ApplicationFailure, CancelledFailure, TemporalFailure, TimeoutFailure } from '@temporalio/workflow';

/** A failure reduced to what a person needs: a stable type and a message. */
export interface FailureSummary {
  type: string;
  message: string;
}

/** The status of one compensation. */
export type CompensationStatus = 'compensated' | 'failed' | 'skipped';

/** How one compensation went. */
export interface CompensationOutcome {
  /** The saga step being undone. */
  step: string;
  /** The compensation activity that ran (or would have run). */
  activity: string;
  status: CompensationStatus;
  /** Why it failed, or why it was skipped. */
  error?: FailureSummary;
}

/** What a failed saga reports: the failed step, its cause and every compensation. */
export interface SagaFailureReport {
  /** The step whose action failed, or `workflow` when the workflow code itself threw. */
  failedStep: string;
  cause: FailureSummary;
  /** True when the saga was cancelled rather than failed. */
  cancelled: boolean;
  /** True when the failure came after the pivot: nothing was compensated, by design. */
  afterPivot: boolean;
  /** In the order they ran (reverse order of the steps). */
  compensations: CompensationOutcome[];
}

/**
 * The innermost meaningful failure: an activity's own ApplicationFailure, or the kind of timeout
 * that ended it, rather than the generic "activity task failed" wrapper.
 */
export function summarizeFailure(err: unknown): FailureSummary {
  if (err instanceof ActivityFailure && err.cause) return summarizeFailure(err.cause);
  if (err instanceof ApplicationFailure) {
    return { type: err.type ?? 'Error', message: err.message };
  }
  if (err instanceof TimeoutFailure) {
    return { type: 'Timeout', message: `activity timed out (${String(err.timeoutType ?? 'unknown timeout')})` };
  }
  if (err instanceof CancelledFailure) return { type: 'Cancelled', message: err.message || 'cancelled' };
  if (err instanceof TemporalFailure) return { type: err.name, message: err.message };
  if (err instanceof Error) return { type: err.name, message: err.message };
  return { type: 'Error', message: String(err) };
}

/** `reserve-space` → `ReserveSpaceFailed`: the failure type names the step. */
export function failureTypeForStep(step: string): string {
  const pascal = step
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((word) => word[0]!.toUpperCase() + word.slice(1))
    .join('');
  return `${pascal || 'Saga'}Failed`;
}

/** One line a person can read in the Web UI's failure panel. */
export function describeReport(report: SagaFailureReport): string {
  const what = report.cancelled
    ? `cancelled during step "${report.failedStep}"`
    : `step "${report.failedStep}" failed: ${report.cause.type}: ${report.cause.message}`;
  if (report.afterPivot) return `${what} (after the pivot: nothing compensated, retried forward until its policy ended)`;
  if (report.compensations.length === 0) return `${what}; nothing to compensate`;
  const outcomes = report.compensations
    .map((c) => `${c.step} ${c.status}${c.error ? ` (${c.error.type}: ${c.error.message})` : ''}`)
    .join(', ');
  return `${what}; compensations: ${outcomes}`;
}

/** Heartbeat details of the last attempt, when the action timed out: what it had done so far. */
export function lastHeartbeatDetailsOf(err: unknown): unknown {
  if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure) return err.cause.lastHeartbeatDetails;
  return undefined;
}

/** Details an activity attached to its ApplicationFailure: often what it had created before failing. */
export function failureDetailsOf(err: unknown): unknown[] | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
    return err.cause.details ? [...err.cause.details] : undefined;
  }
  return undefined;
}
