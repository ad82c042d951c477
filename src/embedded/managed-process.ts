/**
 * One long-running child server process: spawn, log to a file, stop politely, kill hard.
 *
 * Why it is built this way:
 * - The child writes straight into a log file descriptor (no pipes through Node), so a busy or
 *   paused parent can never block the server on a full pipe, and the log survives the parent.
 *   Each start appends a header line and remembers the file offset, so an error can quote the
 *   log tail of *this* run only.
 * - On Linux the command is wrapped in `setpriv --pdeathsig KILL` (util-linux) when available:
 *   the kernel then kills the server if the Node process dies for any reason, even SIGKILL or a
 *   crash where no JavaScript exit handler runs. `setpriv` execs the server, so the pid is the
 *   server's own pid. Elsewhere the servers rely on the stack's exit handlers only.
 * - `stop()` is SIGTERM, a grace period, then SIGKILL, and always waits for the exit, so callers
 *   can safely reuse ports and data directories right after it resolves.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { EmbeddedStackError } from './errors';

/** How a child process ended. */
export interface ProcessExit {
  /** Exit code, or `null` when the process was ended by a signal. */
  readonly code: number | null;
  /** The signal that ended the process, or `null` when it exited by itself. */
  readonly signal: NodeJS.Signals | null;
}

/** What every embedded server (Temporal, MinIO, toxiproxy) exposes about its process. */
export interface RunningServerProcess {
  /** The server's log file. */
  readonly logFile: string;
  /** Process id of the current server process (servers that restart get a new one). */
  readonly pid: number;
  /** Resolves when the current server process exits (for whatever reason). */
  readonly exited: Promise<ProcessExit>;
  /** SIGTERM, then SIGKILL after the grace period; resolves once the process has exited. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link ManagedProcess.start}. */
export interface ManagedProcessOptions {
  /** Absolute path of the executable. */
  readonly command: string;
  /** Arguments passed to the executable. */
  readonly args: readonly string[];
  /** File that receives the child's stdout and stderr (appended; parent dirs are created). */
  readonly logFile: string;
  /**
   * Environment of the child.
   * @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Working directory of the child.
   * @default the directory of `logFile`
   */
  readonly cwd?: string;
  /**
   * Ask the kernel to SIGKILL the child when this process dies (Linux with `setpriv` only;
   * silently ignored elsewhere).
   * @default true
   */
  readonly dieWithParent?: boolean;
}

/** Options of {@link ManagedProcess.stop}. */
export interface StopOptions {
  /**
   * How long to wait after SIGTERM before sending SIGKILL.
   * @default 10_000
   */
  readonly graceMs?: number;
}

/** The executable could not be started at all (missing file, no permission, ...). */
export class ProcessSpawnError extends EmbeddedStackError {
  constructor(
    readonly command: string,
    cause: unknown,
  ) {
    super(`could not start ${command}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

const SETPRIV_CANDIDATES = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv'] as const;

/** A running (or finished) child server process. Create with {@link ManagedProcess.start}. */
export class ManagedProcess {
  /** Resolves once the process has exited; never rejects. */
  readonly exited: Promise<ProcessExit>;
  private exitInfo: ProcessExit | undefined;

  private constructor(
    private readonly child: ChildProcess,
    /** Process id of the server. */
    readonly pid: number,
    /** The log file the process writes to. */
    readonly logFile: string,
    private readonly logOffset: number,
    exited: Promise<ProcessExit>,
  ) {
    this.exited = exited.then((info) => {
      this.exitInfo = info;
      return info;
    });
  }

  /**
   * Spawns the process and resolves once the OS has started it (not once the server is ready;
   * readiness is protocol specific and checked by the caller).
   *
   * @throws {@link ProcessSpawnError} if the executable cannot be started
   */
  static async start(options: ManagedProcessOptions): Promise<ManagedProcess> {
    await fsp.mkdir(path.dirname(options.logFile), { recursive: true });
    const header = `\n===== ${new Date().toISOString()} starting: ${options.command} ${options.args.join(' ')}\n`;
    await fsp.appendFile(options.logFile, header);
    const logOffset = (await fsp.stat(options.logFile)).size;

    const [command, args] = wrapForParentDeath(options.command, options.args, options.dieWithParent ?? true);
    const fd = fs.openSync(options.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd: options.cwd ?? path.dirname(options.logFile),
        env: options.env ?? process.env,
        stdio: ['ignore', fd, fd],
        detached: false,
      });
    } catch (error) {
      fs.closeSync(fd);
      throw new ProcessSpawnError(options.command, error);
    }
    // Listen for the exit before anything else can await, so a fast crash is never missed.
    const exited = new Promise<ProcessExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (error) {
      throw new ProcessSpawnError(options.command, error);
    } finally {
      fs.closeSync(fd);
    }
    if (child.pid === undefined) throw new ProcessSpawnError(options.command, new Error('no pid'));
    return new ManagedProcess(child, child.pid, options.logFile, logOffset, exited);
  }

  /** How the process ended, or `undefined` while it is still running. */
  get exit(): ProcessExit | undefined {
    return this.exitInfo;
  }

  /** `true` until the process has exited. */
  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /**
   * Sends a signal right away (synchronous, so it is usable from `process.on('exit')`).
   *
   * @returns `false` if the process had already exited or the signal could not be sent
   */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (!this.running) return false;
    try {
      return this.child.kill(signal);
    } catch {
      return false;
    }
  }

  /** SIGTERM, wait up to `graceMs`, then SIGKILL; resolves once the process has exited. */
  async stop(options: StopOptions = {}): Promise<ProcessExit> {
    if (this.exitInfo) return this.exitInfo;
    this.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), options.graceMs ?? 10_000);
    });
    const first = await Promise.race([this.exited, graceOver]);
    clearTimeout(timer);
    if (first === 'timeout') this.kill('SIGKILL');
    return this.exited;
  }

  /** The last `maxLines` lines this run wrote to its log file (earlier runs excluded). */
  async logTail(maxLines = 40): Promise<string> {
    return readLogTail(this.logFile, { fromOffset: this.logOffset, maxLines });
  }
}

/**
 * Reads the last lines of a log file, never more than the last 64 KiB.
 *
 * @param options.fromOffset - ignore everything before this byte offset
 * @param options.maxLines - how many lines to return
 */
export async function readLogTail(
  file: string,
  options: { readonly fromOffset?: number; readonly maxLines?: number } = {},
): Promise<string> {
  const maxBytes = 64 * 1024;
  try {
    const handle = await fsp.open(file, 'r');
    try {
      const { size } = await handle.stat();
      const start = Math.max(options.fromOffset ?? 0, size - maxBytes);
      const buffer = Buffer.alloc(Math.max(0, size - start));
      await handle.read(buffer, 0, buffer.length, start);
      const lines = buffer.toString('utf8').split('\n');
      return lines
        .slice(-(options.maxLines ?? 40) - 1)
        .join('\n')
        .trim();
    } finally {
      await handle.close();
    }
  } catch (error) {
    return `(could not read ${file}: ${error instanceof Error ? error.message : String(error)})`;
  }
}

function wrapForParentDeath(command: string, args: readonly string[], dieWithParent: boolean): [string, readonly string[]] {
  if (!dieWithParent || process.platform !== 'linux') return [command, args];
  const setpriv = SETPRIV_CANDIDATES.find((candidate) => isExecutable(candidate));
  if (!setpriv) return [command, args];
  return [setpriv, ['--pdeathsig', 'KILL', '--', command, ...args]];
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
