/**
 * Logs: one pino root logger per process (worker, gateway, CLI), configured by `LOG_LEVEL` and
 * `LOG_FORMAT` (see src/config.ts), and an adapter that routes the Temporal SDK's logs (the
 * worker's, activities' and workflows' `log`, the Rust core's) through it.
 *
 * Invariants:
 * - One JSON object a line (`LOG_FORMAT=json`), on stderr: stdout stays the CLI's output. On a TTY
 *   the default is a short human-readable line, written by {@link prettyStream} (a few lines of
 *   code rather than pino-pretty: no extra dependency, no worker-thread transport).
 * - Lines about an upload carry `tenant`, `uploadId` and `workflowId` (derived from the workflow
 *   id, `upload:<tenant>:<uploadId>`), and `traceId` when a provider is set
 *   ({@link setTraceIdProvider}: the hook tracing will fill).
 * - No secrets: authorization headers, credentials, keys, tokens and secrets are redacted by
 *   path, and URLs lose their signing/token query parameters. Configuration objects are never
 *   logged whole.
 */
import type { LogLevel as TemporalLogLevel, LogMetadata, Logger as SdkLogger } from '@temporalio/common';
import type * as TemporalWorker from '@temporalio/worker';
import pino, { type DestinationStream, type Logger } from 'pino';
import { parseUploadWorkflowId } from './upload/request';

export type { Logger } from 'pino';

/** Levels `LOG_LEVEL` accepts. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];
/** Formats `LOG_FORMAT` accepts. */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The logging configuration (`LOG_LEVEL`, `LOG_FORMAT`). */
export interface LoggingConfig {
  /** @default 'info' */
  level: LogLevelName;
  /** @default 'pretty' when the destination is a TTY, else 'json' */
  format?: LogFormat;
}

/** Field paths pino replaces with "[REDACTED]" wherever they occur (one level of nesting via `*`). */
export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-amz-security-token"]',
  'req.headers["x-amz-credential"]',
  'req.headers["x-amz-signature"]',
  '*.authorization',
  'secretAccessKey',
  '*.secretAccessKey',
  'accessKeyId',
  '*.accessKeyId',
  'credentials',
  '*.credentials',
  'apiKey',
  '*.apiKey',
  'secret',
  '*.secret',
  'token',
  '*.token',
  'password',
  '*.password',
];

/** Query parameters that carry credentials (bearer tokens for EventSource, S3 signatures). */
const SECRET_QUERY = /^(access_token|token|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;

/** `url` with the values of credential-bearing query parameters replaced by "[REDACTED]". */
export function redactUrl(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const query = url
    .slice(at + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = decodeURIComponentSafe(eq < 0 ? pair : pair.slice(0, eq));
      return SECRET_QUERY.test(name) ? `${pair.slice(0, eq < 0 ? pair.length : eq)}=[REDACTED]` : pair;
    })
    .join('&');
  return `${url.slice(0, at)}?${query}`;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

let traceIdProvider: (() => string | undefined) | undefined;

/** Sets where `traceId` comes from (tracing's hook; unset: no `traceId` field). */
export function setTraceIdProvider(provider: (() => string | undefined) | undefined): void {
  traceIdProvider = provider;
}

/** fastify's request as logged: method, URL (redacted), no headers. */
function requestSerializer(req: { method?: string; url?: string; hostname?: string; ip?: string; id?: string }) {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
    hostname: req.hostname,
    remoteAddress: req.ip,
  };
}

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Where lines go. @default process.stderr */
  destination?: DestinationStream & { isTTY?: boolean };
  /** `name` field of every line (e.g. "worker", "gateway"). */
  name?: string;
}

/** The root logger of a process, from its configuration. */
export function createLogger(config: LoggingConfig, options: CreateLoggerOptions = {}): Logger {
  const destination = options.destination ?? (process.stderr as DestinationStream & { isTTY?: boolean });
  const format = config.format ?? (destination.isTTY ? 'pretty' : 'json');
  return pino(
    {
      level: config.level,
      ...(options.name ? { name: options.name } : {}),
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err, req: requestSerializer },
      mixin: () => {
        const traceId = traceIdProvider?.();
        return traceId ? { traceId } : {};
      },
    },
    format === 'pretty' ? prettyStream(destination) : destination,
  );
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const OMITTED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'v']);

