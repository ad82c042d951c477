/**
 * The CLI's exit codes and the one place that turns any error into lines for stderr plus an exit code.
 *
 * Why it is built this way: every command can fail in the same few ways (bad configuration, an
 * invalid request, an upload that failed and was compensated, a server that is not there), and
 * each deserves a specific, readable message rather than a stack trace. Commands just throw;
 * main.ts calls {@link describeCliError} once. Set `UPLOAD_SAGA_DEBUG=1` to also print stacks.
 */
import { WorkflowNotFoundError } from '@temporalio/common';
import { DeleteFailedError, UploadFailedError } from '../client';
import { ConfigError } from '../config';
import { EmbeddedStackError } from '../embedded';
import { InvalidDeleteRequestError, InvalidUploadRequestError } from '../upload/errors';
import { failureReportLines } from './upload-report';

/** Process exit codes of the CLI. */
export const ExitCode = {
  /** The command did what was asked. */
  Ok: 0,
  /** The command failed: bad configuration, an upload that did not complete, a server that cannot be reached. */
  Failure: 1,
  /** The command line or the upload request is invalid; nothing was started. */
  Usage: 2,
  /** Interrupted by Ctrl-C (128 + SIGINT). */
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as-is: a message, optional detail lines and an exit code. */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode = ExitCode.Failure,
    /** Extra lines printed under the message, as they are (indent them yourself). */
    readonly details: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Bad command-line input detected by a command (exit code 2). */
export class UsageError extends CliError {
  override readonly name = 'UsageError';
  constructor(message: string, details: readonly string[] = []) {
    super(message, ExitCode.Usage, details);
  }
}

/** What to print for an error, and how to exit. */
export interface DescribedError {
  exitCode: ExitCode;
  /** Lines for stderr, without newline characters. */
  lines: string[];
}

/** Maps any thrown value to the lines and the exit code the CLI reports. */
export function describeCliError(error: unknown, env: NodeJS.ProcessEnv = process.env): DescribedError {
  const described = describe(error);
  if (env.UPLOAD_SAGA_DEBUG === '1' && error instanceof Error && error.stack) described.lines.push('', error.stack);
  return described;
}

function describe(error: unknown): DescribedError {
  if (error instanceof ConfigError) {
    return { exitCode: ExitCode.Failure, lines: ['invalid configuration:', ...error.problems.map((p) => `  - ${p}`)] };
  }
  if (error instanceof InvalidUploadRequestError) {
    return { exitCode: ExitCode.Usage, lines: ['invalid upload request:', ...error.problems.map((p) => `  - ${p.field}: ${p.message}`)] };
  }
  if (error instanceof InvalidDeleteRequestError) {
    return { exitCode: ExitCode.Usage, lines: ['invalid delete request:', ...error.problems.map((p) => `  - ${p.field}: ${p.message}`)] };
  }
  if (error instanceof DeleteFailedError) {
    return { exitCode: ExitCode.Failure, lines: [`${error.message}${error.type ? ` (${error.type})` : ''}`] };
  }
  if (error instanceof UploadFailedError) {
    return { exitCode: ExitCode.Failure, lines: failureReportLines(error) };
  }
  if (error instanceof WorkflowNotFoundError) {
    return { exitCode: ExitCode.Failure, lines: [`no such upload, batch or migration: workflow ${error.workflowId} does not exist`] };
  }
  if (error instanceof CliError) {
    return { exitCode: error.exitCode, lines: [error.message, ...error.details] };
  }
  if (error instanceof EmbeddedStackError) {
    return { exitCode: ExitCode.Failure, lines: [`embedded stack: ${error.message}`] };
  }
  if (error instanceof Error) return { exitCode: ExitCode.Failure, lines: [`${error.name}: ${error.message}`] };
  return { exitCode: ExitCode.Failure, lines: [String(error)] };
}
