/**
 * A generic saga engine for Temporal TypeScript workflows.
 *
 * The TypeScript SDK has no saga helper, and the usual hand-rolled pattern (push a compensation
 * after each step succeeds, run them in a `catch`) loses exactly the cases that matter:
 * - a step that half-succeeded (its activity timed out after the store did the work) is never
 *   undone, because its compensation was only pushed on success. Here the compensation is
 *   registered *before* the action runs, and receives the action's outcome (result, or failure
 *   with last heartbeat details) so it can find what was created.
 * - a cancelled workflow skips its compensations, because their activities are cancelled with the
 *   workflow. Here they run inside `CancellationScope.nonCancellable`.
 * - a failing compensation either hides the original error or stops the others. Here every
 *   compensation's outcome is reported, and by default the rest still run.
 * - nothing stops a compensation after the point of no return. Here a `pivot` step ends
 *   compensation: later steps are retried forward, never undone, and are themselves shielded
 *   from cancellation so the saga finishes what the pivot committed it to. The pivot step is
 *   shielded too: a cancelled pivot activity may still take effect, and undoing around it races it.
 * - a step that is not one activity (waiting for a client, a timer) has no place in the pattern.
 *   Here `runInWorkflow` tracks workflow code as a step, and a saga that continues as new hands
 *   its completed steps to the next run, which re-registers their compensations with
 *   `restoreCompleted`; continue-as-new itself passes through `execute` without compensating.
 *
 * Deterministic workflow code: imports only `@temporalio/workflow` and pure modules.
 */
import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ContinueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  proxyLocalActivities,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { ActivityCallDefinition, SagaDefinition, WorkflowActionDefinition } from './definition';
import {
  describeReport,
  failureDetailsOf,
  failureTypeForStep,
  lastHeartbeatDetailsOf,
  summarizeFailure,
  type CompensationOutcome,
  type FailureSummary,
  type SagaFailureReport,
} from './failure-report';
import { retryHintInterceptorInstalled, scheduleWithRetryHint } from './retry-hints';
import { CANCELLED_BEFORE_PIVOT_PATCH, PIVOT_NOT_CANCELLABLE_PATCH } from '../../patches';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyActivity = (...args: any[]) => Promise<any>;

/** What became of a step's action, handed to its compensation's argument builder. */
export type StepOutcome<Result> =
  | { status: 'running' }
  | { status: 'completed'; result: Result }
  | {
      status: 'failed';
      failure: FailureSummary;
      /** Heartbeat details of the last attempt when it timed out: progress it had recorded. */
      lastHeartbeatDetails?: unknown;
      /** Details the activity attached to its failure. */
      failureDetails?: unknown[];
    };

/** Steps whose action is one activity (run with {@link Saga.run}). */
export type ActivityStepOf<D extends SagaDefinition> = {
  [K in keyof D & string]: D[K]['action'] extends ActivityCallDefinition ? K : never;
}[keyof D & string];
/** Steps whose action is the workflow's own code (run with {@link Saga.runInWorkflow}). */
export type WorkflowStepOf<D extends SagaDefinition> = {
  [K in keyof D & string]: D[K]['action'] extends WorkflowActionDefinition ? K : never;
}[keyof D & string];

type ActionName<D extends SagaDefinition, S extends keyof D> = D[S]['action'] extends ActivityCallDefinition<infer N> ? N : never;
type ActionOf<A, D extends SagaDefinition, S extends keyof D> = A[ActionName<D, S> & keyof A] extends AnyActivity
  ? A[ActionName<D, S> & keyof A]
  : never;
type ResultOf<A, D extends SagaDefinition, S extends keyof D> = Awaited<ReturnType<ActionOf<A, D, S>>>;

