/**
 * The encryption commands as a person runs them, as child processes configured only by the
 * environment: `upload-saga codec-server` (decodes over HTTP with the token, stops on Ctrl-C,
 * refuses to start without a key or with a bad one) and `upload-saga stack --encrypt` (a codec
 * server next to the stack, and the dev server's Web UI configured to use it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterEach, describe, expect, it } from 'vitest';
import { AesGcmPayloadCodec } from '../../src/codec';

const BIN = path.resolve(__dirname, '../../bin/upload-saga-dev.cjs');
const children: ChildProcess[] = [];

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first match of `pattern` in stdout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

function startCli(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: path.dirname(BIN),
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async waitFor(pattern, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = stdout.match(pattern);
        if (match) return match;
        if (child.exitCode !== null || Date.now() > deadline)
          throw new Error(`no ${pattern} in the output of upload-saga ${args.join(' ')}\nstdout:\n${stdout}\nstderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? []).toString('base64');

describe('upload-saga codec-server', () => {
  it('decodes for a token holder over HTTP, logs the request, and stops on Ctrl-C', async () => {
    const key = randomBytes(32);
    const token = randomBytes(16).toString('hex');
    const cli = startCli(['codec-server', '--port', '0', '--ui-origin', 'http://localhost:8233'], {
      UPLOAD_SAGA_ENCRYPTION_KEY: key.toString('base64'),
      UPLOAD_SAGA_ENCRYPTION_KEY_ID: 'cli-key',
      UPLOAD_SAGA_CODEC_SERVER_TOKEN: token,
    });
    await cli.waitFor(/press Ctrl-C to stop/);
    const [, url] = await cli.waitFor(/codec server on (http:\/\/127\.0\.0\.1:\d+)/);
    expect(cli.stdout()).toContain('cli-key encrypts; decrypts cli-key');
    expect(cli.stdout()).not.toContain(key.toString('base64'));
    expect(cli.stdout()).not.toContain(token);

    const [sealed] = await new AesGcmPayloadCodec({ encryption: { keys: [{ id: 'cli-key', key }] } }).encode([
      defaultPayloadConverter.toPayload({ key: 'a/b.bin' }),
    ]);
    const body = JSON.stringify({
      payloads: [{ metadata: Object.fromEntries(Object.entries(sealed!.metadata!).map(([k, v]) => [k, b64(v)])), data: b64(sealed!.data) }],
    });
    const refused = await fetch(`${url}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    expect(refused.status).toBe(401);
    const response = await fetch(`${url}/decode`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', Authorization: `Bearer ${token}` },
      body,
    });
    expect(response.status).toBe(200);
    const [decoded] = ((await response.json()) as { payloads: { data: string }[] }).payloads;
    expect(JSON.parse(Buffer.from(decoded!.data, 'base64').toString())).toEqual({ key: 'a/b.bin' });
    await expect.poll(() => cli.stderr()).toMatch(/POST \/decode \(namespace default\) → 200 \(1 payloads, \d+ ms\)/);

    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);
    expect(cli.stderr()).toContain('SIGINT: stopping the codec server');
  });

  it('refuses to start without a key, or with a key of the wrong length, never printing the key', async () => {
    const none = startCli(['codec-server', '--port', '0'], {});
    expect(await none.exited).toBe(1);
    expect(none.stderr()).toContain('the codec server needs the encryption keys: UPLOAD_SAGA_ENCRYPTION_KEY is not set');

    const short = randomBytes(24).toString('base64');
    const bad = startCli(['codec-server', '--port', '0'], { UPLOAD_SAGA_ENCRYPTION_KEY: short });
    expect(await bad.exited).toBe(1);
    expect(bad.stderr()).toContain(
      'UPLOAD_SAGA_ENCRYPTION_KEY: must be 32 bytes for AES-256 (44 base64 characters), but decodes to 24 bytes',
    );
    expect(bad.stderr()).not.toContain(short);
  });
});

describe('upload-saga stack --encrypt', () => {
  it('starts a codec server and points the dev server’s Web UI at it, printing the key to export', async () => {
    const cli = startCli(['stack', '--encrypt'], {});
    await cli.waitFor(/press Ctrl-C to stop/, 240_000);
    const [, key] = await cli.waitFor(/export UPLOAD_SAGA_ENCRYPTION_KEY=(\S+)/);
    expect(Buffer.from(key!, 'base64')).toHaveLength(32);
    const [, codecUrl] = await cli.waitFor(/codec server\s+(http:\/\/127\.0\.0\.1:\d+)/);
    const [, uiUrl] = await cli.waitFor(/web ui\s+(http:\/\/\S+)/);

    // The UI server hands its settings to the browser: the codec endpoint is ours.
    const settings = (await (await fetch(`${uiUrl}/api/v1/settings`)).json()) as { Codec?: { Endpoint?: string } };
    expect(settings.Codec?.Endpoint).toBe(codecUrl);
    // And the codec server accepts the UI's origin.
    const preflight = await fetch(`${codecUrl}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: new URL(uiUrl!).origin, 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.status).toBe(204);

    cli.child.kill('SIGINT');
    expect(await cli.exited).toBe(0);
  }, 300_000);
});
