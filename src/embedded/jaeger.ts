/**
 * Runs a real Jaeger v2 as a child process: the OpenTelemetry collector the trace test exports to
 * over OTLP/HTTP and reads traces back from through Jaeger's query API.
 *
 * Why it is built this way:
 * - Jaeger v2 is an OpenTelemetry Collector distribution configured by one YAML file. We write a
 *   minimal one: an OTLP receiver (HTTP only), in-memory storage (nothing on disk, gone with the
 *   process), the query extension (HTTP API + UI), and the collector's own metrics off — its
 *   default `:8888` would clash between parallel runs. (v1.75.0 still tries to send a few traces of
 *   its own to `localhost:4317` and waits out that export on SIGTERM: tests stop it with a short grace.) The file is JSON, which is YAML, so no YAML
 *   library is needed at run time.
 * - Every port is picked free on 127.0.0.1 (OTLP HTTP, query HTTP, query gRPC); a start that lost a
 *   port race is retried on fresh ports, as MinIO's is.
 * - Readiness is `GET /api/services` on the query port answering 200, racing the process exit, so
 *   a crash fails fast with the log tail instead of a timeout.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ensureServerBinary, type EnsureServerBinaryOptions } from './binaries';
import { EmbeddedStackError } from './errors';
import { findFreePorts } from './free-port';
import { ManagedProcess, type ProcessExit, type RunningServerProcess } from './managed-process';

/** Options of {@link startJaeger}. */
export interface JaegerOptions {
  /** Directory for the generated config (`jaeger.yaml`) and the log (`jaeger.log`). */
  readonly dataDir: string;
  /** The `jaeger` executable. @default the result of `ensureServerBinary('jaeger', binary)` */
  readonly binaryPath?: string;
  /** Options for finding/building the binary when `binaryPath` is not given. @default {} */
  readonly binary?: EnsureServerBinaryOptions;
  /** Interface every port binds to. @default '127.0.0.1' */
  readonly host?: string;
  /** Traces kept in memory (oldest dropped beyond). @default 10_000 */
  readonly maxTraces?: number;
  /** How long to wait for the query API. @default 60_000 */
  readonly readyTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. @default 10_000 */
  readonly stopGraceMs?: number;
}

/** A running embedded Jaeger. */
export interface JaegerServer extends RunningServerProcess {
  /** Base URL for OTLP/HTTP exporters (`OTEL_EXPORTER_OTLP_ENDPOINT`): traces go to `<otlpEndpoint>/v1/traces`. */
  readonly otlpEndpoint: string;
  /** Jaeger's query API and UI, e.g. `http://127.0.0.1:40123` (`/api/traces/<traceId>`). */
  readonly queryUrl: string;
  /** The generated configuration file. */
  readonly configFile: string;
}

/** Jaeger exited before it became ready. */
export class JaegerExitedError extends EmbeddedStackError {
  constructor(
    readonly exit: ProcessExit,
    readonly logTail: string,
  ) {
    super(`jaeger exited before becoming ready (code ${String(exit.code)}, signal ${String(exit.signal)}). Log tail:\n${logTail}`);
  }
}

/** Jaeger's query API did not answer within `readyTimeoutMs`. */
export class JaegerTimeoutError extends EmbeddedStackError {
  constructor(
    readonly timeoutMs: number,
    readonly logTail: string,
    cause: unknown,
  ) {
    super(
      `jaeger was not ready after ${timeoutMs} ms (last error: ${cause instanceof Error ? cause.message : String(cause)}). Log tail:\n${logTail}`,
      { cause },
    );
  }
}

/** The ports a configuration binds. */
interface JaegerPorts {
  otlpHttp: number;
  queryHttp: number;
  queryGrpc: number;
}

/**
 * Jaeger v2's configuration (the collector's format, as in the jaeger repository's
 * `cmd/jaeger/internal/all-in-one.yaml`), trimmed to what a test needs.
 */
