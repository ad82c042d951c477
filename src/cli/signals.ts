/**
 * Ctrl-C handling for long-running commands (`stack`, `demo --keep-running`, a watched upload).
 *
 * Why it is built this way: the first SIGINT/SIGTERM starts a clean shutdown (servers stopped,
 * connections closed), and a second one forces the exit at once, for when a shutdown hangs.
 * Listening to the signal also tells the embedded stack's last-resort exit handler to stand back
 * and let `stop()` run (see src/embedded/exit-cleanup.ts).
 */
import { ExitCode } from './errors';

/** Options of {@link waitForShutdownSignal}. */
export interface ShutdownSignalOptions {
  /** @default ['SIGINT', 'SIGTERM'] */
  signals?: readonly NodeJS.Signals[];
  /** Called when a second signal arrives while the shutdown runs. @default exit with code 130 */
  onForce?: (signal: NodeJS.Signals) => void;
}

/** A pending shutdown request. */
export interface ShutdownSignal {
  /** Resolves with the first signal received. */
  readonly received: Promise<NodeJS.Signals>;
  /** Removes every listener (call when the shutdown is done, or when waiting is no longer wanted). */
  dispose(): void;
}

/**
 * Starts listening for a shutdown signal. After the first signal, a further one calls `onForce`.
 */
export function waitForShutdownSignal(options: ShutdownSignalOptions = {}): ShutdownSignal {
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  const onForce =
    options.onForce ??
    ((signal: NodeJS.Signals) => {
      process.stderr.write(`\n${signal} again: exiting without waiting for the shutdown\n`);
      process.exit(ExitCode.Interrupted);
    });
  let first: NodeJS.Signals | undefined;
  let resolve!: (signal: NodeJS.Signals) => void;
  const received = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const handler = (signal: NodeJS.Signals) => {
    if (first === undefined) {
      first = signal;
      resolve(signal);
    } else {
      onForce(signal);
    }
  };
  for (const signal of signals) process.on(signal, handler);
  return {
    received,
    dispose: () => {
      for (const signal of signals) process.removeListener(signal, handler);
    },
  };
}
