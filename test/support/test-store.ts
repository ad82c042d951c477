/**
 * Which S3 store the test run's stack uses: `UPLOAD_SAGA_TEST_STORE=versitygw` runs the suite
 * (global setup) on versitygw's posix backend; unset or `minio` keeps MinIO. The `versitygw`
 * vitest project sets it for the S3-facing files it runs (vitest.config.mts). An unknown value
 * fails the run instead of silently testing the default.
 */
import { S3_STORE_KINDS, type S3StoreKind } from '../../src/embedded';

export const TEST_STORE_VARIABLE = 'UPLOAD_SAGA_TEST_STORE';

export function testStoreKind(env: NodeJS.ProcessEnv = process.env): S3StoreKind {
  const value = env[TEST_STORE_VARIABLE] ?? 'minio';
  if (!(S3_STORE_KINDS as readonly string[]).includes(value)) {
    throw new Error(`${TEST_STORE_VARIABLE} must be one of ${S3_STORE_KINDS.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as S3StoreKind;
}