/** `compensateWith`, required exactly when the step declares a compensation. */
export type CompensateWithOption<A, D extends SagaDefinition, S extends keyof D, Result> =
  D[S]['compensation'] extends ActivityCallDefinition<infer C>
    ? {
        /**
         * Builds the compensation's arguments when compensation runs — from the action's outcome
         * and whatever the workflow knows by then.
         */
        compensateWith: (outcome: StepOutcome<Result>) => A[C & keyof A] extends AnyActivity ? Parameters<A[C & keyof A]> : never;
      }
    : { compensateWith?: never };

/** The per-call options of {@link Saga.run}; `compensateWith` is required exactly when the step declares a compensation. */
export type RunOptions<A, D extends SagaDefinition, S extends keyof D> = {
  /** One line for the Web UI's activity summary, e.g. "upload parts 1–64 of 128". */
  summary?: string;
} & CompensateWithOption<A, D, S, ResultOf<A, D, S>>;

/** What {@link Saga.restoreCompleted} needs: the step's result in the earlier run, and how to undo it. */
export type RestoreOptions<A, D extends SagaDefinition, S extends keyof D, Result> = { result: Result } & CompensateWithOption<
  A,
  D,
  S,
  Result
>;

// The engine's patch ids live in the package's one registry (src/patches.ts).
export { PIVOT_NOT_CANCELLABLE_PATCH, CANCELLED_BEFORE_PIVOT_PATCH };

/** @see SagaOptions */
export interface SagaOptions {
  /**
   * Run all compensations at once instead of one after another in reverse order. Only safe
   * when compensations do not depend on each other.
   * @default false
   */
  parallelCompensation?: boolean;
  /**
   * Keep compensating after a compensation failed (its outcome is reported). When false, the
   * first failed compensation stops the rest; they are reported as `skipped`.
   * @default true
   */
  continueOnCompensationFailure?: boolean;
  /** Called when a step's action is about to run (e.g. to update search attributes). */
  onStepStarted?: (step: string) => void;
  /** Called when compensation begins, with the steps about to be undone, in order. */
  onCompensationStarted?: (steps: string[]) => void;
  /**
   * How a run decides that its pivot step is shielded from cancellation: `'patched'` asks
   * `patched(PIVOT_NOT_CANCELLABLE_PATCH)` when the pivot starts (runs started before that patch
   * replay unshielded); `true` shields it without asking — for a workflow whose own, later patch
   * already tells that the run is new enough, since every patch check of a new run costs a marker
   * and a search-attribute update in its history.
   * @default 'patched'
   */
  shieldPivot?: 'patched' | true;
}

/** A step's status in {@link SagaState}. */
export type StepStatus = 'running' | 'completed' | 'failed';

/** A live, query-friendly view of the saga. */
export interface SagaState {
  steps: { name: string; status: StepStatus; runs: number }[];
  pivotReached: boolean;
  compensations: CompensationOutcome[];
  /**
   * The failure report once the saga failed or was cancelled. For a cancelled saga this query is
   * where the report lives: Temporal records a cancellation without details.
   */
  failure?: SagaFailureReport;
}

const CANCELLATION_TYPES = {
  try: ActivityCancellationType.TRY_CANCEL,
  wait: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  abandon: ActivityCancellationType.ABANDON,
} as const;

interface RegisteredCompensation {
  step: string;
  call: ActivityCallDefinition;
  buildArgs: (outcome: StepOutcome<unknown>) => unknown[];
  outcome: StepOutcome<unknown>;
}

/**
 * Runs the steps of one saga. Create one per workflow run:
 *
 * ```ts
 * const saga = new Saga<typeof activities, typeof steps>(steps);
 * return saga.execute(async () => {
 *   const r = await saga.run('reserve-space', [input], { compensateWith: () => [release] });
 *   ...
 * });
 * ```
 */
export class Saga<A extends object, D extends SagaDefinition> {
  private readonly options: Required<Pick<SagaOptions, 'parallelCompensation' | 'continueOnCompensationFailure'>> & SagaOptions;
  /** In order of first registration; compensated in reverse. */
  private readonly compensations: RegisteredCompensation[] = [];
  private readonly steps = new Map<string, { status: StepStatus; runs: number }>();
  private readonly compensationOutcomes: CompensationOutcome[] = [];
  private pivotReached = false;
  /** The step whose action started last: where a cancellation seen between steps is reported. */
  private lastStep: string | undefined;
  private failedStep: string | undefined;
  private failureReport: SagaFailureReport | undefined;

