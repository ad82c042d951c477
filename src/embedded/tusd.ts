/**
 * Runs tusd, the tus protocol's reference server, as a child process: the gateway's conformance
 * test (test/gateway/tus-conformance.test.ts) sends the same raw requests to both and compares
 * the answers.
 *
 * Why it is built this way:
 * - The binary comes from the same place as the other servers (`ensureServerBinary`: env var →
 *   PATH → cache → `go install`), so a fresh machine needs nothing but Go.
 * - With `s3` given, tusd uses its S3 store against the caller's S3 endpoint (our MinIO): the
 *   same storage the gateway writes to, so differences in answers are protocol differences, not
 *   storage ones. Without it, tusd's file store under `dataDir` (still a real tusd).
 * - Flags make it comparable with the gateway: base path `/files/`, the same maximum size (so
 *   OPTIONS announces `Tus-Max-Size` on both), no download endpoint (the gateway has none), no
 *   metrics or greeting routes.
 * - S3 credentials reach tusd only through its environment (the AWS SDK's default chain), never
 *   its command line, so they do not show in `ps`; the child gets a minimal environment rather
 *   than ours, so nothing else leaks into it.
 * - A free port is picked and tusd is retried on "address already in use", like the other
 *   servers; readiness is an `OPTIONS /files/` that answers 200.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ensureServerBinary, type EnsureServerBinaryOptions } from './binaries';
import { EmbeddedStackError } from './errors';
import { findFreePort } from './free-port';
import { ManagedProcess, type ProcessExit, type RunningServerProcess } from './managed-process';

/** Where tusd's S3 store keeps uploads. */
export interface TusdS3StoreOptions {
  /** S3 endpoint URL, e.g. MinIO's `http://127.0.0.1:9000` (path-style addressing is implied). */
  readonly endpoint: string;
  /** S3 region (`AWS_REGION` of tusd). */
  readonly region: string;
  /** Access key (`AWS_ACCESS_KEY_ID` of tusd; never on its command line). */
  readonly accessKeyId: string;
  /** Secret key (`AWS_SECRET_ACCESS_KEY` of tusd; never on its command line). */
  readonly secretAccessKey: string;
  /** An existing bucket. */
  readonly bucket: string;
  /**
   * Prefix of every object tusd writes (keeps its objects apart from others in the bucket).
   * @default 'tusd/'
   */
  readonly objectPrefix?: string;
}

/** Options of {@link startTusdServer}. */
export interface TusdServerOptions {
  /** Directory for the log file (`<dataDir>/tusd.log`) and, without `s3`, the file store. */
  readonly dataDir: string;
  /**
   * Use tusd's S3 store with these settings; without it, the file store under `<dataDir>/uploads`.
   * @default undefined (file store)
   */
  readonly s3?: TusdS3StoreOptions;
  /**
   * Maximum size of one upload in bytes, announced as `Tus-Max-Size`; 0 for no limit.
   * @default 0
   */
  readonly maxSize?: number;
  /**
   * Also serve the IETF resumable-upload draft (`-enable-experimental-protocol`: interop versions
   * 3 to 6 beside tus 1.0), for test/gateway/resumable-upload.test.ts.
   * @default false
   */
  readonly experimentalProtocol?: boolean;
  /**
   * The `tusd` executable.
   * @default the result of `ensureServerBinary('tusd', binary)`
   */
  readonly binaryPath?: string;
  /**
   * Options for finding/building the binary when `binaryPath` is not given.
   * @default {}
   */
  readonly binary?: EnsureServerBinaryOptions;
  /**
   * Interface tusd binds to.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * Port.
   * @default a free port
   */
  readonly port?: number;
  /**
   * How long to wait for tusd to answer.
   * @default 30_000
   */
  readonly readyTimeoutMs?: number;
  /**
   * How long `stop()` waits after SIGTERM before SIGKILL.
   * @default 5_000
   */
  readonly stopGraceMs?: number;
}

