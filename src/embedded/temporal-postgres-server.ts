/**
 * Runs the real Temporal server (`temporal-server start`, v1.29.1) on PostgreSQL as a child process:
 * frontend, history, matching and worker services in one process, the schema of both stores set
 * up with `temporal-sql-tool`, the namespace and the project's search attributes registered.
 *
 * Why it is built this way:
 * - It is what production runs (a SQL-backed cluster), where the dev server is SQLite in one
 *   process: the same server version, so a difference found here is the store's, not the code's.
 * - Each server gets databases of its own (`upload_saga_<random>` and `…_visibility`), so stacks
 *   on one PostgreSQL never share state; their names are kept in `temporal-postgres.json` in the
 *   data dir, so a kept data dir finds its databases again. `stop()` drops them unless kept.
 * - The schema is set up from the SQL tool's embedded schemas (`--schema-name`) with the steps
 *   Temporal's own compose samples and docker-compose.yml run (`create-database`,
 *   `setup-schema -v 0.0`, `update-schema`); each is idempotent, so a restart runs them again.
 * - The server reads a generated config (JSON, which is YAML) and a dynamic config file from the
 *   data dir: every port picked free by us, bound to one interface, no pprof, no archival.
 *   If a picked port is taken before the server binds it, the start is retried with fresh ports.
 * - The real server creates no namespace: we register it over gRPC, wait until the frontend's
 *   namespace cache knows it, then add missing search attributes (SQL visibility maps them onto
 *   its predefined columns per namespace).
 * - `restart()` brings the server back on the same ports and databases, as the dev server's does.
 * - The database password (if any) reaches the SQL tool through its `SQL_PASSWORD` environment
 *   variable and the server through the config file (mode 0600), never through arguments.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { msToTs } from '@temporalio/common/lib/time';
import { ensureServerBinary, type EnsureServerBinaryOptions } from './binaries';
import { EmbeddedStackError } from './errors';
import { arePortsFree, findFreePorts } from './free-port';
import { ManagedProcess, type ProcessExit } from './managed-process';
import { normaliseSearchAttributes, reconcileSearchAttributes, type SearchAttributeTypeName } from './search-attributes';
import { grpcOk, httpOk, readinessPoller, type TemporalServerOptions, type TemporalServerProcess } from './temporal-server-process';

/** Where the PostgreSQL server is and whom to connect as (the user must be allowed to create databases). */
export interface PostgresConnection {
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** @default 5432 */
  readonly port?: number;
  /** @default 'postgres' */
  readonly user?: string;
  /** @default none (trust or peer authentication) */
  readonly password?: string;
}

/** Options of {@link startTemporalPostgresServer}. */
export interface TemporalPostgresServerOptions extends TemporalServerOptions {
  /** Directory for the generated config, the database names and `temporal.log`; created if missing. */
  readonly dataDir: string;
  /** @default 127.0.0.1:5432 as user postgres, no password */
  readonly postgres?: PostgresConnection;
  /**
   * Keep the databases on `stop()` (a kept data dir finds them again by name).
   * @default false
   */
  readonly keepDatabases?: boolean;
  /** The `temporal-server` executable. @default ensureServerBinary('temporal-server', binary) */
  readonly serverBinaryPath?: string;
  /** The `temporal-sql-tool` executable. @default ensureServerBinary('temporal-sql-tool', binary) */
  readonly sqlToolBinaryPath?: string;
  /** Options for finding/building the binaries. @default {} */
  readonly binary?: EnsureServerBinaryOptions;
}

/** The databases a server runs on. */
export interface TemporalPostgresDatabases {
  /** The default store (executions, history, task queues, namespaces). */
  readonly default: string;
  /** The visibility store (workflow lists and search attributes). */
  readonly visibility: string;
}

/** A running Temporal server on PostgreSQL. */
export interface TemporalPostgresServer extends TemporalServerProcess {
  /** The databases this server runs on. */
  readonly databases: TemporalPostgresDatabases;
}

/**
 * Dynamic config the server runs with (besides the caller's):
 * - `limit.maxIDLength` 255: workflow ids are `VARCHAR(255)` columns in the SQL visibility store;
 *   the server must refuse a longer id rather than fail writing it.
 * - `system.forceSearchAttributesCacheRefreshOnRead`: a search attribute added at start is usable
 *   at once instead of after the cache's refresh (a development setting, as in Temporal's samples).
 */
export const POSTGRES_DYNAMIC_CONFIG: Readonly<Record<string, unknown>> = {
  'limit.maxIDLength': 255,
  'system.forceSearchAttributesCacheRefreshOnRead': true,
};

