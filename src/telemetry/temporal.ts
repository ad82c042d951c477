/**
 * The Temporal half of tracing, from `@temporalio/interceptors-opentelemetry` (the SDK's own
 * package, same release line as our `@temporalio/*` 1.24): the client interceptor that opens the
 * `StartWorkflow` span and passes its context in the workflow's headers, the workflow interceptors
 * (run inside the sandbox, so they are a *module path* bundled with the workflows), the activity
 * interceptors that continue the trace in each activity, and the sink that carries the spans made
 * inside the sandbox out to the process's span processor.
 *
 * Invariants:
 * - The workflow interceptor module is in every upload workflow bundle, tracing on or off: a
 *   bundle is built once (`npm run build`) and shipped, and must run under both settings. It is
 *   ours (src/telemetry/workflow/interceptors.ts): the SDK's interceptors for calls that continue a
 *   trace, a no-span twin of the same shape for the others. It adds no workflow command, traced or
 *   not (replay tests prove it on every recorded history, with and without trace headers); its
 *   spans go out through the `exporter` sink only, which is never called during replay.
 * - So every upload worker registers the `exporter` sink ({@link workflowSpanSinks}): the real one
 *   when tracing is on, a no-op when it is off (an unregistered sink would log an error per call).
 */
import type { WorkflowClientInterceptor } from '@temporalio/client';
// Subpaths, not the package index: the index also loads the workflow-side modules and the worker plugin,
// which the gateway and the CLI (client side only) have no use for.
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/worker';
import type { ActivityInterceptorsFactory, WorkerOptions } from '@temporalio/worker';
import { siblingModule } from '../module-path';
import type { Tracing } from './tracing';

/**
 * Path of the tracing workflow interceptors module, for `workflowInterceptorModules` /
 * `interceptors.workflowModules`: spans for runs and calls that carry a trace context, none for the others.
 */
export const tracingWorkflowInterceptorsPath: string = siblingModule(__dirname, 'workflow/interceptors');

/** The client interceptor: `StartWorkflow` (and signal, query, update) spans, context passed in headers. */
export function tracingClientInterceptors(): WorkflowClientInterceptor[] {
  return [new OpenTelemetryWorkflowClientInterceptor()];
}

/** The activity interceptors: each activity runs in a `RunActivity` span, child of the workflow's `StartActivity`. */
export function tracingActivityInterceptors(): ActivityInterceptorsFactory[] {
  return [
    (ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) }),
  ];
}

/** The `exporter` sink the workflow interceptors call: into `tracing`'s span processor, or nowhere when tracing is off. */
export function workflowSpanSinks(tracing: Tracing | undefined): NonNullable<WorkerOptions['sinks']> {
  if (tracing) return { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) };
  return { exporter: { export: { fn: () => undefined, callDuringReplay: false } } };
}
