/**
 * `upload-saga worker`: run an upload worker configured from the environment until Ctrl-C.
 *
 * Why so small: `runWorkerFromEnv` (src/worker.ts) is the one place a worker is wired, for this
 * command, the Docker image and `tsx src/worker.ts` alike. The configuration is validated before
 * anything connects; a ConfigError reaches main.ts, which lists every problem and exits 1.
 */
import { runWorkerFromEnv } from '../../worker';
import type { CliIo } from '../io';

/** Runs the command; resolves when the worker has shut down (SIGINT/SIGTERM). */
export async function runWorker(io: CliIo): Promise<void> {
  await runWorkerFromEnv(io.env);
}