/** The SQL tool's plugin and embedded schema names for PostgreSQL 12 and later. */
const SQL_PLUGIN = 'postgres12';
const SCHEMAS = { default: 'postgresql/v12/temporal', visibility: 'postgresql/v12/visibility' } as const;
/** File in the data dir that names the databases. */
const DATABASES_FILE = 'temporal-postgres.json';

/** `temporal-sql-tool` failed (PostgreSQL unreachable, no right to create databases, ...). */
export class TemporalSqlToolError extends EmbeddedStackError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly output: string,
  ) {
    super(`temporal-sql-tool ${command} failed (exit ${String(exitCode)}):\n${output}`);
  }
}

/** The server process exited before it became ready. */
export class TemporalPostgresServerExitedError extends EmbeddedStackError {
  constructor(
    readonly exit: ProcessExit,
    readonly logTail: string,
  ) {
    super(`temporal-server exited before becoming ready (code ${String(exit.code)}, signal ${String(exit.signal)}). Log tail:\n${logTail}`);
  }
}

/** The server did not serve the namespace within `readyTimeoutMs`. */
export class TemporalPostgresServerTimeoutError extends EmbeddedStackError {
  constructor(
    readonly timeoutMs: number,
    readonly logTail: string,
    cause: unknown,
  ) {
    super(
      `temporal-server was not ready after ${timeoutMs} ms (last error: ${cause instanceof Error ? cause.message : String(cause)}). ` +
        `Log tail:\n${logTail}`,
      { cause },
    );
  }
}

/**
 * Sets up (or updates) the databases, starts `temporal-server` and waits until it serves the
 * namespace with every search attribute registered.
 *
 * @throws {@link InvalidSearchAttributeError} before anything else, for a bad attribute
 * @throws {@link TemporalSqlToolError} if the schema cannot be set up
 * @throws {@link TemporalPostgresServerExitedError} if the process dies during start-up
 * @throws {@link TemporalPostgresServerTimeoutError} if it is not ready in time (the process is killed)
 */
export async function startTemporalPostgresServer(options: TemporalPostgresServerOptions): Promise<TemporalPostgresServer> {
  const searchAttributes = normaliseSearchAttributes(options.searchAttributes ?? {});
  const serverBinary = options.serverBinaryPath ?? (await ensureServerBinary('temporal-server', options.binary));
  const sqlTool = options.sqlToolBinaryPath ?? (await ensureServerBinary('temporal-sql-tool', options.binary));
  const dataDir = path.resolve(options.dataDir);
  await fsp.mkdir(dataDir, { recursive: true });
  const ip = options.ip ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  const postgres = { host: '127.0.0.1', port: 5432, user: 'postgres', ...options.postgres };
  const runSqlTool = (database: string, args: readonly string[]): Promise<void> => sqlToolRun(sqlTool, postgres, database, args);

  const databases = await setUpDatabases(dataDir, runSqlTool);
  const dropDatabases = async (): Promise<void> => {
    if (options.keepDatabases) return;
    for (const database of [databases.default, databases.visibility]) await runSqlTool(database, ['drop-database', '--force']);
    await fsp.rm(path.join(dataDir, DATABASES_FILE), { force: true });
  };

  const configDir = path.join(dataDir, 'temporal-config');
  const launch = async (ports: ServerPorts): Promise<ManagedProcess> => {
    await writeServerConfig({ configDir, ip, ports, postgres, databases, options });
    const child = await ManagedProcess.start({
      command: serverBinary,
      args: ['--root', configDir, '--config', '.', '--env', CONFIG_ENV, '--allow-no-auth', 'start'],
      logFile: path.join(dataDir, 'temporal.log'),
    });
    try {
      await waitUntilReady({ child, ip, ports, namespace, searchAttributes, timeoutMs: options.readyTimeoutMs ?? 90_000 });
    } catch (error) {
      await child.stop({ graceMs: 2_000 });
      throw error;
    }
    return child;
  };

  const attempts = options.port === undefined ? Math.max(1, options.startAttempts ?? 3) : 1;
  for (let attempt = 1; ; attempt++) {
    const ports = await pickPorts(ip, options.port);
    let child: ManagedProcess;
    try {
      child = await launch(ports);
    } catch (error) {
      const portTaken = error instanceof TemporalPostgresServerExitedError && /address already in use/i.test(error.logTail);
      if (portTaken && attempt < attempts && (await arePortsFree(options.port === undefined ? [] : [options.port], ip))) continue;
      await dropDatabases().catch(() => undefined);
      throw error;
    }

    let running = child;
    let stopping: Promise<void> | undefined;
    const stopProcess = (): Promise<void> => (stopping ??= running.stop({ graceMs: options.stopGraceMs ?? 10_000 }).then(() => undefined));
    let dropping: Promise<void> | undefined;
    return {
      address: `${ip}:${ports.frontend}`,
      namespace,
      dataDir,
      databases,
      logFile: child.logFile,
      get pid() {
        return running.pid;
      },
      get exited() {
        return running.exited;
      },
      stop: () => (dropping ??= stopProcess().then(dropDatabases)),
      kill: (signal: NodeJS.Signals = 'SIGTERM') => running.kill(signal),
      restart: async () => {
        await stopProcess();
        running = await launch(ports);
        stopping = undefined;
      },
    };
  }
}

