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
import { BaseSequencer, type TestSpecification } from 'vitest/node';

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

/**
 * The files that start a server none of the global setups starts (Jaeger, tusd, toxiproxy,
 * compose-check). On a new machine CI builds those servers at low priority while `npm test` runs
 * (.ci/run); a file that needs one waits for its build in its `beforeAll`
 * (`SERVER_BUILD_WAIT_MS`, test/support/late-built-servers.ts). Running these files last gives
 * the builds the whole run to finish; with the binaries cached only the order changes.
 */
const LATE_BUILT_SERVER_FILES = [
  'test/telemetry/trace.test.ts', // jaeger
  'test/gateway/tus-conformance.test.ts', // tusd
  'test/gateway/resumable-upload.test.ts', // tusd
  'test/faults/fault-helpers.test.ts', // toxiproxy-server
  'test/compose.test.ts', // compose-check
];

/** vitest's default order, then the {@link LATE_BUILT_SERVER_FILES} at the end, in the order listed. */
class LateBuiltServersLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification): number =>
      LATE_BUILT_SERVER_FILES.indexOf(spec.moduleId.slice(spec.project.config.root.length + 1).replaceAll('\\', '/'));
    const early = sorted.filter((spec) => rank(spec) < 0);
    const late = sorted.filter((spec) => rank(spec) >= 0).sort((a, b) => rank(a) - rank(b));
    return [...early, ...late];
  }
}

export default defineConfig({
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // stack.stop() waits for both servers to exit (SIGTERM, then SIGKILL after 10 s).
    teardownTimeout: 60_000,
    // Files that start a server CI may still be building run last.
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
