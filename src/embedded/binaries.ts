/**
 * Finds, or builds from source, the server executables the embedded stack runs: the Temporal CLI
 * (`temporal server start-dev`) and MinIO or versitygw (the second S3 store), the real Temporal
 * server and its `temporal-sql-tool` (Temporal on PostgreSQL), plus toxiproxy, the TCP fault proxy the fault-injection suite puts
 * between workers and S3, tusd, the tus reference server the gateway's conformance test compares
 * answers with, and compose-check, the repository's own Compose file checker (tools/compose-check).
 *
 * Why it is built this way:
 * - No Docker and no prebuilt downloads are assumed; only a Go toolchain and the Go module proxy.
 *   `go install <module>@<version>` is the one build path that needs nothing else.
 * - Lookup order is explicit override → PATH → our cache → build, so CI images with preinstalled
 *   binaries and developers with their own builds never pay for a build.
 * - A build takes minutes, so it prints progress (start line with an estimate, a summary of
 *   `go: downloading` lines, an elapsed-time line every ~15 s) instead of looking hung.
 * - Builds go to a private staging GOBIN and are renamed into the cache dir, so a reader never
 *   sees a half-written binary; a lock file in the cache dir makes concurrent processes (parallel
 *   test workers, CI + demo) wait for the one build instead of compiling the same thing twice.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { EmbeddedStackError } from './errors';

/** The servers this module knows how to provide. */
export type ServerBinaryName =
  'temporal' | 'temporal-server' | 'temporal-sql-tool' | 'minio' | 'versitygw' | 'toxiproxy-server' | 'jaeger' | 'tusd' | 'compose-check';

/**
 * How a server is built from its Go module:
 * - `install`: `go install <module>@<version>` into a staging GOBIN (needs a go.mod without `replace`);
 * - `wrapper-module`: for modules whose go.mod has a `replace` (which `go install` refuses), a
 *   throwaway module in the staging dir (`go mod init`), the server added as a tool dependency
 *   (`go get -tool <module>@<version>`), then `go build -o <staging>/<name> <module>`;
 * - `repository-module`: a Go module inside this repository (`module` is its directory relative to
 *   the repository root, `version` the version of its main dependency, bumped with its go.mod):
 *   `go build -o <staging>/<name> .` in that directory.
 */
export type GoBuildMode = 'install' | 'wrapper-module' | 'repository-module';

/** How to obtain one server executable. */
export interface ServerBinarySpec {
  /** Executable file name: looked up on PATH and written to the cache dir under this name. */
  readonly name: ServerBinaryName;
  /**
   * The file name `go install` produces, when it differs from {@link name} (it is the last
   * element of the package path: toxiproxy's `cmd/server` installs as `server`, a name too
   * generic for PATH or the cache dir).
   * @default name
   */
  readonly installedName?: string;
  /** Go package path passed to `go install`. */
  readonly module: string;
  /** Module version passed to `go install` (`module@version`). */
  readonly version: string;
  /** How it is built (see {@link GoBuildMode}). @default 'install' */
  readonly buildMode?: GoBuildMode;
  /** Environment variable that, when set, names the executable to use and skips every other step. */
  readonly envVar: string;
  /** Human estimate of a first build on a 2-core machine with an empty Go cache (printed when a build starts). */
  readonly firstBuildEstimate: string;
}

/** Go package of the Temporal CLI, whose `server start-dev` runs a full single-process Temporal server. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';
/**
 * Temporal CLI version we build: v1.5.1 (Temporal Server 1.29.1, Web UI 2.42.1). It is the newest
 * tag whose go.mod has no `replace` directive; `go install module@version` refuses modules with
 * `replace`, so newer tags cannot be installed this way.
 */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
