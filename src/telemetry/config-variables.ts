/**
 * The tracing environment variables, by name, meaning and default: a module of its own that
 * imports nothing but a type, so src/config.ts can list them in CONFIG_VARIABLES (which the docs
 * table and the CLI's --help are checked against) without an import cycle. They are the standard
 * OpenTelemetry names, so a deployment's existing OTel settings carry over.
 */
import type { ConfigVariable } from '../config-variable';

/** The tracing variables (included in `CONFIG_VARIABLES`). */
export const TRACING_CONFIG_VARIABLES: ConfigVariable[] = [
  {
    name: 'OTEL_EXPORTER_OTLP_ENDPOINT',
    description:
      'OTLP/HTTP (protobuf) collector base URL traces are exported to (spans go to "<url>/v1/traces"), e.g. http://jaeger:4318; unset: tracing off',
    default: '(off)',
  },
  {
    name: 'OTEL_SERVICE_NAME',
    description: 'The `service.name` of exported spans',
    default: 'upload-saga-worker, upload-saga-gateway',
  },
];
