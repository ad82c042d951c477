/**
 * Vitest configuration.
 *
 * - `globalSetup` starts one embedded Temporal + MinIO stack for the whole run (see
 *   test/global-setup.ts); global setup itself has no timeout, so a first-time build of the
 *   server binaries (minutes) cannot make it fail.
 * - Test files run in parallel in forked processes, at most 2 at once (the CI machine has 2 cores
 *   and the servers need CPU too).
 * - Generous timeouts: tests drive real servers and multi-megabyte uploads.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // stack.stop() waits for both servers to exit (SIGTERM, then SIGKILL after 10 s).
    teardownTimeout: 60_000,
  },
});
