/**
 * The Uppy S3 multipart endpoints over HTTP, driven the way @uppy/aws-s3 v6 drives a Companion
 * endpoint (same paths, bodies and answers it reads), against in-process gateways, the real worker,
 * Temporal and MinIO. Parts go straight to MinIO with the presigned URLs. What S3 holds afterwards
 * is checked independently (test/support/s3-inspect.ts), and the quota ledger for reservations.
 * The browser itself (Uppy in Chromium) is test/gateway/browser.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { PutBucketCorsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { progressPlugin } from '../../src/gateway/progress';
import { s3MultipartPlugin } from '../../src/gateway/s3-multipart';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { incompleteUploads, objectExists, objectSha256 } from '../support/s3-inspect';
import { CompanionClient, sendParts, sessionClient } from './companion-client';
import { startTestGateway, testTenant, type TestGateway } from './gateway-harness';
import { BROWSER_UPLOAD_CORS, documentedCapabilities } from '../support/store-probes';
import { itStoreIndependent } from '../support/store-independent';

const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
const acme = testTenant('s3acme');
const beta = testTenant('s3beta');

const plugins = () => [s3MultipartPlugin(), progressPlugin()];

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  gateway = await startTestGateway(stack, [acme, beta], { plugins: plugins() });
});

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const ledger = () =>
  new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });

describe('S3 presigned multipart, as @uppy/aws-s3 drives a Companion endpoint', () => {
  it('uploads 12 MiB in three presigned parts: byte-identical under the tenant prefix, nothing left behind, quota committed', async () => {
    const client = await sessionClient(gateway, acme);
    const data = randomBytes(12 * MiB);
    const { uploadId, key } = await client.create('twelve.bin', {
      name: 'twelve.bin',
      type: 'application/x-test',
      'upload-length': String(data.length),
      project: 'apollo',
    });
    expect(key).toBe(`${acme.name}/${uploadId}/twelve.bin`);
    // The declared length was reserved before any byte moved.
    expect(await ledger().reservation(acme.name, uploadId)).toMatchObject({ status: 'reserved', bytes: 12 * MiB });

    const parts = await sendParts(client, uploadId, key, data);
    const listed = await client.list(uploadId, key);
    expect(listed.status).toBe(200);
    expect((listed.json as { PartNumber: number; Size: number }[]).map((p) => [p.PartNumber, p.Size])).toEqual([
      [1, 5 * MiB],
      [2, 5 * MiB],
      [3, 2 * MiB],
    ]);

    const completed = await client.complete(uploadId, key, parts);
    expect(completed.status).toBe(200);
    expect(completed.json).toMatchObject({ key, bucket: BUCKET, size: 12 * MiB, location: `${stack.config.s3.endpoint}/${BUCKET}/${key}` });
    expect((completed.json as { etag: string }).etag).toMatch(/-3"?$/);

    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(sha256(data));
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
    const state = await gateway.app.uploads.state(acme.name, uploadId);
    expect(state).toMatchObject({
      mode: 'presigned',
      outcome: 'completed',
      metadata: { project: 'apollo' },
      contentType: 'application/x-test',
    });
    expect(await ledger().reservation(acme.name, uploadId)).toMatchObject({ status: 'committed' });
    // The gateway's metrics saw it: created, then completed, by protocol (the file's first upload).
    const metrics = await gateway.app.metrics.metrics();
    expect(metrics).toContain('upload_saga_gateway_uploads_total{protocol="s3-multipart",outcome="created"} 1\n');
    expect(metrics).toContain('upload_saga_gateway_uploads_total{protocol="s3-multipart",outcome="completed"} 1\n');
  });

  it('answers a complete sent again (its first answer lost) with the stored object, not 404', async () => {
    const client = await sessionClient(gateway, acme);
    const data = randomBytes(1 * MiB);
    const { uploadId, key } = await client.create('again.bin', { 'upload-length': String(data.length) });
    const parts = await sendParts(client, uploadId, key, data);
    const first = await client.complete(uploadId, key, parts);
    expect(first.status).toBe(200);
    // The workflow has closed: the server answers an update to it as to a missing workflow.
    const again = await client.complete(uploadId, key, parts);
    expect(again.status, JSON.stringify(again.json)).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(sha256(data));
  });

  it('signs part URLs for the public endpoint, valid for at most 15 minutes and only for UploadPart', async () => {
    const client = await sessionClient(gateway, acme);
    const { uploadId, key } = await client.create('signed.bin');
    const url = new URL(await client.sign(uploadId, key, 7));
    expect(url.origin).toBe(new URL(stack.config.s3.endpoint!).origin);
    expect(url.pathname).toBe(`/${BUCKET}/${key}`);
    expect(url.searchParams.get('partNumber')).toBe('7');
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(900);
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    // The URL carries neither the secret key nor a checksum a browser could not compute.
    expect(url.href).not.toContain(stack.config.s3.credentials!.secretAccessKey);
    expect([...url.searchParams.keys()].filter((k) => /checksum/i.test(k))).toEqual([]);
    // A signature for a part is no signature for anything else on the key.
    const get = await fetch(url, { method: 'GET' });
    expect(get.status).toBe(403);
    await client.abort(uploadId, key);
  });

  itStoreIndependent(
    'signs for UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT when browsers reach S3 elsewhere than the gateway does',
    async () => {
      const behindProxy = await startTestGateway(stack, [acme], {
        plugins: plugins(),
        overrides: { s3PublicEndpoint: 'https://s3.public.example:9443' },
      });
      try {
        const client = await sessionClient(behindProxy, acme);
        const { uploadId, key } = await client.create('proxied.bin');
        const url = new URL(await client.sign(uploadId, key, 1));
        expect(url.origin).toBe('https://s3.public.example:9443');
        expect(url.pathname).toBe(`/${BUCKET}/${key}`);
        const completed = await client.complete(uploadId, key, [{ PartNumber: 1, ETag: 'none-sent' }]);
        expect(completed.status).toBe(422);
      } finally {
        await behindProxy.close();
      }
    },
  );

  it('lets a browser on another origin PUT a part and read its ETag: CORS for any origin, by default (MinIO) or by a bucket rule (versitygw)', async () => {
    // A store that answers no CORS by default gets the bucket rule a deployment would set (docs/reference/store-capabilities.md).
    if (!documentedCapabilities(inject('s3Store'))['cors-any-origin']) {
      await stack.s3.send(new PutBucketCorsCommand({ Bucket: BUCKET, CORSConfiguration: BROWSER_UPLOAD_CORS }));
    }
    const client = await sessionClient(gateway, acme);
    const { uploadId, key } = await client.create('cors.bin');
    const url = await client.sign(uploadId, key, 1);
    const origin = 'http://page.example:8080';
    const preflight = await fetch(url, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'PUT', 'Access-Control-Request-Headers': 'content-type' },
    });
    expect(preflight.status).toBeLessThan(300);
    // MinIO echoes the origin, a bucket rule for any origin answers `*`: both let a browser without credentials through.
    expect([origin, '*']).toContain(preflight.headers.get('access-control-allow-origin'));
    expect(preflight.headers.get('access-control-allow-methods')).toContain('PUT');
    const put = await fetch(url, {
      method: 'PUT',
      body: randomBytes(1024),
      headers: { Origin: origin, 'Content-Type': 'application/octet-stream' },
    });
    expect(put.status).toBe(200);
    expect([origin, '*']).toContain(put.headers.get('access-control-allow-origin'));
    expect(
      put.headers
        .get('access-control-expose-headers')
        ?.split(/\s*,\s*/)
        .map((h) => h.toLowerCase()),
    ).toContain('etag');
    await client.abort(uploadId, key);
  });

  itStoreIndependent(
    'answers only for the caller’s uploads: another tenant gets 404, a foreign key or a bad part number 400, no credentials 401',
    async () => {
      const client = await sessionClient(gateway, acme);
      const { uploadId, key } = await client.create('mine.bin');
      const other = await sessionClient(gateway, beta);
      expect((await other.request('GET', `/multipart/${uploadId}/1?${new URLSearchParams({ key })}`)).status).toBe(404);
      expect((await other.list(uploadId, key)).status).toBe(404);
      expect((await other.complete(uploadId, key, [{ PartNumber: 1, ETag: 'x' }])).status).toBe(404);
      expect((await other.abort(uploadId, key)).status).toBe(404);

      const foreignKey = await client.request('GET', `/multipart/${uploadId}/1?${new URLSearchParams({ key: `${beta.name}/x/y.bin` })}`);
      expect(foreignKey).toMatchObject({
        status: 400,
        json: { error: 'InvalidRequest', message: expect.stringContaining('is not the key of upload') },
      });
      for (const bad of ['0', '10001', 'x']) {
        const answer = await client.request('GET', `/multipart/${uploadId}/${bad}?${new URLSearchParams({ key })}`);
        expect(answer, bad).toMatchObject({
          status: 400,
          json: { message: expect.stringContaining('part number must be a whole number from 1 to 10000') },
        });
      }

      const unknownSession = new CompanionClient(`${gateway.url}/uppy/session/${'A'.repeat(43)}`);
      expect(await unknownSession.list(uploadId, key)).toMatchObject({ status: 401, json: { error: 'Unauthorized' } });
      const noBearer = new CompanionClient(`${gateway.url}/uppy`);
      expect((await noBearer.request('POST', '/multipart', { filename: 'x.bin' })).status).toBe(401);
      expect((await fetch(`${gateway.url}/uppy/sessions`, { method: 'POST' })).status).toBe(401);
      // The same routes answer with the bearer header instead of a session (Uppy v5's `endpoint` + `headers`).
      const bearer = new CompanionClient(`${gateway.url}/uppy`, acme.auth);
      expect((await bearer.list(uploadId, key)).status).toBe(200);
      await client.abort(uploadId, key);
    },
  );

  itStoreIndependent('refuses a declared length above the tenant’s maximum upload size with 413 before anything is created', async () => {
    const small = await startTestGateway(stack, [acme], {
      plugins: plugins(),
      overrides: { defaults: { ...gateway.config.defaults, maxUploadBytes: 10 * MiB } },
    });
    try {
      const client = await sessionClient(small, acme);
      const answer = await client.request('POST', '/multipart', { filename: 'big.bin', metadata: { 'upload-length': String(11 * MiB) } });
      expect(answer).toMatchObject({ status: 413, json: { error: 'UploadTooLarge' } });
    } finally {
      await small.close();
    }
  });

  itStoreIndependent(
    'refuses parts of different sizes before the merge on a worker whose store requires equal parts (S3_EQUAL_PARTS): 422, compensated',
    async () => {
      const equalStack = await connectTestStack({ env: { S3_EQUAL_PARTS: 'true' } });
      const equalWorker = await startUploadWorker(equalStack);
      const tenant = testTenant('s3equal');
      const equalGateway = await startTestGateway(equalStack, [tenant], { plugins: plugins() });
      try {
        const client = await sessionClient(equalGateway, tenant);
        const { uploadId, key } = await client.create('unequal.bin'); // no length declared: part URLs bind no size
        const sizes = [6 * MiB, 5 * MiB, 10];
        const parts = [];
        for (const [i, size] of sizes.entries()) {
          parts.push({ PartNumber: i + 1, ETag: await client.putPart(uploadId, key, i + 1, randomBytes(size)) });
        }
        const answer = await client.complete(uploadId, key, parts);
        expect(answer).toMatchObject({ status: 422, json: { error: 'UploadFailed', message: expect.stringContaining('PartsMismatch') } });
        expect((answer.json as { message: string }).message).toContain(
          `part 2 has ${5 * MiB} bytes where part 1 has ${6 * MiB}: the store requires every part but the last to have the same size (S3_EQUAL_PARTS)`,
        );
        expect((await equalGateway.app.uploads.state(tenant.name, uploadId)).outcome).toBe('compensated');
        expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
        expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
      } finally {
        await equalGateway.close();
        await equalWorker.stop();
        await equalStack.close();
      }
    },
  );

  it('fails an upload whose reported parts are not the ones in S3 (422), and compensates it', async () => {
    const client = await sessionClient(gateway, acme);
    const data = randomBytes(6 * MiB);
    const { uploadId, key } = await client.create('forged.bin', { 'upload-length': String(data.length) });
    const parts = await sendParts(client, uploadId, key, data);
    const forged = parts.map((p, i) => (i === 0 ? { ...p, ETag: 'ffffffffffffffffffffffffffffffff' } : p));
    const answer = await client.complete(uploadId, key, forged);
    expect(answer).toMatchObject({ status: 422, json: { error: 'UploadFailed', message: expect.stringContaining('PartsMismatch') } });
    const state = await gateway.app.uploads.state(acme.name, uploadId);
    expect(state.outcome).toBe('compensated');
    expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
    expect(await ledger().reservation(acme.name, uploadId)).toMatchObject({ status: 'released' });
  });

  it('aborts on DELETE: the saga is cancelled, the multipart upload aborted, the reservation released', async () => {
    const client = await sessionClient(gateway, acme);
    const { uploadId, key } = await client.create('aborted.bin', { 'upload-length': String(10 * MiB) });
    await client.putPart(uploadId, key, 1, randomBytes(5 * MiB));
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toHaveLength(1);
    const aborted = () => gateway.app.metrics.uploads.get().then((m) => m.values.find((v) => v.labels.outcome === 'aborted')?.value ?? 0);
    const abortedBefore = await aborted();
    const answer = await client.abort(uploadId, key);
    expect(answer).toMatchObject({ status: 200, json: { outcome: 'cancelled' } });
    expect(await aborted()).toBe(abortedBefore + 1);
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
    expect(await ledger().reservation(acme.name, uploadId)).toMatchObject({ status: 'released' });
    // Gone for good: no more signatures.
    expect((await client.request('GET', `/multipart/${uploadId}/2?${new URLSearchParams({ key })}`)).status).toBe(410);
  });

  it('expires an abandoned upload (created, one part signed and sent, then nothing): multipart upload aborted, reservation released', async () => {
    const abandoning = testTenant('s3abandon');
    const short = await startTestGateway(stack, [abandoning], { plugins: plugins(), overrides: { uploadExpiryMs: 4000 } });
    try {
      const client = await sessionClient(short, abandoning);
      const { uploadId, key } = await client.create('abandoned.bin', { 'upload-length': String(12 * MiB) });
      // A part URL never outlives the upload.
      const url = new URL(await client.sign(uploadId, key, 1));
      expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(4);
      expect((await fetch(url, { method: 'PUT', body: randomBytes(5 * MiB) })).status).toBe(200);
      expect(await incompleteUploads(stack.s3, BUCKET, key)).toHaveLength(1);
      expect((await ledger().usage(abandoning.name)).reservedBytes).toBe(12 * MiB);

      const state = await short.app.uploads.waitForEnd(abandoning.name, uploadId, 60_000);
      expect(state.outcome).toBe('expired');
      expect(state.failure?.compensations.map((c) => `${c.step}:${c.status}`)).toEqual([
        'open-multipart:compensated',
        'reserve-space:compensated',
      ]);
      expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
      expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
      expect(await ledger().usage(abandoning.name)).toMatchObject({ reservedBytes: 0, usedBytes: 0 });
      // The client coming back finds it gone.
      expect((await client.request('GET', `/multipart/${uploadId}/2?${new URLSearchParams({ key })}`)).status).toBe(410);
    } finally {
      await short.close();
    }
  });
});
