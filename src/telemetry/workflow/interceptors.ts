/**
 * The tracing workflow interceptors every upload workflow bundle registers: the SDK's
 * OpenTelemetry workflow interceptors (`@temporalio/interceptors-opentelemetry`) for calls that
 * continue a trace, and a no-span twin of the same `async` shape for calls that do not.
 *
 * Why: the SDK's interceptors make a span in every interceptor call, tracing on or off (their
 * spans leave the sandbox through the `exporter` sink, a no-op on a worker that does not trace),
 * and that was about a quarter of the worker's workflow-task CPU. They cannot simply be left out:
 * their `async` wrappers add microtask turns, and the order in which an update handler and the
 * workflow's main code reach their next command depends on those turns; recorded histories
 * diverge without them. So the twin keeps every `async` function, every `await` and every SDK
 * flag query of the original (`instrument` and `wrapWithSpan` in the package's
 * `lib/instrumentation.js`, the interceptors in `lib/workflow/index.js`, release 1.24) and only
 * drops the span. Command order is then the same on both paths, so which one runs is free to
 * differ between a run and its replay.
 *
 * Which calls are traced, decided from history (deterministic, the same on every worker):
 * - an inbound call (run, signal, update, query) when its own headers carry a W3C `traceparent`
 *   (the client interceptor of a tracing client puts it there);
 * - an outbound call (activity, local activity, child workflow, signal, continue-as-new) when the
 *   run itself was started with one.
 * A workflow started without a trace context therefore makes no span, on a worker that traces
 * too (before, its spans started a trace of their own); its activities on a tracing worker still do.
 *
 * Invariant (checked by test/replay.test.ts, every recorded history with its trace headers
 * removed and with a trace context added): the twin and the original schedule the same commands
 * in the same order. When the SDK is upgraded, compare both files above with the twin.
 *
 * The SDK's module is loaded on the first traced call only: a worker that never sees a trace
 * context never evaluates OpenTelemetry inside the sandbox.
 */
