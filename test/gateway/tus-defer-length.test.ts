/**
 * creation-defer-length on the tus endpoint: uploads whose length is not known at creation, with
 * tus-js-client (`uploadLengthDeferred`) and raw requests, against an in-process gateway, the real
 * worker, Temporal and MinIO. Each test checks the object's bytes in S3 and the tenant's quota
 * ledger independently of the gateway: the tenant's maximum is held while the length is unknown,
 * the declared size from the PATCH that declares it, and the real size is what gets committed.
 * The protocol answers (and the refusals of the bad-input catalogue) are compared with tusd in
 * tus-conformance.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stagingPrefixOf } from '../../src/upload/staging';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { incompleteUploads, keysUnder, objectSha256 } from '../support/s3-inspect';
import { idOf, quotaLedgerOf, startTestGateway, startTus, testTenant, tusRequest, type TestGateway } from './gateway-harness';

const BUCKET = 'uploads';
/** The tenants' maximum upload size: what a deferred upload reserves until its length is declared. */
const MAX_UPLOAD = 64 * MiB;
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
const deferring = testTenant('defer');
const raw = testTenant('defer-raw');
const empty = testTenant('defer-empty');
const expiring = testTenant('defer-expiry');
/** Has 10 MiB of quota: less than the maximum a deferred upload reserves. */
const small = testTenant('defer-small');
let shortExpiry: TestGateway;

beforeAll(async () => {
  stack = await connectTestStack({ env: { UPLOAD_SAGA_QUOTAS: `${small.name}=10MiB` } });
  worker = await startUploadWorker(stack);
  const defaults = { maxUploadBytes: MAX_UPLOAD, requestsPerSecond: 1000, maxBodyStreams: 8 };
  gateway = await startTestGateway(stack, [deferring, raw, empty, small], { overrides: { defaults } });
  shortExpiry = await startTestGateway(stack, [expiring], { overrides: { defaults, uploadExpiryMs: 3_000 } });
});

afterAll(async () => {
  await shortExpiry?.close();
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const ledger = () => quotaLedgerOf(stack);

/** Waits until the tenant's ledger shows `check` (reservations settle by signal, a moment after the saga's step). */
async function ledgerShows<T>(read: () => Promise<T>, wanted: T): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (JSON.stringify(last) === JSON.stringify(wanted)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(last).toEqual(wanted);
}

async function expectNothingLeftBehind(tenant: string, uploadId: string, key: string): Promise<void> {
  expect(await incompleteUploads(stack.s3, BUCKET, key), 'incomplete multipart uploads').toEqual([]);
  expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(tenant, uploadId)), 'staged segments').toEqual([]);
}