  constructor(
    private readonly definition: D,
    options: SagaOptions = {},
  ) {
    this.options = { parallelCompensation: false, continueOnCompensationFailure: true, ...options };
  }

  /**
   * Runs one step's action. Its compensation (if declared) is registered first, so it runs even
   * if the action half-succeeded. A step may run several times (e.g. batches of parts): its
   * compensation is registered once, and built from the latest `compensateWith` and outcome.
   * The pivot's action and every action after it are shielded from cancellation and never compensated.
   */
  async run<S extends ActivityStepOf<D>>(
    step: S,
    args: Parameters<ActionOf<A, D, S>>,
    options: RunOptions<A, D, S>,
  ): Promise<ResultOf<A, D, S>> {
    const declared = this.definition[step];
    if (!declared) throw new TypeError(`saga step "${step}" is not declared`);
    const action = declared.action;
    if (!('activity' in action)) throw new TypeError(`saga step "${step}" is workflow code; run it with runInWorkflow`);
    this.assertJitterCanWork(step, action);
    const invoke = () => this.callActivity(action, args as unknown[], options.summary);
    return this.track(step, options.compensateWith as RegisteredCompensation['buildArgs'] | undefined, invoke) as Promise<
      ResultOf<A, D, S>
    >;
  }

  /**
   * Runs a step whose action is the workflow's own code (declared with `action: { inWorkflow: '…' }`):
   * waiting for a client's updates, a timer, a child workflow. Tracked like an activity step: its
   * compensation is registered first, a failure it throws names the step in the report, and after
   * the pivot it is shielded from cancellation. A `continueAsNew` inside it is not a failure.
   */
  async runInWorkflow<S extends WorkflowStepOf<D>, T>(
    step: S,
    body: () => Promise<T>,
    options: CompensateWithOption<A, D, S, T>,
  ): Promise<T> {
    const declared = this.definition[step];
    if (!declared) throw new TypeError(`saga step "${step}" is not declared`);
    if (!('inWorkflow' in declared.action)) throw new TypeError(`saga step "${step}" is an activity; run it with run`);
    return this.track(step, options.compensateWith as RegisteredCompensation['buildArgs'] | undefined, body);
  }

  /**
   * Records a step that completed in an earlier run of this workflow (before it continued as new)
   * and registers its compensation, so that a failure or cancellation in this run undoes it too.
   * Issues no command: safe to call at the start of every continued run.
   */
  restoreCompleted<S extends keyof D & string, T>(step: S, options: RestoreOptions<A, D, S, T>): void {
    const declared = this.definition[step];
    if (!declared) throw new TypeError(`saga step "${step}" is not declared`);
    const state = this.steps.get(step) ?? { status: 'completed' as StepStatus, runs: 0 };
    state.status = 'completed';
    state.runs += 1;
    this.steps.set(step, state);
    const compensateWith = (options as { compensateWith?: RegisteredCompensation['buildArgs'] }).compensateWith;
    if (declared.compensation && !this.pivotReached && compensateWith) {
      const outcome: StepOutcome<unknown> = { status: 'completed', result: options.result };
      const registration = this.compensations.find((c) => c.step === step);
      if (registration) Object.assign(registration, { buildArgs: compensateWith, outcome });
      else this.compensations.push({ step, call: declared.compensation, buildArgs: compensateWith, outcome });
    }
    if (declared.pivot) this.pivotReached = true;
  }