/** Go package of the real Temporal server (`temporal-server start`: frontend, history, matching and worker services). */
export const TEMPORAL_SERVER_MODULE = 'go.temporal.io/server/cmd/server';
/** Go package of `temporal-sql-tool`, which creates databases and sets up and updates Temporal's SQL schemas. */
export const TEMPORAL_SQL_TOOL_MODULE = 'go.temporal.io/server/cmd/tools/sql';
/**
 * Temporal server version built for the PostgreSQL-backed stack: v1.29.1, the server the dev server
 * (Temporal CLI v1.5.1) embeds, so both stacks run the same server code. Its go.mod has no
 * `replace`, so `go install` works for the server and the SQL tool alike.
 */
export const TEMPORAL_SERVER_VERSION = 'v1.29.1';

/** Directory (relative to the repository root) of the Compose file checker, a Go module of this repository. */
export const COMPOSE_CHECK_MODULE = 'tools/compose-check';
/** compose-go version the checker is built with (its go.mod's; bump both together). */
export const COMPOSE_CHECK_VERSION = 'compose-go/v2@v2.16.2';

/** Go package of the MinIO server (its main package is the module root). */
export const MINIO_MODULE = 'github.com/minio/minio';
/**
 * MinIO version we build, pinned to an exact pseudo-version: MinIO publishes no semver tags on the
 * Go module and its repository is archived, so `latest` would move only if it were revived, and a
 * pin keeps every machine on the same server. This is the newest commit of the default branch
 * (2026-02-12), which the module proxy answers for `latest`.
 */
export const MINIO_VERSION = 'v0.0.0-20260212201848-7aac2a2c5b7c';

/** Go package of the Versity S3 gateway, the second S3 implementation the tests run against (posix backend). */
export const VERSITYGW_MODULE = 'github.com/versity/versitygw/cmd/versitygw';
/** versitygw version we build: v1.8.0; its go.mod has no `replace` directive, so a plain `go install` works. */
export const VERSITYGW_VERSION = 'v1.8.0';

/** Go package of the toxiproxy server (a TCP proxy whose faults are set over an HTTP API). */
export const TOXIPROXY_MODULE = 'github.com/Shopify/toxiproxy/v2/cmd/server';
/**
 * Toxiproxy version we build. v2.12.0 (March 2025): its go.mod has no `replace` directive, so
 * `go install module@version` works. The module proxy's `@latest` still answers v2.5.0 (later
 * tags are not listed as versions), so the version is pinned instead.
 */
export const TOXIPROXY_VERSION = 'v2.12.0';

/** Go package of Jaeger v2 (an OpenTelemetry Collector distribution: OTLP in, query API out). */
export const JAEGER_MODULE = 'github.com/jaegertracing/jaeger/cmd/jaeger';
/**
 * Jaeger version we build: v1.75.0, whose `cmd/jaeger` is Jaeger v2. Its go.mod has a `replace`,
 * so it is built inside a wrapper module (see {@link GoBuildMode}).
 */
export const JAEGER_VERSION = 'v1.75.0';

/** Go package of tusd, the tus protocol's reference server (test/gateway/tus-conformance.test.ts compares the gateway with it). */
export const TUSD_MODULE = 'github.com/tus/tusd/v2/cmd/tusd';
/** tusd version we build: v2.9.1; its go.mod has no `replace` directive, so a plain `go install` works. */
export const TUSD_VERSION = 'v2.9.1';

