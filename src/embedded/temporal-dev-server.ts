/**
 * Runs a real Temporal server (`temporal server start-dev`) as a child process.
 *
 * Why it is built this way:
 * - `start-dev` is the full server (frontend, history, matching, worker, Web UI) in one process;
 *   with `--db-filename` it persists to SQLite, so restarting with the same `dataDir` keeps every
 *   workflow, which is what crash/resume tests and the demo rely on.
 * - Every port it would otherwise default (7233, 8233) is picked free by us, so parallel stacks
 *   and a developer's own dev server never collide. If a picked port is stolen before the server
 *   binds it, the start is retried with fresh ports.
 * - Readiness is polled over the frontend HTTP API (namespace answers), then confirmed once over
 *   the gRPC API workers use (`GetSystemInfo` + `DescribeNamespace`), then the Web UI; every
 *   step races the process exit so a crash fails fast with its log tail. (Polling with gRPC
 *   directly leaks a channel per failed `Connection.connect`.)
 * - `--search-attribute` only takes effect when the SQLite file is created; on a restart with an
 *   existing database we add missing attributes through the OperatorService, so the attribute
 *   list can grow between runs.
 * - `restart()` brings the server back on the same ports with the same database (fault-injection
 *   tests kill it mid-upload): clients and workers reconnect to the same address by themselves.
 * - SQLite runs in WAL mode with `synchronous=normal`: a commit is one append to the write-ahead
 *   log instead of a rollback journal written, synced and deleted, which takes about a third of
 *   the server's CPU per upload off (docs/explanation/performance.md#latency). Every commit
 *   survives a killed server (the log is in the OS's page cache); only a crash of the machine
 *   itself can lose the last ones, which a development stack may.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ensureServerBinary, type EnsureServerBinaryOptions } from './binaries';
import { EmbeddedStackError } from './errors';
import { arePortsFree, findFreePorts } from './free-port';
import { ManagedProcess, type ProcessExit } from './managed-process';
import { normaliseSearchAttributes, reconcileSearchAttributes, type SearchAttributeTypeName } from './search-attributes';
import { grpcOk, httpOk, readinessPoller, type TemporalServerOptions, type TemporalServerProcess } from './temporal-server-process';

/** Options of {@link startTemporalDevServer}. */
export interface TemporalDevServerOptions extends TemporalServerOptions {
  /** Directory for `temporal.db` (SQLite) and `temporal.log`; created if missing. Reuse it to keep state. */
  readonly dataDir: string;
  /**
   * The `temporal` executable.
   * @default the result of `ensureServerBinary('temporal', binary)`
   */
  readonly binaryPath?: string;
  /**
   * Options for finding/building the binary when `binaryPath` is not given.
   * @default {}
   */
  readonly binary?: EnsureServerBinaryOptions;
  /**
   * Web UI port.
   * @default a free port
   */
  readonly uiPort?: number;
  /**
   * Frontend HTTP API port.
   * @default a free port
   */
  readonly httpPort?: number;
  /**
   * Prometheus `/metrics` port.
   * @default a free port
   */
  readonly metricsPort?: number;
  /**
   * Codec server the Web UI sends payloads to for decoding (`--ui-codec-endpoint`), e.g. the
   * `upload-saga codec-server` URL, so an encrypting deployment's payloads show decoded in the UI.
   * @default none (the UI shows encoded payloads as they are)
   */
  readonly uiCodecEndpoint?: string;
}

/** A running Temporal dev server. */
export interface TemporalDevServer extends TemporalServerProcess {
  /** Base URL of the Web UI, without trailing slash. */
  readonly uiUrl: string;
  /** Directory holding `temporal.db` and `temporal.log`. */
  readonly dataDir: string;
  /** Every port the server was told to bind. */
  readonly ports: { readonly frontend: number; readonly ui: number; readonly http: number; readonly metrics: number };
}

/** The server process exited before it became ready. */
export class TemporalDevServerExitedError extends EmbeddedStackError {
  constructor(
    readonly exit: ProcessExit,
    readonly logTail: string,
  ) {
    super(
      `temporal server start-dev exited before becoming ready (code ${String(exit.code)}, signal ` +
        `${String(exit.signal)}). Log tail:\n${logTail}`,
    );
  }
}

/** The server did not become ready within `readyTimeoutMs`. */
export class TemporalDevServerTimeoutError extends EmbeddedStackError {
  constructor(
    readonly timeoutMs: number,
    readonly logTail: string,
    cause: unknown,
  ) {
    super(
      `temporal server start-dev was not ready after ${timeoutMs} ms ` +
        `(last error: ${cause instanceof Error ? cause.message : String(cause)}). Log tail:\n${logTail}`,
      { cause },
    );
  }
}

/** Where to point a browser for one workflow execution. */
export interface WorkflowUiTarget {
  /** Base URL of the Temporal Web UI (e.g. {@link TemporalDevServer.uiUrl}). */
  readonly uiUrl: string;
  /** Namespace of the workflow. */
  readonly namespace: string;
  /** Workflow id. */
  readonly workflowId: string;
  /** A specific run; without it the UI shows the latest run. */
  readonly runId?: string;
}

/** The Web UI URL of a workflow (and optionally of one of its runs). */
export function workflowUiUrl(target: WorkflowUiTarget): string {
  const base = `${target.uiUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(target.namespace)}/workflows/${encodeURIComponent(target.workflowId)}`;
  return target.runId ? `${base}/${encodeURIComponent(target.runId)}` : base;
}

/**
 * Starts `temporal server start-dev` with SQLite persistence in `dataDir` and waits until it
 * serves gRPC, the namespace and the Web UI.
 *
 * @throws {@link InvalidSearchAttributeError} before spawning, for a bad attribute
 * @throws {@link TemporalDevServerExitedError} if the process dies during start-up
 * @throws {@link TemporalDevServerTimeoutError} if it is not ready in time (the process is killed)
 * @throws {@link SearchAttributeTypeConflictError} if the existing database disagrees on a type
 */
