/**
 * The `upload-saga` CLI as a user runs it, from the sources: `node bin/upload-saga-dev.cjs …` in a child process,
 * configured only by environment variables, against the test run's stack. The worker runs in
 * this process on the file's own task queue (the child is spawned asynchronously, so this
 * process's event loop keeps serving the worker while the CLI waits for its upload).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderTable } from '../src/cli/format';
import { collectKeyValue, parseSizeOption } from '../src/cli/options';
import { RateMeter } from '../src/cli/rate-meter';
import { sourceFromArgument, sourceName } from '../src/cli/source-argument';
import { failureHeadline, sagaReportLines } from '../src/cli/upload-report';
import { defaultUploadId } from '../src/cli/upload-id';
import { CONFIG_VARIABLES } from '../src/config';
import { findRequestProblems, uploadWorkflowId } from '../src/upload/request';
import { makeRandomFile, makeTempDir, MiB, type TestFile } from './support/files';
import { connectTestStack, uniqueId, type RunningWorker, type TestStack, startUploadWorker } from './support/harness';

const BIN = path.resolve(__dirname, '../bin/upload-saga-dev.cjs');

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with exactly `env` (plus what Node needs to start) and collects its output. */
function runCli(args: string[], env: Record<string, string>, timeoutMs = 90_000): Promise<CliRun> {
  return new Promise((resolve, reject) => {
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
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`upload-saga ${args.join(' ')} did not finish in ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let stack: TestStack;
let worker: RunningWorker;
let tmp: { dir: string; remove(): Promise<void> };

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  tmp = await makeTempDir('upload-saga-cli-');
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

async function sha256OfObject(bucket: string, key: string): Promise<string> {
  const object = await stack.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return createHash('sha256')
    .update(await object.Body!.transformToByteArray())
    .digest('hex');
}

describe('upload-saga CLI', () => {
  const tenant = uniqueId('cli');
  const uploadId = uniqueId('twelve');
  const key = `cli/${uploadId}.bin`;
  const workflowId = uploadWorkflowId(tenant, uploadId);
  let file: TestFile;

  it('uploads a file, prints the result with the workflow id, and the object is byte-identical', async () => {
    file = await makeRandomFile(tmp.dir, 'twelve.bin', 12 * MiB + 123);
    const run = await runCli(
      [
        'upload',
        file.path,
        '--bucket',
        'uploads',
        '--key',
        key,
        '--tenant',
        tenant,
        '--upload-id',
        uploadId,
        '--part-size',
        '5MiB',
        '--meta',
        'origin=cli-test',
      ],
      stack.env,
    );

    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(workflowId);
    expect(run.stdout).toContain(`uploaded s3://uploads/${key}`);
    expect(run.stdout).toMatch(new RegExp(`size\\s+12\\.0 MiB \\(${file.size} bytes\\)`));
    expect(run.stdout).toMatch(/parts\s+3 × 5\.0 MiB/);
    expect(run.stdout).toContain(`/namespaces/${stack.config.temporal.namespace}/workflows/${encodeURIComponent(workflowId)}`);
    expect(await sha256OfObject('uploads', key)).toBe(file.sha256);
  });

  it('status shows the completed upload and its result', async () => {
    const run = await runCli(['status', tenant, uploadId], stack.env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/status\s+COMPLETED/);
    expect(run.stdout).toMatch(/outcome\s+completed/);
    expect(run.stdout).toContain(`uploaded s3://uploads/${key}`);
  });

  it('list --tenant shows the upload', async () => {
    // Visibility is eventually consistent: the upload shows up within a moment of completing.
    await expect
      .poll(async () => (await runCli(['list', '--tenant', tenant], stack.env)).stdout, { timeout: 30_000, interval: 500 })
      .toMatch(new RegExp(`${workflowId}\\s+${tenant}\\s+s3://uploads/${key}\\s+done\\s+completed\\s+COMPLETED`));
  });

  it('delete removes the uploaded object and gives its bytes back; a second delete finds nothing, exit 0', async () => {
    const first = await runCli(['delete', tenant, '--bucket', 'uploads', '--key', key], stack.env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`deleted s3://uploads/${key}, ${file.size} bytes`);
    expect(first.stdout).toContain(`${file.size} bytes given back to tenant ${tenant} (upload ${uploadId})`);
    const again = await runCli(['delete', tenant, '--bucket', 'uploads', '--key', key], stack.env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`nothing at s3://uploads/${key}; nothing deleted, no quota given back`);
  });

  it('reports a failed upload with exit code 1: the failed step, the cause and the compensations', async () => {
    const missing = path.join(tmp.dir, 'missing.bin');
    const run = await runCli(
      ['upload', missing, '--bucket', 'uploads', '--key', `cli/${uniqueId('missing')}.bin`, '--tenant', tenant, '--no-progress'],
      stack.env,
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('upload failed');
    expect(run.stderr).toMatch(/failed step\s+inspect-source/);
    expect(run.stderr).toMatch(/cause\s+SourceNotFound: /);
    expect(run.stderr).toContain('compensations: none needed');
    expect(run.stderr).toMatch(/workflow id\s+upload:/);
  });

  it.each([
    ['the machine’s Redis', 'redis://127.0.0.1:6379'],
    ['an unreachable Redis (falls back to polling)', 'redis://127.0.0.1:1'],
  ])('with UPLOAD_SAGA_PROGRESS_REDIS_URL on %s, follows the upload to its end and exits 0', async (_name, url) => {
    const small = await makeRandomFile(tmp.dir, `${uniqueId('bus')}.bin`, 6 * MiB);
    const busKey = `cli/${uniqueId('bus')}.bin`;
    const run = await runCli(
      ['upload', small.path, '--bucket', 'uploads', '--key', busKey, '--tenant', tenant, '--part-size', '5MiB'],
      { ...stack.env, UPLOAD_SAGA_PROGRESS_REDIS_URL: url },
      60_000,
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`uploaded s3://uploads/${busKey}`);
    expect(await sha256OfObject('uploads', busKey)).toBe(small.sha256);
  });

  it('rejects an invalid bucket name with exit code 2, naming the field, before anything starts', async () => {
    const run = await runCli(
      ['upload', path.join(tmp.dir, 'whatever.bin'), '--bucket', 'Not_A_Bucket', '--key', 'k', '--tenant', tenant],
      stack.env,
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('invalid upload request');
    expect(run.stderr).toMatch(/destination\.bucket: .*lowercase/);
    expect(run.stdout).toBe('');
  });

  it('fails the worker command on a bad environment with exit code 1, naming the variable', async () => {
    const run = await runCli(['worker'], { ...stack.env, TEMPORAL_ADDRESS: 'nonsense' }, 30_000);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('invalid configuration');
    expect(run.stderr).toMatch(/TEMPORAL_ADDRESS: must be host:port/);
  });

  it('lists every configuration variable in --help', async () => {
    const run = await runCli(['--help'], {});
    expect(run.code).toBe(0);
    for (const variable of CONFIG_VARIABLES) expect(run.stdout).toContain(variable.name);
  });
});

describe('CLI building blocks', () => {
  it('derives a valid upload id from any file name', () => {
    for (const name of ['/data/My Video (final).mp4', '/x/....', '/x/日本語.bin', `/x/${'a'.repeat(300)}.iso`, '/x/-leading-dash']) {
      const uploadId = defaultUploadId(name);
      expect(uploadId).toMatch(/-[0-9a-f]{6}$/);
      const problems = findRequestProblems({
        uploadId,
        tenant: 't',
        source: { type: 'file', path: name },
        destination: { bucket: 'uploads', key: 'k' },
      });
      expect(problems, `${name} → ${uploadId}`).toEqual([]);
    }
    expect(defaultUploadId('/data/My Video (final).mp4', { random: () => Buffer.from('abcdef', 'hex') })).toBe(
      'my-video-final-.mp4-abcdef',
    );
  });

  it('reads the upload source as a URL or an absolute file path', () => {
    expect(sourceFromArgument('https://example.com/data/big.iso?token=x')).toEqual({
      type: 'url',
      url: 'https://example.com/data/big.iso?token=x',
    });
    expect(sourceFromArgument('big.iso')).toEqual({ type: 'file', path: path.resolve('big.iso') });
    expect(sourceName(sourceFromArgument('https://example.com/data/big.iso?token=x'))).toBe('big.iso');
    expect(sourceName(sourceFromArgument('https://example.com/'))).toBe('example.com');
  });

  it('parses sizes with the config module’s units and key=value metadata', () => {
    expect(parseSizeOption('8MiB')).toBe(8 * MiB);
    expect(parseSizeOption('5000000')).toBe(5_000_000);
    expect(() => parseSizeOption('8 bananas')).toThrow(/not a size/);
    expect(collectKeyValue('b=2=3', collectKeyValue('a=1'))).toEqual({ a: '1', b: '2=3' });
    expect(() => collectKeyValue('novalue')).toThrow(/key=value/);
  });

  it('measures the rate over a time window and derives the ETA from it', () => {
    let now = 0;
    const meter = new RateMeter({ windowMs: 5000, now: () => now });
    meter.record(0);
    expect(meter.rate()).toBeUndefined();
    for (now = 1000; now <= 10_000; now += 1000) meter.record(now * 1000); // 1 MB/s
    expect(meter.rate()).toBeCloseTo(1_000_000);
    expect(meter.eta(20_000_000)).toBeCloseTo(10);
  });

  it('renders aligned tables', () => {
    expect(
      renderTable(
        ['A', 'LONGER'],
        [
          ['x', undefined],
          ['yyyy', 'z'],
        ],
      ),
    ).toEqual(['A     LONGER', 'x     -', 'yyyy  z']);
  });

  it('says what the saga undid', () => {
    const report = {
      failedStep: 'upload-parts',
      cause: { type: 'S3.SlowDown', message: 'slow down' },
      cancelled: false,
      afterPivot: false,
      compensations: [
        { step: 'upload-parts', activity: 'cleanupUpload', status: 'compensated' as const },
        {
          step: 'reserve-space',
          activity: 'releaseReservation',
          status: 'failed' as const,
          error: { type: 'Timeout', message: 'timed out' },
        },
      ],
    };
    expect(failureHeadline('failed', report)).toBe('upload failed; some steps could NOT be undone (see below)');
    expect(sagaReportLines(report)).toEqual([
      '  failed step  upload-parts',
      '  cause        S3.SlowDown: slow down',
      '  compensations:',
      '    - upload-parts (cleanupUpload): compensated',
      '    - reserve-space (releaseReservation): failed — Timeout: timed out',
    ]);
    expect(failureHeadline('cancelled', { ...report, cancelled: true, compensations: report.compensations.slice(0, 1) })).toBe(
      'upload cancelled; the saga undid every step it had taken',
    );
  });
});
