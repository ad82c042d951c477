/**
 * An independent S3 client (the AWS CLI, not our code, not the JS SDK) reads back what the saga
 * uploaded: byte-identical, and no incomplete multipart upload left for the key.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient } from '../../src/client';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { connectTestStack, uniqueId, type RunningWorker, type TestStack, startUploadWorker } from '../support/harness';

/** Per-file tenant: a tenant's quota ledger runs on the task queue of the worker that first served it. */
const TENANT = uniqueId('acme');

const run = promisify(execFile);
let stack: TestStack;
let worker: RunningWorker;
let tmp: { dir: string; remove(): Promise<void> };

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  tmp = await makeTempDir();
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

describe('independent client', () => {
  it('the AWS CLI downloads a byte-identical object and finds no incomplete upload', async () => {
    const file = await makeRandomFile(tmp.dir, 'independent.bin', 13 * MiB + 7);
    const key = `independent/${uniqueId('obj')}.bin`;
    const handle = await new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue }).start({
      uploadId: uniqueId('independent'),
      tenant: TENANT,
      source: { type: 'file', path: file.path },
      destination: { bucket: 'uploads', key },
      partSize: 5 * MiB,
    });
    await handle.result();

    const { AWS_CA_BUNDLE: _ca, ...inherited } = process.env;
    const env = {
      ...inherited,
      AWS_ACCESS_KEY_ID: stack.env.S3_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: stack.env.S3_SECRET_ACCESS_KEY,
      AWS_DEFAULT_REGION: stack.env.S3_REGION,
    };
    const endpoint = ['--endpoint-url', stack.env.S3_ENDPOINT!];
    const downloaded = path.join(tmp.dir, 'downloaded.bin');
    await run('aws', [...endpoint, 's3', 'cp', '--only-show-errors', `s3://uploads/${key}`, downloaded], { env });
    expect(
      createHash('sha256')
        .update(await readFile(downloaded))
        .digest('hex'),
    ).toBe(file.sha256);

    const { stdout } = await run(
      'aws',
      [...endpoint, 's3api', 'list-multipart-uploads', '--bucket', 'uploads', '--prefix', key, '--output', 'json'],
      { env },
    );
    expect(JSON.parse(stdout || '{}').Uploads ?? []).toEqual([]);
  });
});