  /** The bookkeeping around one run of a step's action, whatever the action is. */
  private async track<T>(
    step: string,
    compensateWith: RegisteredCompensation['buildArgs'] | undefined,
    invoke: () => Promise<T>,
  ): Promise<T> {
    const declared = this.definition[step]!;
    // A cancellation that arrived together with the result of the step before the pivot (one
    // workflow activation holds both) must not be outrun by the pivot, which would then be
    // shielded and complete forward: the saga is still before its point of no return, so it
    // compensates. The cancellation is reported at the step that was running when it arrived.
    if (
      declared.pivot === true &&
      !this.pivotReached &&
      CancellationScope.current().consideredCancelled &&
      patched(CANCELLED_BEFORE_PIVOT_PATCH)
    ) {
      this.failedStep ??= this.lastStep ?? step;
      throw new CancelledFailure(`cancelled before the pivot step "${step}" started`);
    }
    this.lastStep = step;
    const state = this.steps.get(step) ?? { status: 'running' as StepStatus, runs: 0 };
    state.status = 'running';
    state.runs += 1;
    this.steps.set(step, state);

    let registration: RegisteredCompensation | undefined;
    if (declared.compensation && !this.pivotReached && compensateWith) {
      registration = this.compensations.find((c) => c.step === step);
      if (registration) {
        registration.buildArgs = compensateWith;
        registration.outcome = { status: 'running' };
      } else {
        registration = { step, call: declared.compensation, buildArgs: compensateWith, outcome: { status: 'running' } };
        this.compensations.push(registration);
      }
    }
    this.options.onStepStarted?.(step);

    try {
      // After the pivot the saga is committed: finish forward even if the workflow is cancelled.
      // The pivot itself too: its effect cannot be recalled once its activity has been sent (an S3
      // CompleteMultipartUpload in flight lands whatever the workflow does), so cancelling it
      // would race the compensations against it. Runs started before this change replay without
      // the patch marker and keep the old behaviour.
      const shielded =
        this.pivotReached || (declared.pivot === true && (this.options.shieldPivot === true || patched(PIVOT_NOT_CANCELLABLE_PATCH)));
      const result = shielded ? await CancellationScope.nonCancellable(invoke) : await invoke();
      state.status = 'completed';
      // A failure the workflow caught and ran the step again for (e.g. waiting for quota) is not the saga's failure.
      if (this.failedStep === step) this.failedStep = undefined;
      if (registration) registration.outcome = { status: 'completed', result };
      if (declared.pivot) this.pivotReached = true;
      return result;
    } catch (err) {
      // Continuing as new is how a long step hands over to the next run, not a failure.
      if (err instanceof ContinueAsNew) throw err;
      state.status = 'failed';
      this.failedStep ??= step;
      if (registration) {
        registration.outcome = {
          status: 'failed',
          failure: summarizeFailure(err),
          lastHeartbeatDetails: lastHeartbeatDetailsOf(err),
          failureDetails: failureDetailsOf(err),
        };
      }
      throw err;
    }
  }

