/**
 * Vitest configuration: two projects over the same test files.
 *
 * - `dev-server`: every test file, on one embedded stack (Temporal dev server + MinIO) that
 *   `test/global-setup.ts` starts for the whole run; global setup itself has no timeout, so a
 *   first-time build of the server binaries (minutes) cannot make it fail.
 * - `postgres`: the end-to-end files ({@link END_TO_END_ON_POSTGRES}) again, on a stack of their own
 *   with the real Temporal server on PostgreSQL (`UPLOAD_SAGA_TEST_TEMPORAL=postgres`, read by the
 *   same global setup): the path a cluster takes, in every `npm test`. The other tiers do not depend
 *   on the server's store, so they run once.
 * - Test files of both projects share one pool: at most 2 at once (the CI machine has 2 cores and
 *   the servers need CPU too). `--project dev-server` (or `postgres`) runs one project alone.
 * - Generous timeouts: tests drive real servers and multi-megabyte uploads.
 */
import { defineConfig } from 'vitest/config';

/**
 * The end-to-end files: the whole upload saga (multipart and the one-part fast path) and the
 * gateway's two browser protocols, each a saga from the first request to the webhook.
 */
const END_TO_END_ON_POSTGRES = [
  'test/upload/upload-workflow.test.ts',
  'test/upload/one-put.test.ts',
  'test/gateway/tus.test.ts',
  'test/gateway/s3-multipart.test.ts',
];

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // stack.stop() waits for both servers to exit (SIGTERM, then SIGKILL after 10 s).
    teardownTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: { name: 'dev-server', include: ['test/**/*.test.ts'], globalSetup: ['test/global-setup.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'postgres',
          include: END_TO_END_ON_POSTGRES,
          globalSetup: ['test/global-setup.ts'],
          env: { UPLOAD_SAGA_TEST_TEMPORAL: 'postgres' },
        },
      },
    ],
  },
});
