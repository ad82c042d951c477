/**
 * Which Temporal server the test run's stack uses: `UPLOAD_SAGA_TEST_TEMPORAL=postgres` runs the
 * suite (global setup) or the fault suite on the real server on PostgreSQL; unset or `dev-server`
 * keeps the dev server. An unknown value fails the run instead of silently testing the default.
 */
import type { EmbeddedTemporalKind } from '../../src/embedded';

export const TEST_TEMPORAL_VARIABLE = 'UPLOAD_SAGA_TEST_TEMPORAL';

export function testTemporalKind(env: NodeJS.ProcessEnv = process.env): EmbeddedTemporalKind {
  const value = env[TEST_TEMPORAL_VARIABLE] ?? 'dev-server';
  if (value !== 'dev-server' && value !== 'postgres') {
    throw new Error(`${TEST_TEMPORAL_VARIABLE} must be dev-server or postgres, got ${JSON.stringify(value)}`);
  }
  return value;
}
