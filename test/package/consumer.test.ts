/**
 * The package as a consumer gets it: `npm pack`, then a fresh app outside the repository (in the
 * system's temp directory) that installs the tarball (`file:` dependency, copied, never linked to
 * src/) and
 * - type-checks against the published types with `moduleResolution` node16 and bundler, importing
 *   every entry point (test/package/app/every-entry.ts and .mts, and the examples/);
 * - loads every entry point at run time from CommonJS and from an ES module;
 * - runs examples/ against the test run's stack: an upload followed to the end on the shipped
 *   workflow bundle; one worker bundling the app's own workflows file (re-exporting
 *   `upload-saga/workflows`) that runs an upload and the app's own saga, which compensates; and
 *   the gateway plugin inside the app's fastify server taking a tus-js-client upload.
 *
 * dist/ is built first when it is missing or older than src/ (CI builds it before the tests).
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stackEnv } from '../support/harness';

const ROOT = path.resolve(__dirname, '../..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(command: string, args: string[], options: Parameters<typeof run>[2]): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code}\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
  }
  return result.stdout;
}

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, (await stat(path.join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

/** The last line of a program's output that is a JSON object. */
function lastJson(stdout: string): Record<string, unknown> {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON line in:\n${stdout}`);
  return JSON.parse(line) as Record<string, unknown>;
}

let work: string;
let app: string;
let tsc: string;

beforeAll(async () => {
  const built = await stat(path.join(ROOT, 'dist/index.js')).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  if (built < (await newestMtime(path.join(ROOT, 'src')))) await ok('npm', ['run', 'build'], { cwd: ROOT, timeoutMs: 240_000 });

  work = await mkdtemp(path.join(os.tmpdir(), 'upload-saga-consumer-'));
  // dist/ is fresh: pack it as it is (prepack would build it again).
  const packed = await ok('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: ROOT });
  const tarball = path.join(work, packed.trim().split('\n').pop()!);

  const ours = JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  const versions = { ...ours.dependencies, ...ours.devDependencies };
  app = path.join(work, 'app');
  await mkdir(path.join(app, 'src'), { recursive: true });
  await writeFile(
    path.join(app, 'package.json'),
    JSON.stringify(
      {
        name: 'upload-saga-consumer',
        private: true,
        dependencies: {
          'upload-saga': `file:${tarball}`,
          // What the app's own code imports besides upload-saga (the examples, its tools).
          ...Object.fromEntries(
            ['@temporalio/client', '@temporalio/common', 'fastify', 'tus-js-client', 'typescript', '@types/node'].map((name) => [
              name,
              versions[name],
            ]),
          ),
        },
      },
      null,
      2,
    ),
  );
  await ok('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, timeoutMs: 240_000 });
  tsc = path.join(app, 'node_modules/typescript/bin/tsc');

  for (const file of await readdir(path.join(ROOT, 'examples'))) {
    if (file.endsWith('.ts')) await cp(path.join(ROOT, 'examples', file), path.join(app, 'src', file));
  }
  for (const file of ['every-entry.ts', 'every-entry.mts']) await cp(path.join(__dirname, 'app', file), path.join(app, 'src', file));
  const common = { target: 'ES2022', lib: ['ES2022', 'DOM'], strict: true, types: ['node'], skipLibCheck: true, rootDir: 'src' };
  await writeFile(
    path.join(app, 'tsconfig.node16.json'),
    JSON.stringify({ compilerOptions: { ...common, module: 'node16', moduleResolution: 'node16', outDir: 'out' }, include: ['src'] }),
  );
  await writeFile(
    path.join(app, 'tsconfig.bundler.json'),
    JSON.stringify({ compilerOptions: { ...common, module: 'preserve', moduleResolution: 'bundler', noEmit: true }, include: ['src'] }),
  );
}, 600_000);

afterAll(async () => {
  if (work && process.env.UPLOAD_SAGA_KEEP_CONSUMER !== '1') await rm(work, { recursive: true, force: true });
});

describe('the packed package in a fresh app', () => {
  it('is installed from the tarball, not linked to the repository', async () => {
    const installed = await realpath(path.join(app, 'node_modules/upload-saga'));
    expect(installed.startsWith(ROOT)).toBe(false);
    const files = await readdir(path.join(installed, 'dist'));
    expect(files).toEqual(
      expect.arrayContaining(['index.js', 'index.d.ts', 'workflow-bundle.js', 'workflow-bundle-encrypted-failures.js']),
    );
  });

  it('type-checks every entry point and the examples with moduleResolution bundler', async () => {
    await ok(process.execPath, [tsc, '-p', 'tsconfig.bundler.json'], { cwd: app });
  });

  it('type-checks and compiles them with moduleResolution node16, and node loads every entry point from CommonJS and ESM', async () => {
    await ok(process.execPath, [tsc, '-p', 'tsconfig.node16.json'], { cwd: app });
    for (const [file, module] of [
      ['out/every-entry.js', 'cjs'],
      ['out/every-entry.mjs', 'esm'],
    ] as const) {
      const printed = lastJson(await ok(process.execPath, [file], { cwd: app }));
      expect(printed.module).toBe(module);
      expect(printed.values).toEqual(['function', 'function', 'function', 'function', 'function', 'function', 'function', 'function']);
      expect(printed.bundle).toBe(path.join(await realpath(path.join(app, 'node_modules/upload-saga')), 'dist/workflow-bundle.js'));
    }
  });

  it('exposes the six entry points and nothing else', async () => {
    const attempt = (specifier: string) =>
      run(process.execPath, ['-e', `require(${JSON.stringify(specifier)})`], { cwd: app }).then((r) => r.code);
    expect(await attempt('upload-saga/dist/client.js')).not.toBe(0);
    expect(await attempt('upload-saga/src/client')).not.toBe(0);
    expect(await attempt('upload-saga/package.json')).not.toBe(0);
  });

  describe('runs the examples against the stack', () => {
    // Each example runs its own worker on its own task queue; they run side by side.
    const runExample = (name: string, tenant: string, env: Record<string, string> = {}) =>
      ok(process.execPath, [`out/${name}.js`], {
        cwd: app,
        // Its own tenant too: a tenant's quota ledger runs on the task queue of its first upload.
        env: { ...process.env, ...stackEnv(`consumer-${tenant}-${randomUUID()}`, env), UPLOAD_TENANT: `consumer-${tenant}` },
        timeoutMs: 110_000,
      }).then(lastJson);
    let results: Promise<Record<string, unknown>>[];
    beforeAll(async () => {
      await stat(path.join(app, 'out/own-saga.js')); // compiled by the node16 test above
      results = [
        runExample('upload-and-follow', 'follow'),
        runExample('own-saga', 'saga'),
        runExample('gateway-in-fastify', 'gateway'),
        // With encryption the worker takes the shipped bundle with the encrypting failure
        // converter; createUploadWorker refuses a bundle without it.
        runExample('upload-and-follow', 'encrypted', {
          UPLOAD_SAGA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
          UPLOAD_SAGA_ENCRYPTION_KEY_ID: 'consumer-key',
        }),
      ];
      for (const result of results) result.catch(() => undefined);
    });

    it('upload-and-follow: an upload on the shipped workflow bundle, followed to the end', async () => {
      expect(await results[0]).toEqual({ example: 'upload-and-follow', outcome: 'completed', size: 24 * 1024 * 1024 });
    });

    it("own-saga: one worker bundles the app's workflows file and runs an upload and the app's saga, which compensates", async () => {
      expect(await results[1]).toEqual({
        example: 'own-saga',
        upload: 6 * 1024 * 1024,
        trip: 'failed and compensated: step "charge" failed: CardDeclined: card declined; compensations: reserve compensated',
        compensated: true,
      });
    });

    it('upload-and-follow with payload encryption: the shipped bundle that encrypts failure messages', async () => {
      expect(await results[3]).toEqual({ example: 'upload-and-follow', outcome: 'completed', size: 24 * 1024 * 1024 });
    });

    it("gateway-in-fastify: a tus-js-client upload through the gateway plugin in the app's own server", async () => {
      expect(await results[2]).toMatchObject({ example: 'gateway-in-fastify', bytes: 6 * 1024 * 1024, outcome: 'completed' });
    });
  });
});