export function jaegerConfig(host: string, ports: JaegerPorts, maxTraces: number): Record<string, unknown> {
  return {
    service: {
      extensions: ['jaeger_storage', 'jaeger_query'],
      pipelines: { traces: { receivers: ['otlp'], processors: ['batch'], exporters: ['jaeger_storage_exporter'] } },
      // Its own metrics would bind :8888.
      telemetry: { metrics: { level: 'none' }, logs: { level: 'warn' } },
    },
    extensions: {
      jaeger_storage: { backends: { memstore: { memory: { max_traces: maxTraces } } } },
      jaeger_query: {
        storage: { traces: 'memstore' },
        http: { endpoint: `${host}:${ports.queryHttp}` },
        grpc: { endpoint: `${host}:${ports.queryGrpc}` },
      },
    },
    receivers: { otlp: { protocols: { http: { endpoint: `${host}:${ports.otlpHttp}` } } } },
    // Short batches: a test reads the trace back right after the upload.
    processors: { batch: { timeout: '100ms' } },
    exporters: { jaeger_storage_exporter: { trace_storage: 'memstore' } },
  };
}

/**
 * Starts Jaeger v2 on free local ports with in-memory storage and waits until its query API answers.
 *
 * @throws {@link JaegerExitedError} if the process dies during start-up
 * @throws {@link JaegerTimeoutError} if it is not ready in time (the process is killed)
 */
export async function startJaeger(options: JaegerOptions): Promise<JaegerServer> {
  const binary = options.binaryPath ?? (await ensureServerBinary('jaeger', options.binary));
  const dataDir = path.resolve(options.dataDir);
  await fsp.mkdir(dataDir, { recursive: true });
  const host = options.host ?? '127.0.0.1';
  const logFile = path.join(dataDir, 'jaeger.log');
  const configFile = path.join(dataDir, 'jaeger.yaml');

  for (let attempt = 1; ; attempt++) {
    const [otlpHttp = 0, queryHttp = 0, queryGrpc = 0] = await findFreePorts(3, host);
    const ports = { otlpHttp, queryHttp, queryGrpc };
    await fsp.writeFile(configFile, JSON.stringify(jaegerConfig(host, ports, options.maxTraces ?? 10_000), null, 2));
    const child = await ManagedProcess.start({
      command: binary,
      args: ['--config', configFile],
      logFile,
      // Our own OTEL_* settings (a test process may export to this very server) are not Jaeger's.
      env: { ...withoutOtelVariables(process.env), OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'none' },
    });
    const queryUrl = `http://${host}:${queryHttp}`;
    try {
      await waitUntilReady(child, queryUrl, options.readyTimeoutMs ?? 60_000);
    } catch (error) {
      await child.stop({ graceMs: 2_000 });
      const portTaken = error instanceof JaegerExitedError && /address already in use/i.test(error.logTail);
      if (portTaken && attempt < 3) continue;
      throw error;
    }
    return {
      otlpEndpoint: `http://${host}:${otlpHttp}`,
      queryUrl,
      configFile,
      logFile,
      pid: child.pid,
      exited: child.exited,
      stop: async () => {
        await child.stop({ graceMs: options.stopGraceMs ?? 10_000 });
      },
    };
  }
}

async function waitUntilReady(child: ManagedProcess, queryUrl: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown = new Error('not checked yet');
  let processExit: ProcessExit | undefined;
  void child.exited.then((exit) => (processExit = exit));
  for (;;) {
    if (processExit) throw new JaegerExitedError(processExit, await child.logTail());
    try {
      const response = await fetch(`${queryUrl}/api/services`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.ok) return;
      lastError = new Error(`/api/services answered HTTP ${response.status}`);
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new JaegerTimeoutError(timeoutMs, await child.logTail(), lastError);
    await Promise.race([sleep(200), child.exited]);
  }
}

function withoutOtelVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([name]) => !name.startsWith('OTEL_')));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
