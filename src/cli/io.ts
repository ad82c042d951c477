/**
 * Where a command writes and which environment it reads: results go to stdout, everything a
 * person watches (progress bars, notes, errors) to stderr.
 *
 * Why an object instead of `console.log`: commands stay testable in-process with captured
 * streams, and the stdout/stderr split is explicit at every call site, so `upload … > result.txt`
 * captures the result and nothing else.
 */

/** The streams and environment of one CLI invocation. */
export interface CliIo {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** The real process's streams and environment. */
export function processIo(): CliIo {
  return { env: process.env, stdout: process.stdout, stderr: process.stderr };
}

/** Writes lines (each followed by a newline) to stdout. */
export function out(io: CliIo, ...lines: string[]): void {
  for (const line of lines) io.stdout.write(`${line}\n`);
}

/** Writes lines (each followed by a newline) to stderr. */
export function note(io: CliIo, ...lines: string[]): void {
  for (const line of lines) io.stderr.write(`${line}\n`);
}