  /**
   * Runs the saga's body. If it throws before the pivot completed, every registered compensation
   * runs (in a non-cancellable scope) and the saga fails with one `ApplicationFailure` named after
   * the failed step, whose details carry the {@link SagaFailureReport}. When the workflow was
   * cancelled it ends cancelled (a `CancelledFailure` with the report in its message; the full
   * report is in {@link Saga.state}). After the pivot nothing is compensated. A `continueAsNew`
   * passes through without compensating: the next run restores the completed steps
   * ({@link Saga.restoreCompleted}).
   */
  async execute<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      if (err instanceof ContinueAsNew) throw err;
      throw await this.compensateAndDescribe(err);
    }
  }

  /** The live state, for a query handler. */
  state(): SagaState {
    return {
      steps: [...this.steps.entries()].map(([name, s]) => ({ name, status: s.status, runs: s.runs })),
      pivotReached: this.pivotReached,
      compensations: [...this.compensationOutcomes],
      ...(this.failureReport ? { failure: this.failureReport } : {}),
    };
  }

  private async compensateAndDescribe(err: unknown): Promise<Error> {
    const cancelled = isCancellation(err);
    const failedStep = this.failedStep ?? 'workflow';
    const cause = summarizeFailure(err);
    const report: SagaFailureReport = {
      failedStep,
      cause,
      cancelled,
      afterPivot: this.pivotReached,
      compensations: this.pivotReached ? [] : await this.compensate(),
    };
    this.failureReport = report;
    const message = describeReport(report);
    if (cancelled) return new CancelledFailure(message, [report]);
    return ApplicationFailure.create({
      type: failureTypeForStep(failedStep),
      message,
      nonRetryable: true,
      details: [report],
      cause: err instanceof Error ? err : undefined,
    });
  }

  private async compensate(): Promise<CompensationOutcome[]> {
    const pending = [...this.compensations].reverse();
    this.options.onCompensationStarted?.(pending.map((c) => c.step));
    return CancellationScope.nonCancellable(async () => {
      if (this.options.parallelCompensation) {
        return Promise.all(pending.map((c) => this.runCompensation(c)));
      }
      const outcomes: CompensationOutcome[] = [];
      let stopped: CompensationOutcome | undefined;
      for (const compensation of pending) {
        if (stopped) {
          outcomes.push(
            this.record({
              step: compensation.step,
              activity: compensation.call.activity,
              status: 'skipped',
              error: { type: 'CompensationSkipped', message: `an earlier compensation (${stopped.step}) failed` },
            }),
          );
          continue;
        }
        const outcome = await this.runCompensation(compensation);
        outcomes.push(outcome);
        if (outcome.status === 'failed' && !this.options.continueOnCompensationFailure) stopped = outcome;
      }
      return outcomes;
    });
  }

  private async runCompensation(compensation: RegisteredCompensation): Promise<CompensationOutcome> {
    const base = { step: compensation.step, activity: compensation.call.activity };
    try {
      const args = compensation.buildArgs(compensation.outcome);
      await this.callActivity(compensation.call, args, `undo ${compensation.step}`);
      return this.record({ ...base, status: 'compensated' });
    } catch (err) {
      return this.record({ ...base, status: 'failed', error: summarizeFailure(err) });
    }
  }

  private record(outcome: CompensationOutcome): CompensationOutcome {
    this.compensationOutcomes.push(outcome);
    return outcome;
  }

  private callActivity(call: ActivityCallDefinition, args: unknown[], summary: string | undefined): Promise<unknown> {
    const { jitter, ...retry } = call.retry;
    const options: ActivityOptions = {
      retry,
      startToCloseTimeout: call.timeouts.startToClose,
      scheduleToCloseTimeout: call.timeouts.scheduleToClose,
      scheduleToStartTimeout: call.timeouts.scheduleToStart,
      heartbeatTimeout: call.timeouts.heartbeat,
      summary,
      cancellationType: CANCELLATION_TYPES[call.cancellation ?? 'try'],
    };
    const activities = call.local
      ? proxyLocalActivities<Record<string, AnyActivity>>({
          retry,
          startToCloseTimeout: call.timeouts.startToClose,
          scheduleToCloseTimeout: call.timeouts.scheduleToClose,
          ...(call.localRetryThreshold !== undefined ? { localRetryThreshold: call.localRetryThreshold } : {}),
          summary,
          cancellationType: options.cancellationType,
        })
      : proxyActivities<Record<string, AnyActivity>>(options);
    const activity = activities[call.activity]!;
    const hint = jitter && jitter !== 'none' ? { jitter } : undefined;
    return scheduleWithRetryHint(hint, () => activity(...args));
  }

  private assertJitterCanWork(step: string, call: ActivityCallDefinition): void {
    if (call.retry.jitter && call.retry.jitter !== 'none' && !retryHintInterceptorInstalled()) {
      throw ApplicationFailure.nonRetryable(
        `saga step "${step}" declares jitter "${call.retry.jitter}", but the worker does not register the saga's ` +
          'workflow interceptors; add sagaWorkflowInterceptorsPath to interceptors.workflowModules',
        'SagaMisconfigured',
      );
    }
  }
}