/** Everything needed to obtain each server. */
export const SERVER_BINARIES: Readonly<Record<ServerBinaryName, ServerBinarySpec>> = {
  temporal: {
    name: 'temporal',
    module: TEMPORAL_CLI_MODULE,
    version: TEMPORAL_CLI_VERSION,
    envVar: 'UPLOAD_SAGA_TEMPORAL_BIN',
    firstBuildEstimate: 'about 6 minutes',
  },
  'temporal-server': {
    name: 'temporal-server',
    installedName: 'server',
    module: TEMPORAL_SERVER_MODULE,
    version: TEMPORAL_SERVER_VERSION,
    envVar: 'UPLOAD_SAGA_TEMPORAL_SERVER_BIN',
    firstBuildEstimate:
      'several minutes (about 600 packages beyond those it shares with the Temporal CLI; 27 minutes on a heavily loaded 2-core machine)',
  },
  'temporal-sql-tool': {
    name: 'temporal-sql-tool',
    installedName: 'sql',
    module: TEMPORAL_SQL_TOOL_MODULE,
    version: TEMPORAL_SERVER_VERSION,
    envVar: 'UPLOAD_SAGA_TEMPORAL_SQL_TOOL_BIN',
    firstBuildEstimate: 'about 1 minute once temporal-server is built (they share their packages)',
  },
  minio: {
    name: 'minio',
    module: MINIO_MODULE,
    version: MINIO_VERSION,
    envVar: 'UPLOAD_SAGA_MINIO_BIN',
    firstBuildEstimate: 'about 5 minutes',
  },
  versitygw: {
    name: 'versitygw',
    module: VERSITYGW_MODULE,
    version: VERSITYGW_VERSION,
    envVar: 'UPLOAD_SAGA_VERSITYGW_BIN',
    firstBuildEstimate: 'about 3 minutes',
  },
  'toxiproxy-server': {
    name: 'toxiproxy-server',
    installedName: 'server',
    module: TOXIPROXY_MODULE,
    version: TOXIPROXY_VERSION,
    envVar: 'UPLOAD_SAGA_TOXIPROXY_BIN',
    firstBuildEstimate: 'about 1 minute',
  },
  jaeger: {
    name: 'jaeger',
    module: JAEGER_MODULE,
    version: JAEGER_VERSION,
    buildMode: 'wrapper-module',
    envVar: 'UPLOAD_SAGA_JAEGER_BIN',
    firstBuildEstimate: 'about 7 minutes',
  },
  tusd: {
    name: 'tusd',
    module: TUSD_MODULE,
    version: TUSD_VERSION,
    envVar: 'UPLOAD_SAGA_TUSD_BIN',
    firstBuildEstimate: 'about 3 minutes',
  },
  'compose-check': {
    name: 'compose-check',
    module: COMPOSE_CHECK_MODULE,
    version: COMPOSE_CHECK_VERSION,
    buildMode: 'repository-module',
    envVar: 'UPLOAD_SAGA_COMPOSE_CHECK_BIN',
    firstBuildEstimate: 'about 1 minute',
  },
};

/** The repository root (this file is src/embedded/binaries.ts, or its compiled twin under dist/). */
const REPOSITORY_ROOT = path.resolve(__dirname, '..', '..');

/** Environment variable that overrides the binary cache directory. */
export const CACHE_DIR_ENV_VAR = 'UPLOAD_SAGA_CACHE_DIR';

/** Where progress lines are written; `process.stderr` and any writable stream fit. */
export interface ProgressLogger {
  write(text: string): unknown;
}

/** Options of {@link ensureServerBinary} and {@link findServerBinary}. */
export interface EnsureServerBinaryOptions {
  /**
   * Environment used for the env-var override, `PATH`, the cache dir override and the Go build.
   * @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Directory holding built binaries (and the build lock files).
   * @default env.UPLOAD_SAGA_CACHE_DIR, else ~/.cache/upload-saga/bin
   */
  readonly cacheDir?: string;
  /**
   * Receives build progress lines.
   * @default process.stderr
   */
  readonly logger?: ProgressLogger;
  /**
   * Build with `go install` when no binary is found. When `false`, a missing binary is an error.
   * @default true
   */
  readonly allowBuild?: boolean;
  /**
   * The `go` executable.
   * @default `go` found on env.PATH, else /usr/local/go/bin/go
   */
  readonly goBinary?: string;
  /**
   * Interval of the "still building / still waiting" progress lines.
   * @default 15_000
   */
  readonly progressIntervalMs?: number;
  /**
   * How long to wait for another process that holds the build lock before giving up.
   * @default 1_800_000 (30 minutes)
   */
  readonly lockTimeoutMs?: number;
  /**
   * A lock older than this is considered abandoned even if its owner cannot be checked
   * (e.g. it was taken on another host sharing the cache dir).
   * @default 7_200_000 (2 hours)
   */
  readonly staleLockMs?: number;
}

