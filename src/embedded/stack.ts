/**
 * The embedded stack: one Temporal dev server and one MinIO, started together, torn down together.
 *
 * Why it is built this way:
 * - Tests, the demo and the `stack` CLI command all need "a real Temporal + a real S3" with no
 *   Docker; this wires the two server modules, the buckets and the cleanup in one call.
 * - Binaries are resolved first, one after the other, so a first-time build prints readable
 *   progress; then MinIO starts, then the dev server — one after the other, so that neither can
 *   take a port the other picked but had not bound yet. If either fails, the other is stopped
 *   and the temp dir removed before the error propagates.
 * - Both servers share one data directory: by default a fresh temp dir that `stop()` deletes,
 *   or a caller-provided directory that is never deleted (so state survives restarts).
 * - Process exit / SIGINT / SIGTERM handlers kill the children if the parent ends without
 *   `stop()`; on Linux the children also carry a parent-death signal (see managed-process.ts).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { UPLOAD_SEARCH_ATTRIBUTE_TYPES } from '../upload/search-attributes';
import { ensureServerBinary, type EnsureServerBinaryOptions } from './binaries';
import { EmbeddedStackError } from './errors';
import { installExitCleanup } from './exit-cleanup';
import { startMinioServer, type MinioServer, type MinioServerOptions } from './minio-server';
import { ensureBuckets } from './s3-buckets';
import { startTemporalDevServer, type TemporalDevServer, type TemporalDevServerOptions } from './temporal-dev-server';

/** Options of {@link startEmbeddedStack}. */
export interface EmbeddedStackOptions {
  /**
   * Directory for both servers' data and logs. A caller-provided directory is never deleted.
   * @default a fresh directory from fs.mkdtemp(os.tmpdir()/upload-saga-stack-)
   */
  readonly dataDir?: string;
  /**
   * Keep the generated temp directory on `stop()` (to inspect logs / data afterwards).
   * @default false
   */
  readonly keepDataDir?: boolean;
  /**
   * Buckets to create in MinIO (existing ones are left alone).
   * @default []
   */
  readonly buckets?: readonly string[];
  /**
   * Temporal namespace to create and check.
   * @default 'default'
   */
  readonly namespace?: string;
  /**
   * Custom search attributes to register, name → CLI type name.
   * @default UPLOAD_SEARCH_ATTRIBUTE_TYPES (the upload workflow's attributes)
   */
  readonly searchAttributes?: Readonly<Record<string, string>>;
  /**
   * Options for finding/building both binaries (cache dir, progress logger, ...).
   * @default {}
   */
  readonly binaries?: EnsureServerBinaryOptions;
  /**
   * Further Temporal options (ports, log level, timeouts, binary path, dynamic config).
   * @default {}
   */
  readonly temporal?: Omit<TemporalDevServerOptions, 'dataDir' | 'namespace' | 'searchAttributes' | 'binary'>;
  /**
   * Further MinIO options (ports, credentials, timeouts, binary path, env).
   * @default {}
   */
  readonly minio?: Omit<MinioServerOptions, 'dataDir' | 'binary'>;
  /**
   * Install process exit/SIGINT/SIGTERM/SIGHUP handlers that kill the servers if `stop()` is never called.
   * @default true
   */
  readonly handleProcessExit?: boolean;
}

/** A running embedded stack. */
export interface EmbeddedStack {
  /** The Temporal dev server (address, namespace, Web UI URL, ...). */
  readonly temporal: TemporalDevServer;
  /** The MinIO server (S3 endpoint, region, credentials, ...). */
  readonly s3: MinioServer;
  /** Directory holding both servers' data and logs. */
  readonly dataDir: string;
  /** Buckets that were ensured at start. */
  readonly buckets: readonly string[];
  /** Stops both servers (gracefully, in parallel) and removes a generated temp dir unless kept. Idempotent. */
  stop(): Promise<void>;
}

/** One or both servers failed to stop cleanly; the data dir cleanup still ran. */
export class EmbeddedStackStopError extends EmbeddedStackError {
  constructor(readonly errors: readonly unknown[]) {
    super(`stopping the embedded stack failed: ${errors.map((e) => (e instanceof Error ? e.message : String(e))).join('; ')}`, {
      cause: errors[0],
    });
  }
}

/**
 * Starts Temporal and MinIO on free local ports, creates the buckets and returns the handles.
 * Builds the server binaries first if needed (see `ensureServerBinary`).
 */
export async function startEmbeddedStack(options: EmbeddedStackOptions = {}): Promise<EmbeddedStack> {
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ? path.resolve(options.dataDir) : await fsp.mkdtemp(path.join(os.tmpdir(), 'upload-saga-stack-'));
  const removeDataDir = ownsDataDir && !options.keepDataDir;
  await fsp.mkdir(dataDir, { recursive: true });

  let temporal: TemporalDevServer | undefined;
  let s3: MinioServer | undefined;
  const uninstallExitCleanup =
    options.handleProcessExit === false
      ? () => undefined
      : installExitCleanup(() => {
          temporal?.kill('SIGKILL');
          s3?.kill('SIGKILL');
          if (removeDataDir) fs.rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
        });

  const cleanUp = async (): Promise<unknown[]> => {
    const results = await Promise.allSettled([temporal?.stop(), s3?.stop()]);
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (removeDataDir) {
      await fsp.rm(dataDir, { recursive: true, force: true, maxRetries: 3 }).catch((e: unknown) => errors.push(e));
    }
    uninstallExitCleanup();
    return errors;
  };

  try {
    const temporalBinary = options.temporal?.binaryPath ?? (await ensureServerBinary('temporal', options.binaries));
    const minioBinary = options.minio?.binaryPath ?? (await ensureServerBinary('minio', options.binaries));
    // One after the other, not in parallel: each server's free ports are picked only once the other
    // has bound its own. In parallel, the dev server's internal services (which pick their ports at
    // run time) once took the port chosen for MinIO before MinIO had bound it.
    const minio = await startMinioServer({ ...options.minio, binaryPath: minioBinary, dataDir });
    s3 = minio;
    const temporalServer = await startTemporalDevServer({
      ...options.temporal,
      binaryPath: temporalBinary,
      dataDir,
      namespace: options.namespace ?? 'default',
      searchAttributes: options.searchAttributes ?? UPLOAD_SEARCH_ATTRIBUTE_TYPES,
    });
    temporal = temporalServer;
    await ensureBuckets(minio, options.buckets ?? []);

    let stopping: Promise<void> | undefined;
    return {
      temporal: temporalServer,
      s3: minio,
      dataDir,
      buckets: [...(options.buckets ?? [])],
      stop: () =>
        (stopping ??= cleanUp().then((errors) => {
          if (errors.length > 0) throw new EmbeddedStackStopError(errors);
        })),
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}
