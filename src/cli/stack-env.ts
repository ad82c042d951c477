/**
 * The environment that points a worker or the CLI at an embedded stack, and its `export` lines.
 *
 * Why a module of its own: `stack` prints these for the user's shell and `demo` feeds them to
 * `loadConfig`, so the variables the demo's worker runs on are exactly the ones a user would
 * export — the names come from CONFIG_VARIABLES (plus the CLI-only TEMPORAL_UI_URL).
 * The S3 secret is included: it is the user's own local MinIO, printed on their own terminal.
 */
import { STORE_RULES_ENV, type EmbeddedStack } from '../embedded';
import { TEMPORAL_UI_URL_VARIABLE } from './web-ui';

/** Variables that configure a worker or the CLI for `stack` (without task queue and allowed roots). */
export function embeddedStackEnv(stack: Pick<EmbeddedStack, 'temporal' | 's3'>): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: stack.temporal.address,
    TEMPORAL_NAMESPACE: stack.temporal.namespace,
    ...(stack.temporal.uiUrl ? { [TEMPORAL_UI_URL_VARIABLE]: stack.temporal.uiUrl } : {}),
    S3_ENDPOINT: stack.s3.endpoint,
    S3_REGION: stack.s3.region,
    S3_ACCESS_KEY_ID: stack.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
    ...STORE_RULES_ENV[stack.s3.kind],
  };
}

/** POSIX-shell quoting, only where needed. */
function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME=value` lines for a POSIX shell. */
export function exportLines(env: Record<string, string>, indent = '  '): string[] {
  return Object.entries(env).map(([name, value]) => `${indent}export ${name}=${shellQuote(value)}`);
}
