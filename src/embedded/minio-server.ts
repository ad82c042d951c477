/**
 * Runs a real MinIO server (single drive) as a child process: the S3-compatible storage the
 * uploads go to in tests, demos and CI.
 *
 * Why it is built this way:
 * - A single-drive MinIO speaks the same S3 API (multipart uploads, checksums, conditional
 *   writes) as the real thing, which a mock could not promise.
 * - Ports are picked free on 127.0.0.1 and fixed for the lifetime of the handle, so `restart()`
 *   (used by fault-injection tests: "storage goes away mid-upload, comes back") brings the same
 *   endpoint back with the same data directory and credentials.
 * - Readiness is `GET /minio/health/ready` racing the process exit, so a crash fails fast with
 *   the log tail instead of a timeout.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ensureServerBinary, type EnsureServerBinaryOptions } from './binaries';
import { EmbeddedStackError } from './errors';
import { arePortsFree, findFreePorts } from './free-port';
import { waitForHttpReady, type HttpReadyErrors } from './http-ready';
import { ManagedProcess, type ProcessExit } from './managed-process';
import type { EmbeddedS3Store } from './s3-store';

/** Default MinIO root user (the S3 access key id). */
export const DEFAULT_MINIO_ROOT_USER = 'minioadmin';
/** Default MinIO root password (the S3 secret access key; MinIO needs at least 8 characters). */
export const DEFAULT_MINIO_ROOT_PASSWORD = 'minioadmin-secret';
/** The region MinIO reports unless configured otherwise. */
export const MINIO_REGION = 'us-east-1';

/** Options of {@link startMinioServer}. */
export interface MinioServerOptions {
  /** Directory for the object data (`<dataDir>/minio`) and the log (`<dataDir>/minio.log`). */
  readonly dataDir: string;
  /**
   * The `minio` executable.
   * @default the result of `ensureServerBinary('minio', binary)`
   */
  readonly binaryPath?: string;
  /**
   * Options for finding/building the binary when `binaryPath` is not given.
   * @default {}
   */
  readonly binary?: EnsureServerBinaryOptions;
  /**
   * Interface both ports bind to.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * S3 API port.
   * @default a free port
   */
  readonly port?: number;
  /**
   * Web console port.
   * @default a free port
   */
  readonly consolePort?: number;
  /**
   * Root user, used as S3 access key id.
   * @default DEFAULT_MINIO_ROOT_USER ('minioadmin')
   */
  readonly rootUser?: string;
  /**
   * Root password, used as S3 secret access key (at least 8 characters).
   * @default DEFAULT_MINIO_ROOT_PASSWORD ('minioadmin-secret')
   */
  readonly rootPassword?: string;
  /**
   * Extra environment for the server (e.g. `MINIO_API_REQUESTS_MAX`); merged over process.env.
   * @default {}
   */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * How long to wait for `/minio/health/ready`.
   * @default 60_000
   */
  readonly readyTimeoutMs?: number;
  /**
   * How long `stop()` waits after SIGTERM before SIGKILL.
   * @default 10_000
   */
  readonly stopGraceMs?: number;
}

/**
 * A running embedded MinIO server: `endpoint` is e.g. `http://127.0.0.1:40123` (use with
 * `forcePathStyle: true`), the credentials are the root user's, and `dataDir` holds `minio/`
 * (data), `minio-certs/` (empty: plain HTTP) and `minio.log`.
 */
export interface MinioServer extends EmbeddedS3Store {
  readonly kind: 'minio';
  /** Web console URL. */
  readonly consoleUrl: string;
}

/** The MinIO process exited before it became ready. */
export class MinioServerExitedError extends EmbeddedStackError {
  constructor(
    readonly exit: ProcessExit,
    readonly logTail: string,
  ) {
    super(
      `minio server exited before becoming ready (code ${String(exit.code)}, signal ${String(exit.signal)}). ` + `Log tail:\n${logTail}`,
    );
  }
}

/** MinIO did not report ready within `readyTimeoutMs`. */
export class MinioServerTimeoutError extends EmbeddedStackError {
  constructor(
    readonly timeoutMs: number,
    readonly logTail: string,
    cause: unknown,
  ) {
    super(
      `minio server was not ready after ${timeoutMs} ms ` +
        `(last error: ${cause instanceof Error ? cause.message : String(cause)}). Log tail:\n${logTail}`,
      { cause },
    );
  }
}