describe('tus creation-defer-length', () => {
  it('tus-js-client with uploadLengthDeferred: byte-identical object; the ledger commits the real size', async () => {
    const data = randomBytes(12 * MiB + 123);
    const sent: string[] = [];
    const run = startTus(data, {
      onBeforeRequest: (request) => {
        const length = request.getHeader('Upload-Length');
        const defer = request.getHeader('Upload-Defer-Length');
        sent.push(`${request.getMethod()}${defer ? ` defer=${defer}` : ''}${length ? ` length=${length}` : ''}`);
      },
      endpoint: `${gateway.url}/files`,
      headers: deferring.auth,
      uploadLengthDeferred: true,
      chunkSize: 3 * MiB,
      metadata: { filename: 'deferred.bin' },
    });
    await run.done;
    // The client did defer: no length at creation, declared by the PATCH that sends the last bytes.
    expect(sent).toEqual(['POST defer=1', 'PATCH', 'PATCH', 'PATCH', 'PATCH', `PATCH length=${data.length}`]);
    const uploadId = idOf(run.upload.url);
    const state = await gateway.app.uploads.waitForEnd(deferring.name, uploadId, 30_000);
    expect(state).toMatchObject({ outcome: 'completed', length: data.length, offset: data.length });
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    await expectNothingLeftBehind(deferring.name, uploadId, state.key);
    await ledgerShows(() => ledger().reservation(deferring.name, uploadId), { status: 'committed' });
    await ledgerShows(() => ledger().usage(deferring.name), {
      tenant: deferring.name,
      usedBytes: data.length,
      reservedBytes: 0,
      reservations: 0,
    });
  });

  it('raw requests: the maximum is reserved until a PATCH declares the length, then exactly that; HEAD says Upload-Defer-Length until then', async () => {
    const data = randomBytes(7 * MiB + 5);
    const created = await tusRequest(`${gateway.url}/files`, 'POST', {
      ...raw.auth,
      'Upload-Defer-Length': '1',
      'Upload-Metadata': `filename ${Buffer.from('raw.bin').toString('base64')}`,
    });
    expect(created.status, await created.text()).toBe(201);
    const url = new URL(created.headers.get('location')!, gateway.url).toString();
    const uploadId = idOf(url);
    await ledgerShows(() => ledger().reservation(raw.name, uploadId), { status: 'reserved', bytes: MAX_UPLOAD });

    const first = await tusRequest(url, 'PATCH', { ...raw.auth, 'Upload-Offset': '0' }, data.subarray(0, 3 * MiB));
    expect(first.status, await first.text()).toBe(204);
    const head = await tusRequest(url, 'HEAD', raw.auth);
    expect([
      head.status,
      head.headers.get('upload-offset'),
      head.headers.get('upload-defer-length'),
      head.headers.get('upload-length'),
    ]).toEqual([200, String(3 * MiB), '1', null]);

    // The second PATCH declares the length and sends more (not all) of it.
    const second = await tusRequest(
      url,
      'PATCH',
      { ...raw.auth, 'Upload-Offset': String(3 * MiB), 'Upload-Length': String(data.length) },
      data.subarray(3 * MiB, 6 * MiB),
    );
    expect(second.status, await second.text()).toBe(204);
    // Declared: the reservation is the real size from the answer on, not the maximum.
    expect(await ledger().reservation(raw.name, uploadId)).toEqual({ status: 'reserved', bytes: data.length });
    const after = await tusRequest(url, 'HEAD', raw.auth);
    expect([after.headers.get('upload-length'), after.headers.get('upload-defer-length')]).toEqual([String(data.length), null]);

    const last = await tusRequest(url, 'PATCH', { ...raw.auth, 'Upload-Offset': String(6 * MiB) }, data.subarray(6 * MiB));
    expect(last.status, await last.text()).toBe(204);
    const state = await gateway.app.uploads.waitForEnd(raw.name, uploadId, 30_000);
    expect(state).toMatchObject({ outcome: 'completed', length: data.length });
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    await expectNothingLeftBehind(raw.name, uploadId, state.key);
    await ledgerShows(() => ledger().usage(raw.name), { tenant: raw.name, usedBytes: data.length, reservedBytes: 0, reservations: 0 });
  });

  it('a length declared by an empty PATCH after all bytes were sent, and a zero-byte upload, complete', async () => {
    const data = randomBytes(2 * MiB);
    const create = async () => {
      const created = await tusRequest(`${gateway.url}/files`, 'POST', { ...empty.auth, 'Upload-Defer-Length': '1' });
      expect(created.status, await created.text()).toBe(201);
      return new URL(created.headers.get('location')!, gateway.url).toString();
    };
    const url = await create();
    expect((await tusRequest(url, 'PATCH', { ...empty.auth, 'Upload-Offset': '0' }, data)).status).toBe(204);
    const declared = await tusRequest(url, 'PATCH', {
      ...empty.auth,
      'Upload-Offset': String(data.length),
      'Upload-Length': String(data.length),
      'Content-Type': 'application/offset+octet-stream',
    });
    expect([declared.status, declared.headers.get('upload-offset')], await declared.text()).toEqual([204, String(data.length)]);
    const state = await gateway.app.uploads.waitForEnd(empty.name, idOf(url), 30_000);
    expect(state.outcome).toBe('completed');
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));

    const zero = await create();
    const ended = await tusRequest(zero, 'PATCH', {
      ...empty.auth,
      'Upload-Offset': '0',
      'Upload-Length': '0',
      'Content-Type': 'application/offset+octet-stream',
    });
    expect(ended.status, await ended.text()).toBe(204);
    const zeroState = await gateway.app.uploads.waitForEnd(empty.name, idOf(zero), 30_000);
    expect(zeroState).toMatchObject({ outcome: 'completed', length: 0 });
    expect(await objectSha256(stack.s3, BUCKET, zeroState.key)).toBe(sha256(Buffer.alloc(0)));
    await ledgerShows(() => ledger().usage(empty.name), { tenant: empty.name, usedBytes: data.length, reservedBytes: 0, reservations: 0 });
  });

  it('a deferred upload that expires gives back the maximum it held and leaves nothing in S3', async () => {
    const created = await tusRequest(`${shortExpiry.url}/files`, 'POST', { ...expiring.auth, 'Upload-Defer-Length': '1' });
    expect(created.status, await created.text()).toBe(201);
    const url = new URL(created.headers.get('location')!, shortExpiry.url).toString();
    const uploadId = idOf(url);
    expect((await tusRequest(url, 'PATCH', { ...expiring.auth, 'Upload-Offset': '0' }, randomBytes(MiB))).status).toBe(204);
    expect(await ledger().reservation(expiring.name, uploadId)).toEqual({ status: 'reserved', bytes: MAX_UPLOAD });
    const ended = await shortExpiry.app.uploads.waitForEnd(expiring.name, uploadId, 60_000);
    expect(ended.outcome).toBe('expired');
    await expectNothingLeftBehind(expiring.name, uploadId, ended.key);
    await ledgerShows(() => ledger().reservation(expiring.name, uploadId), { status: 'released' });
    await ledgerShows(() => ledger().usage(expiring.name), { tenant: expiring.name, usedBytes: 0, reservedBytes: 0, reservations: 0 });
  });

  it('a tenant with less quota left than the maximum cannot send a deferred upload (413 at its first PATCH, nothing written), while a declared one fits', async () => {
    // The creation is answered once the saga started; the refusal comes with the first PATCH, before any byte is written.
    const created = await tusRequest(`${gateway.url}/files`, 'POST', { ...small.auth, 'Upload-Defer-Length': '1' });
    expect(created.status, await created.text()).toBe(201);
    const url = new URL(created.headers.get('location')!, gateway.url).toString();
    const refused = await tusRequest(url, 'PATCH', { ...small.auth, 'Upload-Offset': '0' }, randomBytes(MiB));
    expect([refused.status, await refused.text()]).toEqual([
      413,
      expect.stringMatching(
        new RegExp(`tenant ${small.name} has not enough quota left.*reserves the maximum upload size, ${MAX_UPLOAD} bytes`),
      ),
    ]);
    const ended = await gateway.app.uploads.waitForEnd(small.name, idOf(url), 30_000);
    expect(ended.failure?.cause.type).toBe('QuotaExceeded');
    await expectNothingLeftBehind(small.name, idOf(url), ended.key);
    expect(await ledger().reservation(small.name, idOf(url))).toEqual({ status: 'unknown' });

    const declared = await tusRequest(`${gateway.url}/files`, 'POST', { ...small.auth, 'Upload-Length': String(MiB) });
    expect(declared.status, await declared.text()).toBe(201);
    const uploadId = idOf(declared.headers.get('location'));
    // HEAD answers once the saga opened the upload, its space reserved.
    expect((await tusRequest(new URL(declared.headers.get('location')!, gateway.url).toString(), 'HEAD', small.auth)).status).toBe(200);
    expect(await ledger().reservation(small.name, uploadId)).toEqual({ status: 'reserved', bytes: MiB });
    expect(await ledger().usage(small.name)).toMatchObject({ reservedBytes: MiB, reservations: 1 });
  });
});
