/**
 * The embedded stack: one Temporal server and one S3 store, started together, torn down together. The
 * Temporal server is the dev server (SQLite, with the Web UI) or, with `temporal: 'postgres'`, the
 * real server on PostgreSQL (src/embedded/temporal-postgres-server.ts); the store is MinIO or, with
 * `store: 'versitygw'`, versitygw on its posix backend (src/embedded/versitygw-server.ts).
 *
 * Why it is built this way:
 * - Tests, the demo and the `stack` CLI command all need "a real Temporal + a real S3" with no
 *   Docker; this wires the two server modules, the buckets and the cleanup in one call.
 * - Binaries are resolved first, one after the other, so a first-time build prints readable
 *   progress; then MinIO starts, then the dev server — one after the other, so that neither can
 *   take a port the other picked but had not bound yet. If either fails, the other is stopped
 *   and the temp dir removed before the error propagates.
 * - Both servers share one data directory: by default a fresh temp dir that `stop()` deletes,
 *   or a caller-provided directory that is never deleted (so state survives restarts). The
 *   PostgreSQL databases follow the data dir: dropped with it, kept with it.
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
import { startMinioServer, type MinioServerOptions } from './minio-server';
import { ensureBuckets } from './s3-buckets';
import type { EmbeddedS3Store, S3StoreKind } from './s3-store';
import { startTemporalDevServer, type TemporalDevServerOptions } from './temporal-dev-server';
import {
  startTemporalPostgresServer,
  type TemporalPostgresDatabases,
  type TemporalPostgresServerOptions,
} from './temporal-postgres-server';
import type { TemporalServerProcess } from './temporal-server-process';
import { startVersitygwServer, type VersitygwServerOptions } from './versitygw-server';

/** Which Temporal server a stack runs: the dev server (SQLite) or the real server on PostgreSQL. */
export type EmbeddedTemporalKind = 'dev-server' | 'postgres';

/** What a stack's Temporal server offers, whichever {@link EmbeddedTemporalKind} it is. */
export interface EmbeddedTemporal extends TemporalServerProcess {
  /** Which server this is. */
  readonly kind: EmbeddedTemporalKind;
  /** Base URL of the Web UI, without trailing slash; the server on PostgreSQL has none. */
  readonly uiUrl: string | undefined;
  /** The databases of the server on PostgreSQL; none for the dev server. */
  readonly databases: TemporalPostgresDatabases | undefined;
}

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
   * With `temporal: 'postgres'`: keep the databases on `stop()`.
   * @default true when the data dir is kept (given by the caller, or `keepDataDir`), else false
   */
  readonly keepDatabases?: boolean;
  /**
   * Buckets to create in the S3 store (existing ones are left alone).
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
   * Which Temporal server to run.
   * @default 'dev-server'
   */
  readonly temporal?: EmbeddedTemporalKind;
  /**
   * Further dev server options (ports, log level, timeouts, binary path, dynamic config, UI codec endpoint).
   * @default {}
   */
  readonly devServer?: Omit<TemporalDevServerOptions, 'dataDir' | 'namespace' | 'searchAttributes' | 'binary'>;
  /**
   * Further options of the server on PostgreSQL (connection, port, log level, timeouts, dynamic config).
   * @default {} (PostgreSQL at 127.0.0.1:5432 as user postgres)
   */
  readonly postgres?: Omit<TemporalPostgresServerOptions, 'dataDir' | 'namespace' | 'searchAttributes' | 'binary' | 'keepDatabases'>;
  /**
   * Which S3 store to run.
   * @default 'minio'
   */
  readonly store?: S3StoreKind;
  /**
   * Further MinIO options (ports, credentials, timeouts, binary path, env), with `store: 'minio'`.
   * @default {}
   */
  readonly minio?: Omit<MinioServerOptions, 'dataDir' | 'binary'>;
  /**
   * Further versitygw options (port, credentials, timeouts, binary path), with `store: 'versitygw'`.
   * @default {}
   */
  readonly versitygw?: Omit<VersitygwServerOptions, 'dataDir' | 'binary'>;
  /**
   * Install process exit/SIGINT/SIGTERM/SIGHUP handlers that kill the servers if `stop()` is never called.
   * @default true
   */
  readonly handleProcessExit?: boolean;
}

/** A running embedded stack. */
export interface EmbeddedStack {
  /** The Temporal server (address, namespace, Web UI URL if any, ...). */
  readonly temporal: EmbeddedTemporal;
  /** The S3 store (endpoint, region, credentials, ...). */
  readonly s3: EmbeddedS3Store;
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

  let temporal: EmbeddedTemporal | undefined;
  let s3: EmbeddedS3Store | undefined;
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
    const startTemporal = await temporalStarter(options, dataDir, options.keepDatabases ?? !removeDataDir);
    const startStore = await storeStarter(options, dataDir);
    // One after the other, not in parallel: each server's free ports are picked only once the other
    // has bound its own. In parallel, the dev server's internal services (which pick their ports at
    // run time) once took the port chosen for MinIO before MinIO had bound it.
    const store = await startStore();
    s3 = store;
    const temporalServer = await startTemporal();
    temporal = temporalServer;
    await ensureBuckets(store, options.buckets ?? []);

    let stopping: Promise<void> | undefined;
    return {
      temporal: temporalServer,
      s3: store,
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

/**
 * Resolves the chosen S3 store's binary (building it if needed, before anything starts) and returns
 * the function that starts it.
 */
async function storeStarter(options: EmbeddedStackOptions, dataDir: string): Promise<() => Promise<EmbeddedS3Store>> {
  if ((options.store ?? 'minio') === 'versitygw') {
    const binaryPath = options.versitygw?.binaryPath ?? (await ensureServerBinary('versitygw', options.binaries));
    return () => startVersitygwServer({ ...options.versitygw, binaryPath, dataDir });
  }
  const binaryPath = options.minio?.binaryPath ?? (await ensureServerBinary('minio', options.binaries));
  return () => startMinioServer({ ...options.minio, binaryPath, dataDir });
}

/**
 * Resolves the chosen Temporal server's binaries (building them if needed, before anything starts)
 * and returns the function that starts it.
 */
async function temporalStarter(
  options: EmbeddedStackOptions,
  dataDir: string,
  keepDatabases: boolean,
): Promise<() => Promise<EmbeddedTemporal>> {
  const namespace = options.namespace ?? 'default';
  const searchAttributes = options.searchAttributes ?? UPLOAD_SEARCH_ATTRIBUTE_TYPES;
  if ((options.temporal ?? 'dev-server') === 'postgres') {
    const serverBinaryPath = options.postgres?.serverBinaryPath ?? (await ensureServerBinary('temporal-server', options.binaries));
    const sqlToolBinaryPath = options.postgres?.sqlToolBinaryPath ?? (await ensureServerBinary('temporal-sql-tool', options.binaries));
    return async () => {
      const server = await startTemporalPostgresServer({
        ...options.postgres,
        serverBinaryPath,
        sqlToolBinaryPath,
        dataDir: path.join(dataDir, 'temporal-postgres'),
        keepDatabases,
        namespace,
        searchAttributes,
      });
      return Object.assign(server, { kind: 'postgres' as const, uiUrl: undefined });
    };
  }
  const binaryPath = options.devServer?.binaryPath ?? (await ensureServerBinary('temporal', options.binaries));
  return async () => {
    const server = await startTemporalDevServer({ ...options.devServer, binaryPath, dataDir, namespace, searchAttributes });
    return Object.assign(server, { kind: 'dev-server' as const, databases: undefined });
  };
}
