/**
 * Vitest configuration: three projects over the same test files.
 *
 * - `minio`: every test file, on one embedded stack (Temporal dev server + MinIO) that
 *   `test/global-setup.ts` starts for the whole run; global setup itself has no timeout, so a
 *   first-time build of the server binaries (minutes) cannot make it fail.
 * - `versitygw`: the S3-facing files ({@link VERSITYGW_FILES}) again, on a stack whose store is
 *   versitygw (`UPLOAD_SAGA_TEST_STORE=versitygw`), so what the saga relies on is checked on a
 *   second S3 implementation.
 * - `postgres`: the end-to-end files ({@link END_TO_END_ON_POSTGRES}) again, on a stack with the
 *   real Temporal server on PostgreSQL (`UPLOAD_SAGA_TEST_TEMPORAL=postgres`): the path a cluster
 *   takes, in every `npm test`.
 * - Each project's global setup starts its own stack (a root `globalSetup` would start one more).
 *   Test files of all projects share one pool: at most 2 at once (the CI machine has 2 cores and
 *   the servers need CPU too). `--project minio` (or `versitygw`, `postgres`) runs one alone.
 * - Generous timeouts: tests drive real servers and multi-megabyte uploads.
 */
import { defineConfig } from 'vitest/config';
import { LateBuiltServersLast } from './test/support/late-built-servers';

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

const GLOBAL_SETUP = ['test/global-setup.ts'];

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // stack.stop() waits for both servers to exit (SIGTERM, then SIGKILL after 10 s).
    teardownTimeout: 60_000,
    // Files that start a server CI may still be building run last (test/support/late-built-servers.ts).
    sequence: { sequencer: LateBuiltServersLast },
    projects: [
      { extends: true, test: { name: 'minio', include: ['test/**/*.test.ts'], globalSetup: GLOBAL_SETUP } },
      {
        extends: true,
        test: { name: 'versitygw', include: VERSITYGW_FILES, globalSetup: GLOBAL_SETUP, env: { UPLOAD_SAGA_TEST_STORE: 'versitygw' } },
      },
      {
        extends: true,
        test: {
          name: 'postgres',
          include: END_TO_END_ON_POSTGRES,
          globalSetup: GLOBAL_SETUP,
          env: { UPLOAD_SAGA_TEST_TEMPORAL: 'postgres' },
        },
      },
    ],
  },
});
