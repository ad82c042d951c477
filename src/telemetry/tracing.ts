/**
 * Tracing: one OpenTelemetry tracer provider per process, exporting over OTLP/HTTP (protobuf), and
 * the pieces that put the worker, the gateway and the S3 client into one trace per upload.
 *
 * Why it is built this way:
 * - Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set (see config.ts). Off means no provider is
 *   registered: every span made through `@opentelemetry/api` is the API's non-recording no-op.
 * - The SDK is OpenTelemetry JS **1.x** (`sdk-trace-node` 1.30): `@temporalio/interceptors-opentelemetry`
 *   1.24 is built against it (its workflow span sink takes a 1.x `SpanProcessor`), and 1.x runs on
 *   Node 20 where the 2.x line's newest releases need Node 22.
 * - The provider is registered globally (context manager on AsyncLocalStorage, W3C `traceparent`
 *   propagator), so the fastify plugin, the Temporal client interceptor, activity code and the S3
 *   middleware all see the same active span without being handed a tracer.
 * - Spans leave in batches (`BatchSpanProcessor`), off the request path; `shutdown()` flushes them.
 * - Logs carry the trace id: {@link startTracing} installs `setTraceIdProvider` (src/logging.ts).
 */
import { context, propagation, trace, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { setTraceIdProvider } from '../logging';
import type { TracingConfig } from './config';

/** Name of the tracer upload-saga's own spans (S3 requests) are made with. */
export const TRACER_NAME = 'upload-saga';

/** A process's tracing, started by {@link startTracing}. */
export interface Tracing {
  readonly config: TracingConfig;
  /** The processor every span goes through (also the workflow span sink's, see src/telemetry/temporal.ts). */
  readonly spanProcessor: SpanProcessor;
  /** The resource (`service.name`) spans carry. */
  readonly resource: Resource;
  readonly tracer: Tracer;
  /** Exports the spans still buffered. */
  forceFlush(): Promise<void>;
  /** Flushes and stops exporting; unregisters the global provider. */
  shutdown(): Promise<void>;
}

let current: Tracing | undefined;

/** The tracing this process started, if any. */
export function currentTracing(): Tracing | undefined {
  return current;
}

/** Options of {@link startTracing}. */
export interface StartTracingOptions {
  /** Longest a finished span waits in the batch. @default 1_000 */
  scheduledDelayMillis?: number;
}

/**
 * Starts exporting spans to `config.endpoint` and registers the provider globally. Once per
 * process: a second call returns the tracing already started (one provider serves a worker and a
 * gateway sharing a process, under the first `service.name`).
 */
export function startTracing(config: TracingConfig, options: StartTracingOptions = {}): Tracing {
  if (current) return current;
  const resource = new Resource({ 'service.name': config.serviceName });
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter({ url: `${config.endpoint}/v1/traces` }), {
    scheduledDelayMillis: options.scheduledDelayMillis ?? 1_000,
  });
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register();
  setTraceIdProvider(activeTraceId);
  const tracing: Tracing = {
    config,
    spanProcessor,
    resource,
    tracer: trace.getTracer(TRACER_NAME),
    forceFlush: () => provider.forceFlush(),
    shutdown: async () => {
      if (current === tracing) current = undefined;
      setTraceIdProvider(undefined);
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
  current = tracing;
  return tracing;
}

/** The trace id of the span active in this async context, if it is a real (sampled or recorded) one. */
export function activeTraceId(): string | undefined {
  const spanContext = trace.getActiveSpan()?.spanContext();
  return spanContext && trace.isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}
