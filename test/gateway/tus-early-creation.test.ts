/**
 * A tus creation is answered once Temporal started the upload's saga, before the saga reserved
 * space and opened the multipart upload: the first PATCH is received meanwhile and written once the
 * saga opened it. Real worker, Temporal and MinIO; the worker is started late on purpose, so that
 * the saga cannot have opened anything when the creation is answered.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openedAsExpected } from '../../src/gateway/tus-state-cache';
import { stagingPrefixOf } from '../../src/upload/staging';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { incompleteUploads, keysUnder, multipartKeysUnder, objectSha256 } from '../support/s3-inspect';
import { createTusUpload, idOf, quotaLedgerOf, startTestGateway, testTenant, tusRequest, type TestGateway } from './gateway-harness';

const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker | undefined;
let gateway: TestGateway;
let other: TestGateway;
const tenant = testTenant('early');
const small = testTenant('early-small');
const whenOpen = testTenant('early-when-open');

beforeAll(async () => {
  stack = await connectTestStack({ env: { UPLOAD_SAGA_QUOTAS: `${small.name}=4MiB,${whenOpen.name}=4MiB` } });
  gateway = await startTestGateway(stack, [tenant, small]);
  // A second replica, which did not see the creations.
  other = await startTestGateway(stack, [tenant, small]);
});

afterAll(async () => {
  await other?.close();
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('tus creation answered once the saga started', () => {
  it('answers POST with no worker running; the PATCH sent meanwhile waits, and is written once a worker opens the upload', async () => {
    const data = randomBytes(23 * MiB + 7);
    const url = await createTusUpload(gateway, tenant, data.length);
    const uploadId = idOf(url);
    // The saga has not run a step: nothing is open in S3 for the tenant.
    const prefix = gateway.app.uploads.keyPrefixOf(tenant.name);
    expect(await multipartKeysUnder(stack.s3, BUCKET, prefix)).toEqual([]);

    // More than a part: the body is received into part buffers while the saga cannot open yet.
    let answered = false;
    const patch = tusRequest(url, 'PATCH', { ...tenant.auth, 'Upload-Offset': '0' }, data).finally(() => (answered = true));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(answered).toBe(false);
    expect(await multipartKeysUnder(stack.s3, BUCKET, prefix)).toEqual([]);

    worker = await startUploadWorker(stack);
    const response = await patch;
    expect(response.status, await response.text()).toBe(204);
    expect(response.headers.get('upload-offset')).toBe(String(data.length));
    const state = await gateway.app.uploads.waitForEnd(tenant.name, uploadId, 60_000);
    expect(state.outcome).toBe('completed');
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
  });

  it('a HEAD and a PATCH at a replica that did not create the upload wait until it is open', async () => {
    worker ??= await startUploadWorker(stack);
    const data = randomBytes(6 * MiB + 1);
    const url = await createTusUpload(gateway, tenant, data.length);
    const elsewhere = url.replace(gateway.url, other.url);
    const head = await tusRequest(elsewhere, 'HEAD', tenant.auth);
    expect([head.status, head.headers.get('upload-offset'), head.headers.get('upload-length')]).toEqual([200, '0', String(data.length)]);
    const patched = await tusRequest(elsewhere, 'PATCH', { ...tenant.auth, 'Upload-Offset': '0' }, data);
    expect(patched.status, await patched.text()).toBe(204);
    const state = await other.app.uploads.waitForEnd(tenant.name, idOf(url), 60_000);
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
  });

  it("the state a creation expects is the workflow's once open, but for the multipart upload id and the clock", async () => {
    worker ??= await startUploadWorker(stack);
    const requests = [
      { length: 7 * MiB, filename: 'a.bin', metadata: { note: 'x' }, tusMetadata: 'filename YS5iaW4=' },
      { maxLength: 64 * MiB, contentType: 'text/plain' },
      { length: MiB, concat: 'partial' as const },
    ];
    for (const request of requests) {
      const started = await gateway.app.uploads.createStarted({ tenant: tenant.name, mode: 'tus', ...request });
      const opened = await started.opened;
      expect(opened.multipartUploadId).toEqual(expect.any(String));
      expect({ ...started.state, createdAt: 0 }).toEqual({ ...opened, multipartUploadId: undefined, createdAt: 0 });
      expect(openedAsExpected(opened, started.state)).toBe(true);
      expect(openedAsExpected({ ...opened, partSize: opened.partSize + 1 }, started.state)).toBe(false);
      expect((await tusRequest(`${gateway.url}/files/${opened.uploadId}`, 'DELETE', tenant.auth)).status).toBe(204);
    }
  });

  it('an upload over the quota left is refused at its first PATCH (413, why), before a byte is written; nothing stays behind', async () => {
    worker ??= await startUploadWorker(stack);
    const url = await createTusUpload(gateway, small, 5 * MiB);
    const uploadId = idOf(url);
    const refused = await tusRequest(url, 'PATCH', { ...small.auth, 'Upload-Offset': '0' }, randomBytes(5 * MiB));
    expect([refused.status, await refused.text()]).toEqual([
      413,
      expect.stringMatching(new RegExp(`tenant ${small.name} has not enough quota left: .*the upload needs ${5 * MiB}`)),
    ]);
    const ended = await gateway.app.uploads.waitForEnd(small.name, uploadId, 30_000);
    expect(ended.failure?.cause.type).toBe('QuotaExceeded');
    expect(await incompleteUploads(stack.s3, BUCKET, ended.key), 'incomplete multipart uploads').toEqual([]);
    expect(await keysUnder(stack.s3, BUCKET, ended.key), 'objects').toEqual([]);
    expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(small.name, uploadId)), 'staged segments').toEqual([]);
    expect(await quotaLedgerOf(stack).reservation(small.name, uploadId)).toEqual({ status: 'unknown' });
    // Afterwards HEAD says the upload is gone, and why.
    const head = await tusRequest(url, 'HEAD', small.auth);
    expect(head.status).toBe(410);
    const again = await tusRequest(url, 'PATCH', { ...small.auth, 'Upload-Offset': '0' }, randomBytes(1024));
    expect([again.status, await again.text()]).toEqual([410, expect.stringContaining('QuotaExceeded: tenant')]);
    // An upload that fits is still accepted.
    const fits = randomBytes(3 * MiB);
    const fitting = await createTusUpload(gateway, small, fits.length);
    expect((await tusRequest(fitting, 'PATCH', { ...small.auth, 'Upload-Offset': '0' }, fits)).status).toBe(204);
  });

  it('with UPLOAD_SAGA_GATEWAY_TUS_CREATE_WHEN_OPEN a creation answers once open: a quota refusal at the POST, the multipart upload there at the 201', async () => {
    worker ??= await startUploadWorker(stack);
    const atOpen = await startTestGateway(stack, [whenOpen], { env: { UPLOAD_SAGA_GATEWAY_TUS_CREATE_WHEN_OPEN: 'true' } });
    try {
      const post = (length: number) =>
        tusRequest(`${atOpen.url}/files`, 'POST', {
          ...whenOpen.auth,
          'Upload-Length': String(length),
          'Upload-Metadata': `filename ${Buffer.from('a.bin').toString('base64')}`,
        });
      const refused = await post(5 * MiB);
      expect([refused.status, await refused.text()]).toEqual([
        413,
        expect.stringMatching(new RegExp(`tenant ${whenOpen.name} has not enough quota left: .*the upload needs ${5 * MiB}`)),
      ]);
      const data = randomBytes(3 * MiB);
      const created = await post(data.length);
      expect(created.status, await created.text()).toBe(201);
      const url = new URL(created.headers.get('location')!, atOpen.url).toString();
      // Open at the 201, before anything asked the workflow: its default key is <prefix><id>/<file name>.
      const key = `${atOpen.app.uploads.keyPrefixOf(whenOpen.name)}${idOf(url)}/a.bin`;
      expect(await incompleteUploads(stack.s3, BUCKET, key), 'multipart uploads at the 201').toHaveLength(1);
      expect((await tusRequest(url, 'PATCH', { ...whenOpen.auth, 'Upload-Offset': '0' }, data)).status).toBe(204);
      const state = await atOpen.app.uploads.waitForEnd(whenOpen.name, idOf(url), 30_000);
      expect(state.key).toBe(key);
      expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    } finally {
      await atOpen.close();
    }
  });
});
