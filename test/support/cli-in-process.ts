/**
 * The CLI's `main` (src/cli/main.ts) run in this process with exactly `env`, its stdout and stderr
 * captured into one string: fast enough for a test to call it many times against its own stack.
 * Loaded through tsx's CommonJS hook because the CLI loads its commands lazily with `require`.
 * test/cli.test.ts runs the real binary instead.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import type * as CliMain from '../../src/cli/main';

/** Runs `upload-saga <argv…>`; resolves with its exit code and everything it printed. */
export async function runCliInProcess(env: Record<string, string>, argv: string[]): Promise<{ code: number; output: string }> {
  const load = createRequire(__filename);
  load('tsx/cjs');
  const cli = load(path.resolve(__dirname, '../../src/cli/main.ts')) as typeof CliMain;
  let output = '';
  const capture = () => new Writable({ write: (chunk: Buffer, _encoding, done) => ((output += chunk.toString()), done()) });
  const code = await cli.main(['node', 'upload-saga', ...argv], { env, stdout: capture(), stderr: capture() });
  return { code, output };
}
