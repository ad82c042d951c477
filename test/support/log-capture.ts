/**
 * Captures every log line of the Temporal runtime in this process — the worker's own logs,
 * activity and workflow logs (`log.warn(...)` in workflow code, through sinks) and the Rust core's
 * logs, forwarded — so a test can read what a deployment's log collector would receive.
 *
 * Import it FIRST in a test file, before anything that installs the runtime (the harness does):
 * the runtime is installed once per process, and the first install wins.
 */
import { inspect } from 'node:util';
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';

/** Every entry logged since the process started, at every level. */
export const capturedLogs: LogEntry[] = [];

Runtime.install({
  logger: new DefaultLogger('TRACE', (entry) => capturedLogs.push(entry)),
  telemetryOptions: { logging: { filter: { core: 'DEBUG', other: 'INFO' }, forward: {} } },
});

/** The captured entries as text, metadata and errors (with causes and details) included. */
export function capturedLogText(): string {
  return capturedLogs
    .map(
      (e) =>
        `${e.level} ${e.message} ${inspect(e.meta, { depth: 20, breakLength: Infinity, maxStringLength: Infinity, maxArrayLength: Infinity })}`,
    )
    .join('\n');
}
