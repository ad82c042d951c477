/**
 * Vitest global setup: ONE embedded stack (real Temporal + real S3 store) per test run and vitest
 * project.
 *
 * Why it is built this way: starting the servers takes a couple of seconds (and minutes the
 * very first time, when the binaries are built from Go modules), so every test file shares one
 * stack and isolates itself by workflow id / object key instead. The stack lives in a fresh
 * temp dir on free ports, so concurrent runs on one machine do not collide. Global setup has
 * no timeout in vitest, so a long first build cannot time out here; the returned teardown runs
 * whether tests passed or failed, and the stack's exit handlers cover a killed vitest.
 *
 * Set UPLOAD_SAGA_KEEP_STACK_DIR=1 to keep the data dir (server logs, SQLite, objects) afterwards.
 * UPLOAD_SAGA_TEST_TEMPORAL=postgres, in the environment or in the project's `env` (the `postgres`
 * project of vitest.config.mts sets it), runs the project on the real Temporal server on the
 * PostgreSQL at 127.0.0.1:5432 instead of the dev server (no Web UI: `temporalUiUrl` is empty and
 * the Web UI tests skip themselves). UPLOAD_SAGA_TEST_STORE=versitygw (in the environment, or in the
 * project's `env` as the `versitygw` project sets it) runs versitygw instead of MinIO; tests read the
 * store with `inject('s3Store')`. Each project gets a stack of its own.
 */
import type { TestProject } from 'vitest/node';
import { startEmbeddedStack } from '../src/embedded';
import { testStoreKind } from './support/test-store';
import { testTemporalKind } from './support/test-temporal';

/** Buckets every test can rely on. */
const TEST_BUCKETS = ['uploads', 'uploads-other'] as const;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = { ...process.env, ...project.config.env };
  const store = testStoreKind(env);
  const stack = await startEmbeddedStack({
    buckets: TEST_BUCKETS,
    store,
    temporal: testTemporalKind(env),
    keepDataDir: process.env.UPLOAD_SAGA_KEEP_STACK_DIR === '1',
  });
  project.provide('temporalAddress', stack.temporal.address);
  project.provide('namespace', stack.temporal.namespace);
  project.provide('temporalUiUrl', stack.temporal.uiUrl ?? '');
  project.provide('s3Store', stack.s3.kind);
  project.provide('s3Endpoint', stack.s3.endpoint);
  project.provide('s3Region', stack.s3.region);
  project.provide('s3AccessKeyId', stack.s3.accessKeyId);
  project.provide('s3SecretAccessKey', stack.s3.secretAccessKey);
  process.stderr.write(
    `[embedded-stack] ${project.name}: temporal ${stack.temporal.kind} ${stack.temporal.address} (ns ${stack.temporal.namespace}, ui ${stack.temporal.uiUrl ?? 'none'}) · ` +
      `s3 ${stack.s3.kind} ${stack.s3.endpoint} (buckets ${TEST_BUCKETS.join(', ')}) · data ${stack.dataDir}\n`,
  );
  return () => stack.stop();
}
