/**
 * The threads that hash the gateway's parts for their signature over plain HTTP (the test store is
 * plain HTTP), seen through tus: when they die, the PATCH fails with a 500 at once instead of
 * hanging, the log says why, and the client's retry from HEAD's offset completes the upload with
 * the right bytes (real worker, Temporal and MinIO; the threads are replaced, S3 is not).
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashThreads, setHashThreads } from '../../src/s3/hash-threads';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { objectSha256 } from '../support/s3-inspect';
import { collectingLogger, createTusUpload, idOf, startTestGateway, testTenant, tusRequest, type TestGateway } from './gateway-harness';

const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
const tenant = testTenant('hashthreads');
const gatewayLines: string[] = [];

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  gateway = await startTestGateway(stack, [tenant], {
    loggerInstance: collectingLogger('error', gatewayLines),
  });
});

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
});

describe('hashing threads behind tus', () => {
  it('fail a PATCH whose parts cannot be hashed with a 500 (no hang), and the retry from HEAD completes the upload', async () => {
    const data = randomBytes(12 * MiB + 5);
    const upload = await createTusUpload(gateway, tenant, data.length);
    const dying = `
      const { parentPort } = require('node:worker_threads');
      parentPort.on('message', () => process.exit(3));`;
    const dead = new HashThreads({ threads: 2, source: dying });
    const previous = setHashThreads(dead);
    try {
      const failed = await tusRequest(upload, 'PATCH', { ...tenant.auth, 'Upload-Offset': '0' }, data);
      expect(failed.status).toBe(500);
      expect(await failed.text()).toMatch(/the gateway failed; see its log/);
      expect(gatewayLines.join('\n')).toMatch(/the thread computing a part's SHA-256 exited \(code 3\); the part was not sent, retry/);
    } finally {
      setHashThreads(previous);
      await dead.close();
    }
    // No part was sent: the client resumes from where HEAD says the upload stands.
    const head = await tusRequest(upload, 'HEAD', tenant.auth);
    const offset = Number(head.headers.get('upload-offset'));
    expect(offset).toBe(0);
    const retried = await tusRequest(upload, 'PATCH', { ...tenant.auth, 'Upload-Offset': String(offset) }, data.subarray(offset));
    expect(retried.status, await retried.text()).toBe(204);
    const state = await gateway.app.uploads.waitForEnd(tenant.name, idOf(upload), 30_000);
    expect(state.outcome).toBe('completed');
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(createHash('sha256').update(data).digest('hex'));
  });
});