/** A running tusd. */
export interface TusdServer extends RunningServerProcess {
  /** Base URL of the server, e.g. `http://127.0.0.1:40123`. */
  readonly url: string;
  /** The tus endpoint (creation URL), `<url>/files/`. */
  readonly endpoint: string;
}

/** tusd exited before it answered. */
export class TusdServerExitedError extends EmbeddedStackError {
  constructor(
    readonly exit: ProcessExit,
    readonly logTail: string,
  ) {
    super(`tusd exited before becoming ready (code ${String(exit.code)}, signal ${String(exit.signal)}). Log tail:\n${logTail}`);
  }
}

/** tusd did not answer within `readyTimeoutMs`. */
export class TusdServerTimeoutError extends EmbeddedStackError {
  constructor(
    readonly timeoutMs: number,
    readonly logTail: string,
  ) {
    super(`tusd did not answer OPTIONS /files/ within ${timeoutMs} ms. Log tail:\n${logTail}`);
  }
}

/** The base path tusd serves uploads under (the gateway's is `/files`). */
const BASE_PATH = '/files/';

/**
 * Starts tusd on a free local port and waits until it answers.
 *
 * @throws {@link TusdServerExitedError} if the process dies during start-up
 * @throws {@link TusdServerTimeoutError} if it does not answer in time (the process is killed)
 */
export async function startTusdServer(options: TusdServerOptions): Promise<TusdServer> {
  const binary = options.binaryPath ?? (await ensureServerBinary('tusd', options.binary));
  const host = options.host ?? '127.0.0.1';
  const dataDir = path.resolve(options.dataDir);
  await fsp.mkdir(dataDir, { recursive: true });
  const logFile = path.join(dataDir, 'tusd.log');

  const storeArgs = options.s3
    ? ['-s3-bucket', options.s3.bucket, '-s3-endpoint', options.s3.endpoint, '-s3-object-prefix', options.s3.objectPrefix ?? 'tusd/']
    : ['-upload-dir', path.join(dataDir, 'uploads')];
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dataDir, // no shared AWS config files from the real home
    ...(options.s3
      ? {
          AWS_ACCESS_KEY_ID: options.s3.accessKeyId,
          AWS_SECRET_ACCESS_KEY: options.s3.secretAccessKey,
          AWS_REGION: options.s3.region,
          AWS_EC2_METADATA_DISABLED: 'true',
        }
      : {}),
  };

  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await findFreePort(host));
    const args = [
      '-host',
      host,
      '-port',
      String(port),
      '-base-path',
      BASE_PATH,
      '-max-size',
      String(options.maxSize ?? 0),
      '-disable-download',
      '-expose-metrics=false',
      '-show-greeting=false',
      ...(options.experimentalProtocol ? ['-enable-experimental-protocol'] : []),
      ...storeArgs,
    ];
    const child = await ManagedProcess.start({ command: binary, args, logFile, env });
    const url = `http://${host}:${port}`;
    try {
      await waitUntilReady(child, `${url}${BASE_PATH}`, options.readyTimeoutMs ?? 30_000);
    } catch (error) {
      await child.stop({ graceMs: 2_000 });
      const portTaken = error instanceof TusdServerExitedError && /address already in use/i.test(error.logTail);
      if (portTaken && options.port === undefined && attempt < 3) continue;
      throw error;
    }
    return {
      url,
      endpoint: `${url}${BASE_PATH}`,
      logFile,
      pid: child.pid,
      exited: child.exited,
      stop: async () => {
        await child.stop({ graceMs: options.stopGraceMs ?? 5_000 });
      },
    };
  }
}

async function waitUntilReady(child: ManagedProcess, endpoint: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exit = child.exit;
    if (exit) throw new TusdServerExitedError(exit, await child.logTail());
    try {
      const response = await fetch(endpoint, { method: 'OPTIONS', signal: AbortSignal.timeout(2_000) });
      if (response.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new TusdServerTimeoutError(timeoutMs, await child.logTail());
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 100)), child.exited]);
  }
}
