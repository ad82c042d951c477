/**
 * Gateway request spans with `@fastify/otel`, the fastify organisation's own OpenTelemetry plugin
 * (works with fastify 5; `@opentelemetry/instrumentation-fastify` is deprecated in its favour). It
 * is a plugin registered on our instance, not a `require` hook, so it needs no preloading. It reads
 * an incoming `traceparent`, opens a SERVER span per request and makes it the active context for
 * the route, so the Temporal client's `StartWorkflow`/`UpdateWithStart` spans become its children.
 *
 * Spans are named `<METHOD> <route>` (`POST /files`); `url.path` is rewritten with signing and
 * token query parameters redacted (an EventSource passes its token in the query). Hook spans are
 * off: one request span plus the handler's is what an operator reads.
 */
import FastifyOtelInstrumentation from '@fastify/otel';
import type { FastifyPluginCallback } from 'fastify';
import { redactUrl } from '../logging';

/** The fastify plugin that traces every request of the instance it is registered on. */
export function fastifyTracingPlugin(): FastifyPluginCallback {
  const instrumentation = new FastifyOtelInstrumentation({
    instrumentHooks: false,
    requestHook: (span, request) => {
      span.updateName(`${request.method} ${request.routeOptions.url ?? 'unmatched'}`);
      span.setAttribute('url.path', redactUrl(request.url));
    },
  });
  return instrumentation.plugin() as FastifyPluginCallback;
}
