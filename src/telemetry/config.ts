/**
 * Tracing configuration from the environment: `OTEL_EXPORTER_OTLP_ENDPOINT` switches tracing on
 * and says where spans go; `OTEL_SERVICE_NAME` names the process in them. `loadConfig` reports a
 * bad endpoint with the other configuration problems ({@link tracingConfigProblems}), so a typo
 * stops the worker or gateway at start instead of dropping every span later. No import of
 * src/config.ts: it imports this module.
 */

/** Where and as whom spans are exported. */
export interface TracingConfig {
  /** Collector base URL (OTLP/HTTP); spans are POSTed to `<endpoint>/v1/traces`. */
  endpoint: string;
  /** `service.name` of the spans. */
  serviceName: string;
}

/** What is wrong with the tracing variables of `env` (one line per problem, naming the variable). */
export function tracingConfigProblems(env: NodeJS.ProcessEnv): string[] {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint) return [];
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    return ['OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL (the OTLP/HTTP collector, e.g. http://localhost:4318)'];
  }
  return [];
}

/**
 * The tracing configuration, or undefined when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset (tracing off).
 * Call it after `loadConfig(env)`, which reports a bad endpoint.
 * @param defaultServiceName `service.name` when `OTEL_SERVICE_NAME` is unset (e.g. "upload-saga-worker")
 * @throws Error when the endpoint is not an http(s) URL
 */
export function loadTracingConfig(env: NodeJS.ProcessEnv, defaultServiceName: string): TracingConfig | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint) return undefined;
  const problems = tracingConfigProblems(env);
  if (problems.length) throw new Error(problems.join('; '));
  return { endpoint: endpoint.replace(/\/+$/, ''), serviceName: env.OTEL_SERVICE_NAME?.trim() || defaultServiceName };
}