/** Where {@link findServerBinary} found an executable. */
export type BinarySource = 'env' | 'path' | 'cache';

/** Result of {@link findServerBinary}. */
export interface FoundBinary {
  /** Absolute path of the executable. */
  readonly path: string;
  /** Which lookup step found it. */
  readonly source: BinarySource;
}

/** The env-var override names something that is not an executable file. */
export class ServerBinaryNotExecutableError extends EmbeddedStackError {
  constructor(
    readonly envVar: string,
    readonly binaryPath: string,
  ) {
    super(`${envVar}=${binaryPath} is not an executable file`);
  }
}

/** No binary was found and building was not allowed. */
export class ServerBinaryNotFoundError extends EmbeddedStackError {
  constructor(
    readonly binary: ServerBinaryName,
    readonly cacheDir: string,
  ) {
    const spec = SERVER_BINARIES[binary];
    super(`no ${binary} executable: ${spec.envVar} is unset, none on PATH, none in ${cacheDir}, and building is disabled`);
  }
}

/** A build is needed but no Go toolchain could be found. */
export class GoToolchainNotFoundError extends EmbeddedStackError {
  constructor(readonly binary: ServerBinaryName) {
    const spec = SERVER_BINARIES[binary];
    super(
      `building ${binary} needs the Go toolchain, but no \`go\` executable was found on PATH. ` +
        `Install Go (https://go.dev/dl/) or point ${spec.envVar} at an existing ${binary} binary.`,
    );
  }
}

/** `go install` failed; `outputTail` holds the end of its output. */
export class ServerBinaryBuildError extends EmbeddedStackError {
  constructor(
    readonly binary: ServerBinaryName,
    readonly exitCode: number | null,
    readonly outputTail: string,
    cause?: unknown,
  ) {
    const spec = SERVER_BINARIES[binary];
    super(`building ${spec.module}@${spec.version} with go failed (exit ${String(exitCode)}). Last output:\n${outputTail}`, { cause });
  }
}

/** Another process held the build lock for longer than `lockTimeoutMs`. */
export class BuildLockTimeoutError extends EmbeddedStackError {
  constructor(
    readonly binary: ServerBinaryName,
    readonly lockFile: string,
    readonly waitedMs: number,
  ) {
    super(
      `gave up waiting ${Math.round(waitedMs / 1000)}s for another process building ${binary} ` +
        `(lock ${lockFile}); delete the lock file if no build is running`,
    );
  }
}

/** The default binary cache directory for an environment. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const override = env[CACHE_DIR_ENV_VAR];
  if (override) return path.resolve(override);
  return path.join(os.homedir(), '.cache', 'upload-saga', 'bin');
}

/**
 * Looks for an existing executable without building: env var, then PATH, then the cache dir.
 *
 * @returns where it was found, or `undefined`
 * @throws {@link ServerBinaryNotExecutableError} if the env-var override is set but unusable
 */
export async function findServerBinary(name: ServerBinaryName, options: EnsureServerBinaryOptions = {}): Promise<FoundBinary | undefined> {
  const env = options.env ?? process.env;
  const spec = SERVER_BINARIES[name];

  const override = env[spec.envVar];
  if (override) {
    const resolved = path.resolve(override);
    if (!(await isExecutableFile(resolved))) throw new ServerBinaryNotExecutableError(spec.envVar, resolved);
    return { path: resolved, source: 'env' };
  }

  const onPath = await findOnPath(name, env);
  if (onPath) return { path: onPath, source: 'path' };

  const cached = await findInCache(spec, options.cacheDir ?? defaultCacheDir(env));
  if (cached) return { path: cached, source: 'cache' };
  return undefined;
}