/** The `--env` name, i.e. the generated config file is `<configDir>/upload-saga.yaml`. */
const CONFIG_ENV = 'upload-saga';

interface ServerPorts {
  readonly frontend: number;
  readonly frontendHttp: number;
  readonly frontendMembership: number;
  readonly history: number;
  readonly historyMembership: number;
  readonly matching: number;
  readonly matchingMembership: number;
  readonly worker: number;
  readonly workerMembership: number;
  readonly metrics: number;
}

async function pickPorts(ip: string, frontend: number | undefined): Promise<ServerPorts> {
  const free = await findFreePorts(6, ip);
  const at = (index: number): number => free[index] ?? 0;
  const [frontendMembership, historyMembership, matchingMembership, workerMembership] = await freeMembershipPorts(ip);
  return {
    frontend: frontend ?? at(0),
    frontendHttp: at(1),
    frontendMembership,
    history: at(2),
    historyMembership,
    matching: at(3),
    matchingMembership,
    worker: at(4),
    workerMembership,
    metrics: at(5),
  };
}

/**
 * Four free ports below 32768 for the services' membership (ringpop) listeners: the server records
 * them in the `cluster_membership` table's `smallint` column, so the ephemeral ports the kernel
 * hands out (32768 and up) are refused there. Random ones from 20000–32767, checked free.
 */
async function freeMembershipPorts(ip: string): Promise<[number, number, number, number]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = 20_000 + (randomBytes(2).readUInt16BE(0) % (32_767 - 20_000 - 40));
    const ports: [number, number, number, number] = [first, first + 10, first + 20, first + 30];
    if (await arePortsFree(ports, ip)) return ports;
  }
  throw new EmbeddedStackError('found no four free ports between 20000 and 32767 for Temporal membership');
}

