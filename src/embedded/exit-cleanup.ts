/**
 * Last-resort cleanup when the Node process ends without calling `stack.stop()`.
 *
 * Why it is built this way:
 * - Cleanup is an explicit, per-stack installation that returns its own `uninstall` function;
 *   there is no module-level registry, so two stacks in one process do not know about each other.
 * - `process.on('exit')` handlers must be synchronous, so the callback can only send signals and
 *   remove files synchronously; a graceful stop is the job of `stack.stop()`.
 * - Adding a SIGINT/SIGTERM listener disables Node's default "exit on signal". We therefore only
 *   act on a signal when nobody else listens to it (a CLI or vitest that handles Ctrl-C will call
 *   `stop()` itself, and our `exit` handler remains the backstop); then we clean up and re-raise
 *   the signal once the last of our handlers has run, so the process still dies with the
 *   conventional status.
 */

/** Options of {@link installExitCleanup}. */
export interface ExitCleanupOptions {
  /**
   * Signals that, when nobody else handles them, trigger the cleanup before the process dies.
   * @default ['SIGINT', 'SIGTERM', 'SIGHUP']
   */
  readonly signals?: readonly NodeJS.Signals[];
}

const OWN_HANDLER = Symbol('upload-saga.exit-cleanup');

type MarkedListener = ((...args: unknown[]) => void) & { [OWN_HANDLER]?: true };

/**
 * Runs `cleanupSync` when the process exits or receives a fatal signal, unless the returned
 * `uninstall` function was called first. `cleanupSync` runs at most once and must not throw.
 *
 * @returns a function that removes every listener this call added
 */
export function installExitCleanup(cleanupSync: () => void, options: ExitCleanupOptions = {}): () => void {
  const signals = options.signals ?? ['SIGINT', 'SIGTERM', 'SIGHUP'];
  let done = false;
  const runOnce = (): void => {
    if (done) return;
    done = true;
    try {
      cleanupSync();
    } catch {
      // Best effort: the process is going away anyway.
    }
  };

  const onExit: MarkedListener = () => runOnce();
  onExit[OWN_HANDLER] = true;
  const signalHandlers = new Map<NodeJS.Signals, MarkedListener>();
  const uninstall = (): void => {
    process.removeListener('exit', onExit);
    for (const [signal, handler] of signalHandlers) process.removeListener(signal, handler);
    signalHandlers.clear();
  };

  for (const signal of signals) {
    const handler: MarkedListener = () => {
      const othersListen = process.listeners(signal).some((listener) => !(listener as MarkedListener)[OWN_HANDLER]);
      if (othersListen) return;
      runOnce();
      uninstall();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    handler[OWN_HANDLER] = true;
    signalHandlers.set(signal, handler);
    process.on(signal, handler);
  }
  process.on('exit', onExit);
  return uninstall;
}