export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const searchAttributes = normaliseSearchAttributes(options.searchAttributes ?? {});
  const binary = options.binaryPath ?? (await ensureServerBinary('temporal', options.binary));
  const dataDir = path.resolve(options.dataDir);
  await fsp.mkdir(dataDir, { recursive: true });
  const ip = options.ip ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  const explicitPorts = [options.port, options.uiPort, options.httpPort, options.metricsPort].filter((p): p is number => p !== undefined);
  const attempts = explicitPorts.length < 4 ? Math.max(1, options.startAttempts ?? 3) : 1;

  const launch = async (ports: TemporalDevServer['ports']): Promise<ManagedProcess> => {
    const child = await ManagedProcess.start({
      command: binary,
      args: buildArgs({ dataDir, ip, namespace, ports, searchAttributes, options }),
      logFile: path.join(dataDir, 'temporal.log'),
    });
    try {
      await waitUntilReady({
        child,
        address: `${ip}:${ports.frontend}`,
        httpUrl: `http://${ip}:${ports.http}`,
        namespace,
        uiUrl: `http://${ip}:${ports.ui}`,
        searchAttributes,
        options,
      });
    } catch (error) {
      await child.stop({ graceMs: 2_000 });
      throw error;
    }
    return child;
  };

  for (let attempt = 1; ; attempt++) {
    const [frontend, ui, http, metrics] = await pickPorts(ip, options);
    const ports = { frontend, ui, http, metrics };
    let child: ManagedProcess;
    try {
      child = await launch(ports);
    } catch (error) {
      const portTaken = error instanceof TemporalDevServerExitedError && /address already in use|can't set|can't use/i.test(error.logTail);
      // Fresh ports only help if the taken one was ours to choose.
      if (portTaken && attempt < attempts && (await arePortsFree(explicitPorts, ip))) continue;
      throw error;
    }

    let running = child;
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => (stopping ??= running.stop({ graceMs: options.stopGraceMs ?? 10_000 }).then(() => undefined));
    return {
      address: `${ip}:${frontend}`,
      namespace,
      uiUrl: `http://${ip}:${ui}`,
      dataDir,
      logFile: child.logFile,
      get pid() {
        return running.pid;
      },
      ports,
      get exited() {
        return running.exited;
      },
      stop,
      kill: (signal: NodeJS.Signals = 'SIGTERM') => running.kill(signal),
      restart: async () => {
        await stop();
        // Same ports, same database: the server comes back where it was.
        running = await launch(ports);
        stopping = undefined;
      },
    };
  }
}

async function pickPorts(ip: string, options: TemporalDevServerOptions): Promise<[number, number, number, number]> {
  const free = await findFreePorts(4, ip);
  const pick = (given: number | undefined, index: number): number => given ?? free[index] ?? 0;
  return [pick(options.port, 0), pick(options.uiPort, 1), pick(options.httpPort, 2), pick(options.metricsPort, 3)];
}

function buildArgs(input: {
  dataDir: string;
  ip: string;
  namespace: string;
  ports: { frontend: number; ui: number; http: number; metrics: number };
  searchAttributes: ReadonlyMap<string, SearchAttributeTypeName>;
  options: TemporalDevServerOptions;
}): string[] {
  const { dataDir, ip, namespace, ports, searchAttributes, options } = input;
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    path.join(dataDir, 'temporal.db'),
    '--ip',
    ip,
    '--port',
    String(ports.frontend),
    '--ui-port',
    String(ports.ui),
    '--http-port',
    String(ports.http),
    '--metrics-port',
    String(ports.metrics),
    '--namespace',
    namespace,
    '--log-level',
    options.logLevel ?? 'warn',
    '--color',
    'never',
    '--sqlite-pragma',
    'journal_mode=wal',
    '--sqlite-pragma',
    'synchronous=normal',
  ];
  if (options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  for (const [name, type] of searchAttributes) args.push('--search-attribute', `${name}=${type}`);
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  return args;
}

async function waitUntilReady(input: {
  child: ManagedProcess;
  address: string;
  httpUrl: string;
  namespace: string;
  uiUrl: string;
  searchAttributes: ReadonlyMap<string, SearchAttributeTypeName>;
  options: TemporalDevServerOptions;
}): Promise<void> {
  const { child, address, httpUrl, namespace, uiUrl, searchAttributes, options } = input;
  const pollUntil = readinessPoller(child, options.readyTimeoutMs ?? 60_000, {
    exited: (exit, logExcerpt) => new TemporalDevServerExitedError(exit, logExcerpt),
    timedOut: (timeoutMs, logTail, lastError) => new TemporalDevServerTimeoutError(timeoutMs, logTail, lastError),
  });

  // 1. Poll over the frontend's HTTP API (fetch sockets are torn down on every failure, unlike a
  //    gRPC channel that fails its first connect): the namespace answers once the server is up.
  await pollUntil(() => httpOk(`${httpUrl}/api/v1/namespaces/${encodeURIComponent(namespace)}`));

  // 2. The gRPC API our workers and clients use answers too; register missing search attributes.
  await pollUntil(() =>
    grpcOk(address, async (connection) => {
      await connection.withDeadline(Date.now() + 5_000, async () => {
        await connection.workflowService.getSystemInfo({});
        await connection.workflowService.describeNamespace({ namespace });
      });
      await reconcileSearchAttributes(connection, namespace, searchAttributes);
    }),
  );

  // 3. The Web UI answers.
  await pollUntil(() => httpOk(uiUrl));
}