/**
 * Returns the absolute path of a usable server executable (see {@link ServerBinaryName}), building it with
 * `go install` into the cache dir if needed (see the module header for the lookup order).
 *
 * @throws {@link ServerBinaryNotExecutableError} if the env-var override is unusable
 * @throws {@link ServerBinaryNotFoundError} if nothing is found and `allowBuild` is false
 * @throws {@link GoToolchainNotFoundError} if a build is needed and `go` is missing
 * @throws {@link ServerBinaryBuildError} if `go install` fails
 * @throws {@link BuildLockTimeoutError} if another process builds for longer than `lockTimeoutMs`
 */
export async function ensureServerBinary(name: ServerBinaryName, options: EnsureServerBinaryOptions = {}): Promise<string> {
  const found = await findServerBinary(name, options);
  if (found) return found.path;

  const env = options.env ?? process.env;
  const spec = SERVER_BINARIES[name];
  const cacheDir = options.cacheDir ?? defaultCacheDir(env);
  if (options.allowBuild === false) throw new ServerBinaryNotFoundError(name, cacheDir);

  const logger = options.logger ?? process.stderr;
  await fsp.mkdir(cacheDir, { recursive: true });
  const release = await acquireBuildLock(spec, cacheDir, logger, options);
  try {
    // The process we waited for may have built it meanwhile.
    const cached = await findInCache(spec, cacheDir);
    if (cached) return cached;
    const goBinary = options.goBinary ?? (await findGo(env));
    if (!goBinary) throw new GoToolchainNotFoundError(name);
    return await buildWithGo(spec, cacheDir, goBinary, env, logger, options.progressIntervalMs ?? 15_000);
  } finally {
    await release();
  }
}