/** The root password is too short for MinIO. */
export class InvalidMinioCredentialsError extends EmbeddedStackError {
  constructor() {
    super('MinIO needs a root user of at least 3 and a root password of at least 8 characters');
  }
}

/**
 * Starts `minio server <dataDir>/minio` on free local ports and waits until it is ready.
 *
 * @throws {@link InvalidMinioCredentialsError} before spawning, for unusable credentials
 * @throws {@link MinioServerExitedError} if the process dies during start-up
 * @throws {@link MinioServerTimeoutError} if it is not ready in time (the process is killed)
 */
export async function startMinioServer(options: MinioServerOptions): Promise<MinioServer> {
  const accessKeyId = options.rootUser ?? DEFAULT_MINIO_ROOT_USER;
  const secretAccessKey = options.rootPassword ?? DEFAULT_MINIO_ROOT_PASSWORD;
  if (accessKeyId.length < 3 || secretAccessKey.length < 8) throw new InvalidMinioCredentialsError();

  const binary = options.binaryPath ?? (await ensureServerBinary('minio', options.binary));
  const dataDir = path.resolve(options.dataDir);
  const objectDir = path.join(dataDir, 'minio');
  await fsp.mkdir(objectDir, { recursive: true });
  const host = options.host ?? '127.0.0.1';
  const logFile = path.join(dataDir, 'minio.log');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    MINIO_ROOT_USER: accessKeyId,
    MINIO_ROOT_PASSWORD: secretAccessKey,
    MINIO_UPDATE: 'off',
    ...options.env,
  };

  const launch = async (port: number, consolePort: number): Promise<ManagedProcess> => {
    const args = [
      'server',
      objectDir,
      '--address',
      `${host}:${port}`,
      '--console-address',
      `${host}:${consolePort}`,
      // Keep everything inside dataDir (the default is ~/.minio/certs).
      '--certs-dir',
      path.join(dataDir, 'minio-certs'),
    ];
    const child = await ManagedProcess.start({ command: binary, args, env, logFile });
    try {
      await waitForHttpReady(child, `http://${host}:${port}/minio/health/ready`, options.readyTimeoutMs ?? 60_000, MINIO_READY_ERRORS);
    } catch (error) {
      await child.stop({ graceMs: 2_000 });
      throw error;
    }
    return child;
  };

  // Auto-picked ports can be taken by someone else before MinIO binds them: retry with new ones.
  const autoPorts = options.port === undefined || options.consolePort === undefined;
  let port = 0;
  let consolePort = 0;
  let current: ManagedProcess | undefined;
  for (let attempt = 1; !current; attempt++) {
    const [freeApi, freeConsole] = await findFreePorts(2, host);
    port = options.port ?? freeApi ?? 0;
    consolePort = options.consolePort ?? freeConsole ?? 0;
    try {
      current = await launch(port, consolePort);
    } catch (error) {
      const portTaken = error instanceof MinioServerExitedError && /already in use/i.test(error.logTail);
      const explicitPorts = [options.port, options.consolePort].filter((p): p is number => p !== undefined);
      // Fresh ports only help if the taken one was ours to choose.
      if (!(portTaken && autoPorts && attempt < 3 && (await arePortsFree(explicitPorts, host)))) throw error;
    }
  }
  let running: ManagedProcess = current;
  const endpoint = `http://${host}:${port}`;
  const stopCurrent = async (): Promise<void> => {
    await running.stop({ graceMs: options.stopGraceMs ?? 10_000 });
  };
  return {
    kind: 'minio',
    endpoint,
    region: MINIO_REGION,
    accessKeyId,
    secretAccessKey,
    consoleUrl: `http://${host}:${consolePort}`,
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
      running = await launch(port, consolePort);
    },
  };
}

const MINIO_READY_ERRORS: HttpReadyErrors = {
  exited: (exit, logTail) => new MinioServerExitedError(exit, logTail),
  timedOut: (timeoutMs, logTail, lastError) => new MinioServerTimeoutError(timeoutMs, logTail, lastError),
};