/** Runs the SQL tool against one database; rejects with its output on failure. */
function sqlToolRun(
  sqlTool: string,
  postgres: Required<Omit<PostgresConnection, 'password'>> & Pick<PostgresConnection, 'password'>,
  database: string,
  args: readonly string[],
): Promise<void> {
  const fullArgs = ['--plugin', SQL_PLUGIN, '--endpoint', postgres.host, '--port', String(postgres.port), '--user', postgres.user];
  fullArgs.push('--database', database, ...args);
  const env = { ...process.env, SQL_PASSWORD: postgres.password ?? '' };
  return new Promise((resolve, reject) => {
    const child = spawn(sqlTool, fullArgs, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-8_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.once('error', reject);
    child.once('close', (code) => {
      // The tool logs failures but exits 0 with --quiet only; without it a failure is a non-zero exit.
      if (code === 0) resolve();
      else reject(new TemporalSqlToolError(`${args.join(' ')} (database ${database})`, code, output.trim()));
    });
  });
}

/**
 * Creates the two databases with their schema, or, when the data dir names existing ones, brings
 * their schema up to date: each step is idempotent (`create-database` skips an existing database,
 * `setup-schema -v 0.0` leaves a newer version alone, `update-schema` applies what is missing).
 */
async function setUpDatabases(
  dataDir: string,
  runSqlTool: (database: string, args: readonly string[]) => Promise<void>,
): Promise<TemporalPostgresDatabases> {
  const file = path.join(dataDir, DATABASES_FILE);
  const existing = await fsp
    .readFile(file, 'utf8')
    .then((text) => JSON.parse(text) as TemporalPostgresDatabases)
    .catch(() => undefined);
  const databases = existing ?? newDatabaseNames();
  if (!existing) await fsp.writeFile(file, `${JSON.stringify(databases, null, 2)}\n`);
  // The two stores are independent: set them up side by side.
  await Promise.all(
    (['default', 'visibility'] as const).map(async (store) => {
      const database = databases[store];
      await runSqlTool(database, ['create-database']);
      await runSqlTool(database, ['setup-schema', '--version', '0.0']);
      await runSqlTool(database, ['update-schema', '--schema-name', SCHEMAS[store]]);
    }),
  );
  return databases;
}

function newDatabaseNames(): TemporalPostgresDatabases {
  const base = `upload_saga_${randomBytes(6).toString('hex')}`;
  return { default: base, visibility: `${base}_visibility` };
}

async function writeServerConfig(input: {
  configDir: string;
  ip: string;
  ports: ServerPorts;
  postgres: Required<Omit<PostgresConnection, 'password'>> & Pick<PostgresConnection, 'password'>;
  databases: TemporalPostgresDatabases;
  options: TemporalPostgresServerOptions;
}): Promise<void> {
  const { configDir, ip, ports, postgres, databases, options } = input;
  await fsp.mkdir(configDir, { recursive: true });
  const dynamicConfigFile = path.join(configDir, 'dynamic-config.yaml');
  const dynamicConfig = { ...POSTGRES_DYNAMIC_CONFIG, ...options.dynamicConfig };
  await fsp.writeFile(
    dynamicConfigFile,
    JSON.stringify(Object.fromEntries(Object.entries(dynamicConfig).map(([key, value]) => [key, [{ value, constraints: {} }]])), null, 2),
  );
  const store = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: SQL_PLUGIN,
      databaseName,
      connectAddr: `${postgres.host}:${postgres.port}`,
      connectProtocol: 'tcp',
      user: postgres.user,
      password: postgres.password ?? '',
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const service = (grpcPort: number, membershipPort: number, httpPort?: number) => ({
    rpc: { grpcPort, membershipPort, bindOnIP: ip, ...(httpPort ? { httpPort } : {}) },
  });
  const config = {
    log: { stdout: true, level: options.logLevel ?? 'warn' },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: 4,
      // Few connections: PostgreSQL allows 100 by default, and several stacks may share it.
      datastores: { default: store(databases.default, 10), visibility: store(databases.visibility, 4) },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: ip },
      metrics: { prometheus: { framework: 'tally', timerType: 'histogram', listenAddress: `${ip}:${ports.metrics}` } },
    },
    services: {
      frontend: service(ports.frontend, ports.frontendMembership, ports.frontendHttp),
      history: service(ports.history, ports.historyMembership),
      matching: service(ports.matching, ports.matchingMembership),
      worker: service(ports.worker, ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `${ip}:${ports.frontend}` },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    dynamicConfigClient: { filepath: dynamicConfigFile, pollInterval: '10s' },
  };
  // JSON is YAML: the server's loader reads it as its `<env>.yaml`.
  await fsp.writeFile(path.join(configDir, `${CONFIG_ENV}.yaml`), JSON.stringify(config, null, 2), { mode: 0o600 });
}

async function waitUntilReady(input: {
  child: ManagedProcess;
  ip: string;
  ports: ServerPorts;
  namespace: string;
  searchAttributes: ReadonlyMap<string, SearchAttributeTypeName>;
  timeoutMs: number;
}): Promise<void> {
  const { child, ip, ports, namespace, searchAttributes, timeoutMs } = input;
  const pollUntil = readinessPoller(child, timeoutMs, {
    exited: (exit, logExcerpt) => new TemporalPostgresServerExitedError(exit, logExcerpt),
    timedOut: (ms, logTail, lastError) => new TemporalPostgresServerTimeoutError(ms, logTail, lastError),
  });

  // 1. The frontend's HTTP API answers (polling over HTTP leaks no gRPC channel per failure).
  await pollUntil(() => httpOk(`http://${ip}:${ports.frontendHttp}/api/v1/system-info`));

  // 2. Over gRPC: the namespace exists (registered by us if not), then its search attributes.
  await pollUntil(() =>
    grpcOk(`${ip}:${ports.frontend}`, async (connection) => {
      await connection.withDeadline(Date.now() + 10_000, async () => {
        const known = await connection.workflowService.describeNamespace({ namespace }).then(
          () => true,
          () => false,
        );
        if (known) return;
        await connection.workflowService
          .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') })
          .catch((error: unknown) => {
            if (!/already exists/i.test(error instanceof Error ? error.message : String(error))) throw error;
          });
        await connection.workflowService.describeNamespace({ namespace }); // throws until the cache knows it
      });
      await reconcileSearchAttributes(connection, namespace, searchAttributes);
    }),
  );
}
