/**
 * Vitest configuration.
 *
 * - `globalSetup` starts one embedded Temporal + S3 stack per project for the whole run (see
 *   test/global-setup.ts); global setup itself has no timeout, so a first-time build of the
 *   server binaries (minutes) cannot make it fail.
 * - Two projects: `minio` runs every test file against MinIO; `versitygw` runs the S3-facing files
 *   listed in VERSITYGW_FILES once more against versitygw (UPLOAD_SAGA_TEST_STORE), so what the
 *   saga relies on is checked on a second S3 implementation. Run one with `--project minio`.
 * - Test files run in parallel in forked processes, at most 2 at once (the CI machine has 2 cores
 *   and the servers need CPU too).
 * - Generous timeouts: tests drive real servers and multi-megabyte uploads.
 */
import { defineConfig } from 'vitest/config';

/** The S3-facing files the `versitygw` project runs (chosen for coverage per second; see docs/explanation/testing.md). */
const VERSITYGW_FILES = [
  'test/s3-store-capabilities.test.ts',
  'test/upload/upload-workflow.test.ts',
  'test/upload/full-object-checksum.test.ts',
  'test/upload/activities.test.ts',
  'test/upload/one-put.test.ts',
  'test/upload/independent-client.test.ts',
  'test/sources/s3-object.test.ts',
  'test/gateway/tus.test.ts',
  'test/gateway/s3-multipart.test.ts',
];

/** What both projects run with (in each project, not at the root: a root `globalSetup` would start a third stack). */
const shared = {
  globalSetup: ['test/global-setup.ts'],
  pool: 'forks',
  testTimeout: 120_000,
  hookTimeout: 300_000,
  // stack.stop() waits for both servers to exit (SIGTERM, then SIGKILL after 10 s).
  teardownTimeout: 60_000,
} as const;

export default defineConfig({
  test: {
    maxWorkers: 2,
    projects: [
      { test: { ...shared, name: 'minio', include: ['test/**/*.test.ts'] } },
      { test: { ...shared, name: 'versitygw', include: VERSITYGW_FILES, env: { UPLOAD_SAGA_TEST_STORE: 'versitygw' } } },
    ],
  },
});
