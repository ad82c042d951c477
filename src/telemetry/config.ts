/**
 * Tracing configuration from the environment: `OTEL_EXPORTER_OTLP_ENDPOINT` switches tracing on
 * and says where spans go; `OTEL_SERVICE_NAME` names the process in them. Validated here, so a
 * typo in the URL fails at start with the variable named instead of dropping every span later.
 */
import { ConfigError } from '../config';

/** Where and as whom spans are exported. */
export interface TracingConfig {
  /** Collector base URL (OTLP/HTTP); spans are POSTed to `<endpoint>/v1/traces`. */
  endpoint: string;
  /** `service.name` of the spans. */
  serviceName: string;
}

/**
 * The tracing configuration, or undefined when `OTEL_EXPORTER_OTLP_ENDPOINT` is unset (tracing off).
 * @param defaultServiceName `service.name` when `OTEL_SERVICE_NAME` is unset (e.g. "upload-saga-worker")
 * @throws ConfigError when the endpoint is not an http(s) URL
 */
export function loadTracingConfig(env: NodeJS.ProcessEnv, defaultServiceName: string): TracingConfig | undefined {
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (!endpoint) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    // reported below
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ConfigError([
      'OTEL_EXPORTER_OTLP_ENDPOINT: must be an http:// or https:// URL (the OTLP/HTTP collector, e.g. http://localhost:4318)',
    ]);
  }
  return { endpoint: endpoint.replace(/\/+$/, ''), serviceName: env.OTEL_SERVICE_NAME?.trim() || defaultServiceName };
}