/** A stream that turns pino's JSON lines into `12:00:00.000 INFO  [worker] message key=value …`. */
export function prettyStream(destination: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        destination.write(line);
        return;
      }
      const time = typeof entry.time === 'string' ? entry.time.slice(11, 23) : '';
      const level = (LEVEL_NAMES[entry.level as number] ?? String(entry.level)).padEnd(5);
      const fields = Object.entries(entry)
        .filter(([key]) => !OMITTED.has(key))
        .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
      const name = typeof entry.name === 'string' ? ` [${entry.name}]` : '';
      destination.write(`${time} ${level}${name} ${String(entry.msg ?? '')}${fields.length ? `  ${fields.join(' ')}` : ''}\n`);
    },
  };
}

/** `tenant` and `uploadId` of an upload's workflow id (`upload:<tenant>:<uploadId>`). */
export function uploadFieldsOf(workflowId: unknown): { tenant?: string; uploadId?: string } {
  return (typeof workflowId === 'string' && parseUploadWorkflowId(workflowId)) || {};
}

const PINO_LEVEL: Record<TemporalLogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/**
 * The Temporal SDK's `Logger` over a pino logger: give it to `Runtime.install({ logger })` so the
 * worker's, activities' and workflows' logs (with the SDK's attributes: workflowId, activityType,
 * taskQueue, sdkComponent…) become lines of the process's log, with `tenant` and `uploadId` added.
 */
export class TemporalLogger implements SdkLogger {
  constructor(private readonly logger: Logger) {}

  log(level: TemporalLogLevel, message: string, meta: LogMetadata = {}): void {
    const method = PINO_LEVEL[level] ?? 'info';
    if (!this.logger.isLevelEnabled(method)) return;
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(meta)) {
      fields[key === 'error' || key === 'failure' ? 'err' : key] = value instanceof Error ? pino.stdSerializers.err(value) : value;
    }
    Object.assign(fields, uploadFieldsOf(meta.workflowId));
    this.logger[method](fields, message);
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/** The Rust core's log filter for a pino level (the core logs little above WARN that matters). */
function coreLevel(level: LogLevelName): 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' {
  if (level === 'trace') return 'TRACE';
  if (level === 'debug') return 'DEBUG';
  if (level === 'info') return 'INFO';
  if (level === 'warn') return 'WARN';
  return 'ERROR';
}

/** What else the one Temporal runtime of a process is installed with (see {@link installTemporalLogging}). */
export interface TemporalRuntimeOptions {
  /** `host:port` of the SDK's own Prometheus exporter (Prometheus naming: `_total`, units, seconds). @default none */
  prometheusBindAddress?: string;
}

/**
 * Installs the Temporal runtime with `logger` as its logger, core logs forwarded, once per
 * process, before any connection. Returns false (and installs nothing) when the runtime already
 * exists — a test or host application installed its own — so library code paths never throw here.
 */
export function installTemporalLogging(logger: Logger, options: TemporalRuntimeOptions = {}): boolean {
  // Loaded here, not at the top: the gateway and the CLI import this module without the worker's native runtime.
  const { Runtime } = require('@temporalio/worker') as typeof TemporalWorker;
  if ((Runtime as unknown as { _instance?: unknown })._instance !== undefined) return false;
  const level = coreLevel(logger.level as LogLevelName);
  Runtime.install({
    logger: new TemporalLogger(logger),
    // The core's own logs, forwarded into the same logger (its TRACE is far too chatty: DEBUG at most).
    telemetryOptions: {
      logging: { filter: { core: level === 'TRACE' ? 'DEBUG' : level, other: 'WARN' }, forward: {} },
      // One install per process: the SDK's Prometheus exporter is configured here too (see src/metrics/metrics-server.ts).
      ...(options.prometheusBindAddress
        ? {
            metrics: {
              prometheus: {
                bindAddress: options.prometheusBindAddress,
                countersTotalSuffix: true,
                unitSuffix: true,
                useSecondsForDurations: true,
              },
            },
          }
        : {}),
    },
  });
  return true;
}
