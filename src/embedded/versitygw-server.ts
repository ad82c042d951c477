/**
 * Runs the Versity S3 gateway (versitygw) with its posix backend as a child process: the second
 * S3 implementation the tests run against (`UPLOAD_SAGA_TEST_STORE=versitygw`), so that what the
 * saga relies on is checked against two independent servers, not one server's reading of S3.
 *
 * Why it is built this way:
 * - The handle is an {@link EmbeddedS3Store}, the same shape as MinIO's, so the stack, the tests
 *   and the CLI use either store without knowing which one runs.
 * - The posix backend keeps objects as plain files under `<dataDir>/versitygw` (metadata in
 *   extended attributes), so no other service is needed; it refuses to start on a file system
 *   without user xattrs, and says so in its log.
 * - Credentials reach versitygw through its environment (`ROOT_ACCESS_KEY_ID`,
 *   `ROOT_SECRET_ACCESS_KEY`), never its command line, so they do not show in `ps`.
 * - Ports are picked free and kept for the life of the handle, so `restart()` brings the same
 *   endpoint back over the same data; readiness is its health route answering 200, racing the
 *   process exit so that a crash fails fast with the log tail.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ensureServerBinary, type EnsureServerBinaryOptions } from './binaries';
import { EmbeddedStackError } from './errors';
import { findFreePort } from './free-port';
import { waitForHttpReady, type HttpReadyErrors } from './http-ready';
import { ManagedProcess, type ProcessExit } from './managed-process';
import type { EmbeddedS3Store } from './s3-store';

/** Default root access key of the embedded versitygw. */
export const DEFAULT_VERSITYGW_ACCESS_KEY = 'versitygw-root';
/** Default root secret key of the embedded versitygw. */
export const DEFAULT_VERSITYGW_SECRET_KEY = 'versitygw-root-secret';
/** The region versitygw signs for unless configured otherwise. */
export const VERSITYGW_REGION = 'us-east-1';
/** The path of versitygw's health route (`--health`), which answers 200 once it serves requests. */
const HEALTH_PATH = '/health';

/** Options of {@link startVersitygwServer}. */
export interface VersitygwServerOptions {
  /** Directory for the objects (`<dataDir>/versitygw`) and the log (`<dataDir>/versitygw.log`). */
  readonly dataDir: string;
  /**
   * The `versitygw` executable.
   * @default the result of `ensureServerBinary('versitygw', binary)`
   */
  readonly binaryPath?: string;
  /**
   * Options for finding/building the binary when `binaryPath` is not given.
   * @default {}
   */
  readonly binary?: EnsureServerBinaryOptions;
  /**
   * Interface the S3 port binds to.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * S3 API port.
   * @default a free port
   */
  readonly port?: number;
  /**
   * Root access key (the S3 access key id).
   * @default DEFAULT_VERSITYGW_ACCESS_KEY
   */
  readonly accessKeyId?: string;
  /**
   * Root secret key (the S3 secret access key).
   * @default DEFAULT_VERSITYGW_SECRET_KEY
   */
  readonly secretAccessKey?: string;
  /**
   * How long to wait for the health route.
   * @default 60_000
   */
  readonly readyTimeoutMs?: number;
  /**
   * How long `stop()` waits after SIGTERM before SIGKILL.
   * @default 10_000
   */
  readonly stopGraceMs?: number;
}

/** The versitygw process exited before it became ready. */
export class VersitygwServerExitedError extends EmbeddedStackError {
  constructor(
    readonly exit: ProcessExit,
    readonly logTail: string,
  ) {
    super(`versitygw exited before becoming ready (code ${String(exit.code)}, signal ${String(exit.signal)}). Log tail:\n${logTail}`);
  }
}

/** versitygw did not report ready within `readyTimeoutMs`. */
export class VersitygwServerTimeoutError extends EmbeddedStackError {
  constructor(
    readonly timeoutMs: number,
    readonly logTail: string,
    cause: unknown,
  ) {
    super(
      `versitygw was not ready after ${timeoutMs} ms (last error: ${cause instanceof Error ? cause.message : String(cause)}). Log tail:\n${logTail}`,
      { cause },
    );
  }
}

/**
 * Starts `versitygw posix <dataDir>/versitygw` on a free local port and waits until it is ready.
 *
 * @throws {@link VersitygwServerExitedError} if the process dies during start-up
 * @throws {@link VersitygwServerTimeoutError} if it is not ready in time (the process is killed)
 */
export async function startVersitygwServer(options: VersitygwServerOptions): Promise<EmbeddedS3Store> {
  const accessKeyId = options.accessKeyId ?? DEFAULT_VERSITYGW_ACCESS_KEY;
  const secretAccessKey = options.secretAccessKey ?? DEFAULT_VERSITYGW_SECRET_KEY;
  const binary = options.binaryPath ?? (await ensureServerBinary('versitygw', options.binary));
  const dataDir = path.resolve(options.dataDir);
  const objectDir = path.join(dataDir, 'versitygw');
  await fsp.mkdir(objectDir, { recursive: true });
  const host = options.host ?? '127.0.0.1';
  const logFile = path.join(dataDir, 'versitygw.log');
  const env: NodeJS.ProcessEnv = { ...process.env, ROOT_ACCESS_KEY_ID: accessKeyId, ROOT_SECRET_ACCESS_KEY: secretAccessKey };

  const launch = async (port: number): Promise<ManagedProcess> => {
    const args = ['--port', `${host}:${port}`, '--region', VERSITYGW_REGION, '--health', HEALTH_PATH, 'posix', objectDir];
    const child = await ManagedProcess.start({ command: binary, args, env, logFile });
    try {
      await waitForHttpReady(child, `http://${host}:${port}${HEALTH_PATH}`, options.readyTimeoutMs ?? 60_000, VERSITYGW_READY_ERRORS);
    } catch (error) {
      await child.stop({ graceMs: 2_000 });
      throw error;
    }
    return child;
  };

  // An auto-picked port can be taken by someone else before versitygw binds it: retry with a new one.
  let port = 0;
  let current: ManagedProcess | undefined;
  for (let attempt = 1; !current; attempt++) {
    port = options.port ?? (await findFreePort(host));
    try {
      current = await launch(port);
    } catch (error) {
      const portTaken = error instanceof VersitygwServerExitedError && /address already in use/i.test(error.logTail);
      if (!(portTaken && options.port === undefined && attempt < 3)) throw error;
    }
  }
  let running: ManagedProcess = current;
  const stopCurrent = async (): Promise<void> => {
    await running.stop({ graceMs: options.stopGraceMs ?? 10_000 });
  };
  return {
    kind: 'versitygw',
    endpoint: `http://${host}:${port}`,
    region: VERSITYGW_REGION,
    accessKeyId,
    secretAccessKey,
    consoleUrl: undefined,
    dataDir,
    logFile,
    get pid() {
      return running.pid;
    },
    get exited() {
      return running.exited;
    },
    stop: stopCurrent,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => running.kill(signal),
    restart: async () => {
      await stopCurrent();
      running = await launch(port);
    },
  };
}

const VERSITYGW_READY_ERRORS: HttpReadyErrors = {
  exited: (exit, logTail) => new VersitygwServerExitedError(exit, logTail),
  timedOut: (timeoutMs, logTail, lastError) => new VersitygwServerTimeoutError(timeoutMs, logTail, lastError),
};
