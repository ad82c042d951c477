/**
 * How a saga is declared: every step in one object, each with its action activity, its optional
 * compensation activity, and the retry policy and timeouts of both. A reader sees at a glance what
 * each step retries, what it never retries and how it is undone; the engine derives everything
 * else (activity proxies, headers, the failure report) from this one declaration.
 */
import type { RetryPolicy } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type { JitterMode } from '../shared/backoff';

/** Temporal's retry policy plus the jitter Temporal does not have. */
export interface StepRetryPolicy extends RetryPolicy {
  /**
   * Maximum number of attempts; when exceeded, retries stop (even if the activity's
   * `scheduleToCloseTimeout` has not passed). As in Temporal's `RetryPolicy`.
   * @default 0 (unlimited)
   */
  maximumAttempts?: number;
  /**
   * Spread of each retry delay, applied by the saga's activity interceptor through the failure's
   * `nextRetryDelay`. Requires the interceptors (see `sagaWorkerInterceptors`).
   * @default 'none'
   */
  jitter?: JitterMode;
}

/** Activity timeouts of one step; at least `startToClose` or `scheduleToClose` is required. */
export interface StepTimeouts {
  startToClose?: Duration;
  scheduleToClose?: Duration;
  scheduleToStart?: Duration;
  /** Set it for long activities that heartbeat, so a dead worker is noticed quickly. */
  heartbeat?: Duration;
}

/** One activity call: which activity, how it retries, how long it may take. */
export interface ActivityCallDefinition<ActivityName extends string = string> {
  activity: ActivityName;
  retry: StepRetryPolicy;
  timeouts: StepTimeouts;
  /**
   * What cancelling the saga does to this activity while it runs: `try` requests cancellation and
   * moves on; `wait` waits until the activity has stopped (use it when the compensation must not
   * race the action, e.g. parts still being sent while the upload is aborted); `abandon` does not
   * tell the activity.
   * @default 'try'
   */
  cancellation?: 'try' | 'wait' | 'abandon';
  /**
   * Run as a local activity: in the worker that runs the workflow, without a trip through the
   * task queue and with one marker in history instead of three events. For short steps only: a
   * local activity cannot heartbeat. Retries with a backoff above a minute use workflow timers.
   * @default false
   */
  local?: boolean;
  /**
   * Local activities only: a retry whose backoff exceeds this waits on a workflow timer (the
   * workflow task completes meanwhile and frees its slot); shorter ones wait inside the workflow
   * task. `'0s'` sends every retry through a timer: for steps that may be refused because the
   * worker is busy and should not hold a slot while they back off.
   * @default 1 minute (the SDK's)
   */
  localRetryThreshold?: Duration;
}

/**
 * An action that is the workflow's own code rather than one activity: waiting for a client's
 * updates, a timer, a child workflow. Run it with `Saga.runInWorkflow`; the step is tracked (status,
 * failure report, compensation) like any other. Retries and timeouts are the code's business.
 */
export interface WorkflowActionDefinition {
  /** What the workflow does in this step, for readers of the declaration. */
  inWorkflow: string;
}

export interface StepDefinition<ActivityName extends string = string> {
  /** The forward action: one activity, or the workflow's own code ({@link WorkflowActionDefinition}). */
  action: ActivityCallDefinition<ActivityName> | WorkflowActionDefinition;
  /**
   * How to undo the action. Registered before the action runs, because an action can
   * half-succeed (time out after the store already did the work). Omit for steps with nothing to undo.
   */
  compensation?: ActivityCallDefinition<ActivityName>;
  /**
   * The point of no return. Once a pivot step completed, no step is compensated any more: later
   * steps are retried forward, and if one still fails the saga fails without compensating.
   * @default false
   */
  pivot?: boolean;
}

/** A saga's steps by name. The names are what the Web UI, failures and reports show. */
export type SagaDefinition<ActivityName extends string = string> = Record<string, StepDefinition<ActivityName>>;

/**
 * Declares a saga's steps against an activities interface so that activity names are checked
 * by the compiler: `defineSaga<typeof activities>()({ ... })`.
 */
export function defineSaga<Activities extends object>() {
  return <const Def extends SagaDefinition<Extract<keyof Activities, string>>>(definition: Def): Def => definition;
}