import {
  defaultPayloadConverter,
  type Next,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptors,
  type WorkflowInterceptorsFactory,
  type WorkflowInternalsInterceptor,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { SdkFlags } from '@temporalio/workflow/lib/flags';
import { getActivator } from '@temporalio/workflow/lib/global-attributes';
import type * as OtelWorkflow from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type { Payload } from '@temporalio/common';

/** The header the SDK's interceptors carry the trace context in (`TRACE_HEADER` of the package). */
const TRACE_HEADER = '_tracer-data';

/** True when `headers` carry a trace context to continue (a `traceparent`), not merely the header. */
function carriesTrace(headers: Record<string, Payload>): boolean {
  const payload = headers[TRACE_HEADER];
  if (payload === undefined) return false;
  try {
    const carrier = defaultPayloadConverter.fromPayload<unknown>(payload);
    return typeof carrier === 'object' && carrier !== null && typeof (carrier as Record<string, unknown>).traceparent === 'string';
  } catch {
    return false;
  }
}

let otelModule: typeof OtelWorkflow | undefined;
/** The SDK's workflow interceptors module, evaluated on first use. */
function otel(): typeof OtelWorkflow {
  otelModule ??= require('@temporalio/interceptors-opentelemetry/lib/workflow') as typeof OtelWorkflow;
  return otelModule;
}

/** As the SDK's flag queries: asked in the same places, so the flags a task records are the same on both paths. */
function avoidsExtraYields(): boolean {
  return getActivator().hasFlag(SdkFlags.OpenTelemetryInterceporsAvoidsExtraYields);
}

// ---- The twin of `instrument` / `wrapWithSpan` (lib/instrumentation.js): the same async functions, no span.

async function wrapWithoutSpan<T>(fn: () => Promise<T> | T): Promise<T> {
  const ret = await fn();
  return ret;
}

/**
 * `instrument({ fn, context })` without the span: with a context the original runs
 * `context.with(ctx, async () => await startActiveSpan(name, async (span) => await wrapWithSpan(...)))`,
 * without one `startActiveSpan(name, async (span) => await wrapWithSpan(...))`; `context.with`
 * and `startActiveSpan` call their callback synchronously and return its promise.
 */
async function instrumentWithoutSpan<T>(fn: () => Promise<T> | T, hasContext: boolean): Promise<T> {
  if (hasContext) {
    return await (async () => {
      return await (async () => await wrapWithoutSpan(fn))();
    })();
  }
  return await (async () => await wrapWithoutSpan(fn))();
}

/** Whether the run was started with a trace context; set by `execute`, read by the outbound calls. */
interface RunTracing {
  traced: boolean;
}

type Inbound = Required<WorkflowInboundCallsInterceptor>;
type Outbound = Required<WorkflowOutboundCallsInterceptor>;
type In<I, K extends keyof I> = I[K] extends (input: infer A, next: never) => unknown ? A : never;

/*
 * Each method hands a traced call to the SDK's interceptor as is (not async itself, so it adds no
 * turn), and an untraced one to its twin below, an `async` method shaped as the SDK's.
 */
class InboundInterceptor implements WorkflowInboundCallsInterceptor {
  private traced?: Inbound;
  constructor(private readonly run: RunTracing) {}
  private otel(): Inbound {
    this.traced ??= new (otel().OpenTelemetryInboundInterceptor)() as unknown as Inbound;
    return this.traced;
  }

  execute(input: In<Inbound, 'execute'>, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    this.run.traced = carriesTrace(input.headers);
    return this.run.traced ? this.otel().execute(input, next) : this.executeWithoutSpan(input, next);
  }
  private async executeWithoutSpan(
    input: In<Inbound, 'execute'>,
    next: Next<WorkflowInboundCallsInterceptor, 'execute'>,
  ): Promise<unknown> {
    const hasContext = input.headers[TRACE_HEADER] !== undefined;
    if (!avoidsExtraYields()) await Promise.resolve();
    // The original's `acceptableErrors` only sets the span's status: errors pass through unchanged.
    return await instrumentWithoutSpan(() => next(input), hasContext);
  }

  handleSignal(input: In<Inbound, 'handleSignal'>, next: Next<WorkflowInboundCallsInterceptor, 'handleSignal'>): Promise<void> {
    return carriesTrace(input.headers) ? this.otel().handleSignal(input, next) : this.handleSignalWithoutSpan(input, next);
  }
  private async handleSignalWithoutSpan(
    input: In<Inbound, 'handleSignal'>,
    next: Next<WorkflowInboundCallsInterceptor, 'handleSignal'>,
  ): Promise<void> {
    if (!getActivator().hasFlag(SdkFlags.OpenTelemetryInterceptorsTracesInboundSignals)) return next(input);
    const hasContext = input.headers[TRACE_HEADER] !== undefined;
    if (!avoidsExtraYields()) await Promise.resolve();
    return await instrumentWithoutSpan(() => next(input), hasContext);
  }

  handleUpdate(input: In<Inbound, 'handleUpdate'>, next: Next<WorkflowInboundCallsInterceptor, 'handleUpdate'>): Promise<unknown> {
    return carriesTrace(input.headers) ? this.otel().handleUpdate(input, next) : this.handleUpdateWithoutSpan(input, next);
  }
  private async handleUpdateWithoutSpan(
    input: In<Inbound, 'handleUpdate'>,
    next: Next<WorkflowInboundCallsInterceptor, 'handleUpdate'>,
  ): Promise<unknown> {
    if (!getActivator().hasFlag(SdkFlags.OpenTelemetryInterceptorsInstrumentsAllMethods)) return next(input);
    return await instrumentWithoutSpan(() => next(input), input.headers[TRACE_HEADER] !== undefined);
  }

  validateUpdate(input: In<Inbound, 'validateUpdate'>, next: Next<WorkflowInboundCallsInterceptor, 'validateUpdate'>): void {
    // Synchronous, as the original: no turn to keep.
    if (carriesTrace(input.headers)) this.otel().validateUpdate(input, next);
    else next(input);
  }

  handleQuery(input: In<Inbound, 'handleQuery'>, next: Next<WorkflowInboundCallsInterceptor, 'handleQuery'>): Promise<unknown> {
    return carriesTrace(input.headers) ? this.otel().handleQuery(input, next) : this.handleQueryWithoutSpan(input, next);
  }
  private async handleQueryWithoutSpan(
    input: In<Inbound, 'handleQuery'>,
    next: Next<WorkflowInboundCallsInterceptor, 'handleQuery'>,
  ): Promise<unknown> {
    if (!getActivator().hasFlag(SdkFlags.OpenTelemetryInterceptorsInstrumentsAllMethods)) return next(input);
    return await instrumentWithoutSpan(() => next(input), input.headers[TRACE_HEADER] !== undefined);
  }
}

/** The original's `fn` for the calls that pass the context on: an `async` function with one optional extra yield. */
function forward<I, R>(input: I, next: (input: I) => Promise<R>): () => Promise<R> {
  return async () => {
    if (!avoidsExtraYields()) await Promise.resolve();
    return next(input);
  };
}

class OutboundInterceptor implements WorkflowOutboundCallsInterceptor {
  private traced?: Outbound;
  constructor(private readonly run: RunTracing) {}
  private otel(): Outbound {
    this.traced ??= new (otel().OpenTelemetryOutboundInterceptor)() as unknown as Outbound;
    return this.traced;
  }

  scheduleActivity(
    input: In<Outbound, 'scheduleActivity'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>,
  ): Promise<unknown> {
    if (this.run.traced) return this.otel().scheduleActivity(input, next);
    return this.scheduleActivityWithoutSpan(input, next);
  }
  private async scheduleActivityWithoutSpan(
    input: In<Outbound, 'scheduleActivity'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>,
  ): Promise<unknown> {
    return await instrumentWithoutSpan(forward(input, next), false);
  }

  scheduleLocalActivity(
    input: In<Outbound, 'scheduleLocalActivity'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>,
  ): Promise<unknown> {
    if (this.run.traced) return this.otel().scheduleLocalActivity(input, next);
    return this.scheduleLocalActivityWithoutSpan(input, next);
  }
  private async scheduleLocalActivityWithoutSpan(
    input: In<Outbound, 'scheduleLocalActivity'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>,
  ): Promise<unknown> {
    if (!getActivator().hasFlag(SdkFlags.OpenTelemetryInterceptorsTracesLocalActivities)) return next(input);
    return await instrumentWithoutSpan(forward(input, next), false);
  }

  startNexusOperation(
    input: In<Outbound, 'startNexusOperation'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'startNexusOperation'>,
  ): ReturnType<Outbound['startNexusOperation']> {
    if (this.run.traced) return this.otel().startNexusOperation(input, next);
    return this.startNexusOperationWithoutSpan(input, next);
  }
  private async startNexusOperationWithoutSpan(
    input: In<Outbound, 'startNexusOperation'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'startNexusOperation'>,
  ): ReturnType<Outbound['startNexusOperation']> {
    if (!getActivator().hasFlag(SdkFlags.OpenTelemetryInterceptorsInstrumentsAllMethods)) return next(input);
    return await instrumentWithoutSpan(async () => await next(input), false);
  }

  startChildWorkflowExecution(
    input: In<Outbound, 'startChildWorkflowExecution'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
  ): ReturnType<Outbound['startChildWorkflowExecution']> {
    if (this.run.traced) return this.otel().startChildWorkflowExecution(input, next);
    return this.startChildWithoutSpan(input, next);
  }
  private async startChildWithoutSpan(
    input: In<Outbound, 'startChildWorkflowExecution'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
  ): ReturnType<Outbound['startChildWorkflowExecution']> {
    return await instrumentWithoutSpan(forward(input, next), false);
  }

  continueAsNew(input: In<Outbound, 'continueAsNew'>, next: Next<WorkflowOutboundCallsInterceptor, 'continueAsNew'>): Promise<never> {
    if (this.run.traced) return this.otel().continueAsNew(input, next);
    return this.continueAsNewWithoutSpan(input, next);
  }
  private async continueAsNewWithoutSpan(
    input: In<Outbound, 'continueAsNew'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'continueAsNew'>,
  ): Promise<never> {
    return await instrumentWithoutSpan(forward(input, next), false);
  }

  signalWorkflow(input: In<Outbound, 'signalWorkflow'>, next: Next<WorkflowOutboundCallsInterceptor, 'signalWorkflow'>): Promise<void> {
    if (this.run.traced) return this.otel().signalWorkflow(input, next);
    return this.signalWorkflowWithoutSpan(input, next);
  }
  private async signalWorkflowWithoutSpan(
    input: In<Outbound, 'signalWorkflow'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'signalWorkflow'>,
  ): Promise<void> {
    return await instrumentWithoutSpan(forward(input, next), false);
  }

  getLogAttributes(
    input: In<Outbound, 'getLogAttributes'>,
    next: Next<WorkflowOutboundCallsInterceptor, 'getLogAttributes'>,
  ): Record<string, unknown> {
    return this.run.traced ? this.otel().getLogAttributes(input, next) : next(input);
  }
}

class InternalsInterceptor implements WorkflowInternalsInterceptor {
  dispose(input: In<Required<WorkflowInternalsInterceptor>, 'dispose'>, next: Next<WorkflowInternalsInterceptor, 'dispose'>): void {
    // The original disables the sandbox's context manager when a run is disposed; only a loaded module has one.
    // Its `dispose` is `async` but calls `next` synchronously; the SDK does not wait for it.
    if (otelModule) void new otelModule.OpenTelemetryInternalsInterceptor().dispose!(input, next);
    else next(input);
  }
}

/** The factory the SDK calls for each run (`interceptors.workflowModules`). */
export const interceptors: WorkflowInterceptorsFactory = (): WorkflowInterceptors => {
  const run: RunTracing = { traced: false };
  return {
    inbound: [new InboundInterceptor(run)],
    outbound: [new OutboundInterceptor(run)],
    internals: [new InternalsInterceptor()],
  };
};