// ---------------------------------------------------------------------------------------------
// Lookup

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    const stat = await fsp.stat(file);
    if (!stat.isFile()) return false;
    await fsp.access(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function findOnPath(executable: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const dirs = (env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== '');
  for (const dir of dirs) {
    const candidate = path.resolve(dir, executable);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function versionStampFile(spec: ServerBinarySpec, cacheDir: string): string {
  return path.join(cacheDir, `${spec.name}.version`);
}

/**
 * A cached binary counts if it is executable and its version stamp (written by our builds)
 * matches the wanted module@version. A binary without a stamp (placed there by hand or by a
 * plain `GOBIN=... go install`) is trusted.
 */
async function findInCache(spec: ServerBinarySpec, cacheDir: string): Promise<string | undefined> {
  const candidate = path.resolve(cacheDir, spec.name);
  if (!(await isExecutableFile(candidate))) return undefined;
  try {
    const stamp = (await fsp.readFile(versionStampFile(spec, cacheDir), 'utf8')).trim();
    if (stamp !== `${spec.module}@${spec.version}`) return undefined;
  } catch {
    // No stamp: trust it.
  }
  return candidate;
}

async function findGo(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const onPath = await findOnPath('go', env);
  if (onPath) return onPath;
  const wellKnown = '/usr/local/go/bin/go';
  return (await isExecutableFile(wellKnown)) ? wellKnown : undefined;
}

// ---------------------------------------------------------------------------------------------
// Build lock

interface LockOwner {
  readonly pid: number;
  readonly hostname: string;
  readonly startedAt: string;
}

async function acquireBuildLock(
  spec: ServerBinarySpec,
  cacheDir: string,
  logger: ProgressLogger,
  options: EnsureServerBinaryOptions,
): Promise<() => Promise<void>> {
  const lockFile = path.join(cacheDir, `.${spec.name}.build.lock`);
  const me: LockOwner = { pid: process.pid, hostname: os.hostname(), startedAt: new Date().toISOString() };
  const myContent = JSON.stringify(me);
  const lockTimeoutMs = options.lockTimeoutMs ?? 30 * 60_000;
  const staleLockMs = options.staleLockMs ?? 2 * 60 * 60_000;
  const progressIntervalMs = options.progressIntervalMs ?? 15_000;
  const waitStart = Date.now();
  let lastReport = 0;

  for (;;) {
    try {
      await fsp.writeFile(lockFile, myContent, { flag: 'wx' });
      return async () => {
        try {
          if ((await fsp.readFile(lockFile, 'utf8')) === myContent) await fsp.unlink(lockFile);
        } catch {
          // Already gone.
        }
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }

    const observed = await readLock(lockFile);
    if (observed && isStale(observed, staleLockMs)) {
      await breakStaleLock(lockFile, observed.raw);
      continue;
    }

    const waited = Date.now() - waitStart;
    if (waited > lockTimeoutMs) throw new BuildLockTimeoutError(spec.name, lockFile, waited);
    if (lastReport === 0 || Date.now() - lastReport >= progressIntervalMs) {
      const who = observed?.owner ? `pid ${observed.owner.pid} on ${observed.owner.hostname}` : 'another process';
      logger.write(
        `[upload-saga] waiting for ${who} to finish building ${spec.name} ` + `(${formatDuration(waited)} so far, lock ${lockFile})\n`,
      );
      lastReport = Date.now();
    }
    await sleep(500);
  }
}

interface ObservedLock {
  readonly raw: string;
  readonly owner: LockOwner | undefined;
  readonly ageMs: number;
}

async function readLock(lockFile: string): Promise<ObservedLock | undefined> {
  try {
    const [raw, stat] = await Promise.all([fsp.readFile(lockFile, 'utf8'), fsp.stat(lockFile)]);
    let owner: LockOwner | undefined;
    try {
      const parsed = JSON.parse(raw) as Partial<LockOwner>;
      if (typeof parsed.pid === 'number' && typeof parsed.hostname === 'string') {
        owner = { pid: parsed.pid, hostname: parsed.hostname, startedAt: String(parsed.startedAt) };
      }
    } catch {
      // Being written right now, or garbage.
    }
    return { raw, owner, ageMs: Date.now() - stat.mtimeMs };
  } catch {
    return undefined; // Released between our attempt and this read.
  }
}

function isStale(lock: ObservedLock, staleLockMs: number): boolean {
  if (lock.ageMs > staleLockMs) return true;
  if (!lock.owner) return lock.ageMs > 30_000; // unreadable for a long time: a crashed writer
  if (lock.owner.hostname !== os.hostname()) return false;
  try {
    process.kill(lock.owner.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes an abandoned lock without deleting a fresh lock another waiter may have taken in the
 * meantime: move it aside atomically, and put it back if what we moved is not what we judged.
 */
async function breakStaleLock(lockFile: string, staleContent: string): Promise<void> {
  const aside = `${lockFile}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fsp.rename(lockFile, aside);
  } catch {
    return; // Someone else moved or released it.
  }
  const moved = await fsp.readFile(aside, 'utf8').catch(() => staleContent);
  if (moved !== staleContent) {
    await fsp.link(aside, lockFile).catch(() => undefined);
  }
  await fsp.unlink(aside).catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// Build

async function buildWithGo(
  spec: ServerBinarySpec,
  cacheDir: string,
  goBinary: string,
  env: NodeJS.ProcessEnv,
  logger: ProgressLogger,
  progressIntervalMs: number,
): Promise<string> {
  const target = `${spec.module}@${spec.version}`;
  const staging = await fsp.mkdtemp(path.join(cacheDir, `.build-${spec.name}-`));
  const started = Date.now();
  const how = {
    install: `go install ${target}`,
    'wrapper-module': `go get -tool ${target} && go build`,
    'repository-module': `go build in ${spec.module}`,
  }[spec.buildMode ?? 'install'];
  logger.write(
    `[upload-saga] building ${spec.name} from source: ${how}\n` +
      `[upload-saga]   first build takes ${spec.firstBuildEstimate} (module downloads + compile); ` +
      `later runs reuse ${path.join(cacheDir, spec.name)}\n`,
  );

  const progress = { downloads: 0, lastDownload: '', packages: 0 };
  const tail: string[] = [];
  const onLine = (line: string): void => {
    if (line.trim() === '') return;
    tail.push(line);
    if (tail.length > 40) tail.shift();
    const download = /^go: downloading (\S+) (\S+)/.exec(line);
    if (download) {
      progress.downloads++;
      progress.lastDownload = `${download[1] ?? ''} ${download[2] ?? ''}`;
    } else if (!line.startsWith('go:') && !line.startsWith('#') && /^[\w.-]+(\/[\w.@~+-]+)*$/.test(line)) {
      progress.packages++; // `go install -v` prints each package it compiles
    }
  };

  const ticker = setInterval(() => {
    const parts = [`${progress.downloads} modules downloaded`, `${progress.packages} packages compiled`];
    if (progress.downloads > 0 && progress.packages === 0) parts.push(`last: ${progress.lastDownload}`);
    logger.write(`[upload-saga] building ${spec.name}… ${formatDuration(Date.now() - started)} (${parts.join(', ')})\n`);
  }, progressIntervalMs);
  ticker.unref();

  /** Runs `go <args>` in `cwd`, its output through `onLine`; resolves with its exit code. */
  const runGo = (args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}) =>
    new Promise<number | null>((resolve, reject) => {
      const child = spawn(goBinary, args, { cwd, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.once('error', reject);
      for (const stream of [child.stdout, child.stderr]) {
        let pending = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => {
          pending += chunk;
          const lines = pending.split('\n');
          pending = lines.pop() ?? '';
          lines.forEach(onLine);
        });
        stream.on('end', () => {
          if (pending) onLine(pending);
        });
      }
      child.once('close', (code) => resolve(code));
    }).catch((error: unknown) => {
      throw new ServerBinaryBuildError(spec.name, null, tail.join('\n'), error);
    });

  try {
    let exitCode: number | null;
    if (spec.buildMode === 'wrapper-module') {
      // A module of our own that depends on the server's: its `replace` directives stay its own.
      exitCode = await runGo(['mod', 'init', `upload-saga-build/${spec.name}`], staging);
      if (exitCode === 0) exitCode = await runGo(['get', '-tool', target], staging);
      if (exitCode === 0) exitCode = await runGo(['build', '-v', '-o', path.join(staging, spec.name), spec.module], staging);
    } else if (spec.buildMode === 'repository-module') {
      exitCode = await runGo(['build', '-v', '-o', path.join(staging, spec.name), '.'], path.join(REPOSITORY_ROOT, spec.module));
    } else {
      exitCode = await runGo(['install', '-v', target], cacheDir, { GOBIN: staging });
    }

    const built = path.join(staging, (spec.buildMode ?? 'install') === 'install' ? (spec.installedName ?? spec.name) : spec.name);
    if (exitCode !== 0 || !(await isExecutableFile(built))) {
      throw new ServerBinaryBuildError(spec.name, exitCode, tail.join('\n') || '(no output)');
    }
    const final = path.join(cacheDir, spec.name);
    await fsp.rename(built, final);
    await fsp.writeFile(versionStampFile(spec, cacheDir), `${target}\n`);
    logger.write(
      `[upload-saga] built ${spec.name} in ${formatDuration(Date.now() - started)} ` +
        `(${progress.downloads} modules downloaded, ${progress.packages} packages compiled) → ${final}\n`,
    );
    return final;
  } finally {
    clearInterval(ticker);
    await fsp.rm(staging, { recursive: true, force: true });
  }
}

function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const minutes = Math.floor(seconds / 60);
  return minutes > 0 ? `${minutes}m${String(seconds % 60).padStart(2, '0')}s` : `${seconds}s`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
