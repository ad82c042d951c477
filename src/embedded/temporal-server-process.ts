/**
 * What both embedded Temporal servers (the dev server and the server on PostgreSQL) share: the
 * options they both take, the handle they both return, and how they wait until ready.
 *
 * Why a module of its own: the stack, the tests and the fault suite drive either server through
 * one handle (restart on the same ports and store, kill, stop), and both fail a start the same
 * way — fast with the log of a process that died, or at a deadline with the last error seen.
 */
import { Connection } from '@temporalio/client';
import type { EmbeddedStackError } from './errors';
import type { ManagedProcess, ProcessExit, RunningServerProcess } from './managed-process';
import { SearchAttributeTypeConflictError } from './search-attributes';

/** Options both servers take. */
export interface TemporalServerOptions {
  /**
   * Interface every port binds to.
   * @default '127.0.0.1'
   */
  readonly ip?: string;
  /**
   * Frontend gRPC port.
   * @default a free port
   */
  readonly port?: number;
  /**
   * Namespace created at start and checked for readiness.
   * @default 'default'
   */
  readonly namespace?: string;
  /**
   * Custom search attributes to register, name → type name (`Keyword`, `Int`, ...; case-insensitive).
   * @default {}
   */
  readonly searchAttributes?: Readonly<Record<string, string>>;
  /**
   * Extra dynamic config, key → JSON-serialisable value.
   * @default {}
   */
  readonly dynamicConfig?: Readonly<Record<string, unknown>>;
  /**
   * Server log level.
   * @default 'warn'
   */
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /**
   * How long to wait for the server to become ready.
   * @default 60_000 (dev server), 90_000 (server on PostgreSQL)
   */
  readonly readyTimeoutMs?: number;
  /**
   * How long `stop()` waits after SIGTERM before SIGKILL.
   * @default 10_000
   */
  readonly stopGraceMs?: number;
  /**
   * Start attempts when auto-picked ports turn out to be taken.
   * @default 3
   */
  readonly startAttempts?: number;
}

/** A running embedded Temporal server, whichever it is. */
export interface TemporalServerProcess extends RunningServerProcess {
  /** gRPC `host:port` for `Connection.connect({ address })` and workers. */
  readonly address: string;
  /** The namespace created and checked at start. */
  readonly namespace: string;
  /** Directory holding the server's data or config, and `temporal.log`. */
  readonly dataDir: string;
  /** Sends a signal right away, synchronously (for crash tests and exit handlers). */
  kill(signal?: NodeJS.Signals): boolean;
  /**
   * Stops the server (if running) and starts it again on the same ports and the same store, so
   * clients and workers reconnect to the same address and find every workflow where it was.
   */
  restart(): Promise<void>;
}

/**
 * What to show of a server that exited: from Go's `panic:` line on when it panicked, else the last
 * lines. A panic's stack trace (40-odd lines through fx and dig) pushes its cause — often a port
 * taken by another process — out of a plain tail, and then a retry on fresh ports never happens.
 */
export async function exitLogExcerpt(child: ManagedProcess): Promise<string> {
  const lines = (await child.logTail(1_000)).split('\n');
  const panicAt = lines.findIndex((line) => line.startsWith('panic:'));
  return (panicAt >= 0 ? lines.slice(Math.max(0, panicAt - 5), panicAt + 35) : lines.slice(-40)).join('\n');
}

/** How a server's start fails: its own error types for "died" and "not ready in time". */
export interface ReadinessFailures {
  exited(exit: ProcessExit, logExcerpt: string): EmbeddedStackError;
  timedOut(timeoutMs: number, logTail: string, lastError: unknown): EmbeddedStackError;
}

/**
 * Returns `pollUntil(attempt)`: runs `attempt` until it returns true, failing fast when the process
 * exits and at the deadline (`timeoutMs` from now, shared by every call). A search attribute type
 * conflict fails at once: retrying cannot help.
 */
export function readinessPoller(
  child: ManagedProcess,
  timeoutMs: number,
  failures: ReadinessFailures,
): (attempt: () => Promise<boolean>) => Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let processExit: ProcessExit | undefined;
  void child.exited.then((exit) => (processExit = exit));
  const failIfExited = async (): Promise<void> => {
    if (processExit) throw failures.exited(processExit, await exitLogExcerpt(child));
  };
  return async (attempt) => {
    let lastError: unknown = new Error('not checked yet');
    for (;;) {
      await failIfExited();
      try {
        if (await attempt()) return;
      } catch (error) {
        if (error instanceof SearchAttributeTypeConflictError) throw error;
        lastError = error;
      }
      await failIfExited();
      if (Date.now() > deadline) throw failures.timedOut(timeoutMs, await child.logTail(), lastError);
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 250)), child.exited]);
    }
  };
}

/** GETs `url`; true on a 2xx answer, throws otherwise (a poll attempt). */
export async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`GET ${url} answered HTTP ${response.status}`);
  return true;
}

/**
 * One gRPC poll attempt: a fresh lazy connection to `address`, `use` run on it, the connection
 * closed whatever happens; true when `use` resolved (a poll attempt).
 */
export async function grpcOk(address: string, use: (connection: Connection) => Promise<void>): Promise<boolean> {
  const connection = Connection.lazy({ address, connectTimeout: 2_000 });
  try {
    await connection.ensureConnected();
    await use(connection);
    return true;
  } finally {
    await connection.close().catch(() => undefined);
  }
}
