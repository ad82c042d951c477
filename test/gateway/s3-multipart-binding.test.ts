/**
 * Presigned multipart that holds its promises, over HTTP against in-process gateways, the real
 * worker, Temporal and MinIO: part URLs that bind the part's size and checksum (S3 refuses any
 * other part at the PUT), parts the client reports finished (verified against ListParts, seen at
 * once by a watcher whose gateway never polls), resuming from what S3 holds with a fresh session,
 * and empty files through Uppy's POST-policy path.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { progressPlugin } from '../../src/gateway/progress';
import { s3MultipartPlugin } from '../../src/gateway/s3-multipart';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { incompleteUploads, objectExists, objectSha256 } from '../support/s3-inspect';
import { putToS3 as put, sessionClient, type CompanionClient } from './companion-client';
import { startTestGateway, testTenant, type TestGateway } from './gateway-harness';
import { openStream } from './progress-stream';

const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker;
/** Its progress streams never poll after their first read: whatever they show later was pushed. */
let gateway: TestGateway;
const acme = testTenant('bindacme');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  gateway = await startTestGateway(stack, [acme], { plugins: [s3MultipartPlugin(), progressPlugin({ pollIntervalMs: 3_600_000 })] });
});

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer, encoding: 'hex' | 'base64' = 'hex') => createHash('sha256').update(data).digest(encoding);
const ledger = () =>
  new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });

/** Abort, then nothing of the upload is left in S3. */
async function abortLeavingNothing(client: CompanionClient, uploadId: string, key: string): Promise<void> {
  expect((await client.abort(uploadId, key)).status).toBe(200);
  expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
  expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
}

describe('part URLs bind the part: S3 refuses at the PUT any part that is not the declared one', () => {
  it('binds each part’s size from the declared length and Uppy’s part rule: another size is refused by S3, the right one accepted', async () => {
    const client = await sessionClient(gateway, acme);
    const data = randomBytes(7 * MiB);
    // What an unmodified Uppy sends: the length in the file meta, nothing per part.
    const created = await client.request('POST', '/multipart', {
      filename: 'seven.bin',
      metadata: { 'upload-length': String(data.length) },
    });
    expect(created).toMatchObject({ status: 200, json: { partSize: 5 * MiB } });
    const { uploadId, key } = created.json as { uploadId: string; key: string };

    const first = await client.signed(uploadId, key, 1);
    const url = new URL(first.url);
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;host');
    expect(first.headers).toEqual({});
    expect(await put(first.url, data.subarray(0, 5 * MiB + 1))).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    expect(await put(first.url, data.subarray(0, 5 * MiB - 1))).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toHaveLength(1);
    expect((await client.list(uploadId, key)).json).toEqual([]);
    const one = await put(first.url, data.subarray(0, 5 * MiB));
    expect(one.status).toBe(200);

    // The last part is bound to what is left: 2 MiB.
    const last = await client.signed(uploadId, key, 2);
    expect(await put(last.url, data.subarray(5 * MiB, 7 * MiB - 1))).toMatchObject({ status: 403 });
    const two = await put(last.url, data.subarray(5 * MiB));
    expect(two.status).toBe(200);

    const completed = await client.complete(uploadId, key, [
      { PartNumber: 1, ETag: one.etag },
      { PartNumber: 2, ETag: two.etag },
    ]);
    expect(completed).toMatchObject({ status: 200, json: { size: data.length } });
    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(sha256(data));
  });

  it('binds a part’s checksum as a signed header: other bytes of the same size and a PUT without the header are refused by S3', async () => {
    const client = await sessionClient(gateway, acme);
    const data = randomBytes(6 * MiB);
    const { uploadId, key } = await client.create('checksummed.bin', { 'upload-length': String(data.length) });
    const part1 = data.subarray(0, 5 * MiB);
    const signed = await client.signed(uploadId, key, 1, { checksum: `sha256 ${sha256(part1, 'base64')}` });
    expect(signed.headers).toEqual({ 'x-amz-checksum-sha256': sha256(part1, 'base64') });
    const url = new URL(signed.url);
    // Signed as a header, not hoisted into the query: the PUT must carry it.
    expect(url.searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;host;x-amz-checksum-sha256');
    expect([...url.searchParams.keys()].filter((k) => /checksum/i.test(k))).toEqual([]);

    // A browser on another origin may send the header: the store's CORS allows it.
    const preflight = await fetch(signed.url, {
      method: 'OPTIONS',
      headers: {
        Origin: 'http://page.example:8080',
        'Access-Control-Request-Method': 'PUT',
        'Access-Control-Request-Headers': 'x-amz-checksum-sha256',
      },
    });
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-amz-checksum-sha256');

    const forged = Buffer.from(part1);
    forged[12345] = forged[12345]! ^ 0xff;
    const wrongBytes = await put(signed.url, forged, signed.headers);
    expect(wrongBytes.status).toBe(400);
    expect(wrongBytes.code).toMatch(/BadDigest|XAmzContentChecksumMismatch|InvalidDigest/);
    // Without the signed header (MinIO: 400 AccessDenied, "missing required header"; AWS: 403).
    const unsignedPut = await put(signed.url, part1);
    expect(unsignedPut.status).toBeOneOf([400, 403]);
    expect(unsignedPut.code).toMatch(/AccessDenied|SignatureDoesNotMatch/);
    // A checksum header of other bytes is not the signed one either.
    expect(await put(signed.url, forged, { 'x-amz-checksum-sha256': sha256(forged, 'base64') })).toMatchObject({ status: 403 });
    expect((await client.list(uploadId, key)).json).toEqual([]);

    const good = await put(signed.url, part1, signed.headers);
    expect(good.status).toBe(200);
    const part2 = data.subarray(5 * MiB);
    const signed2 = await client.signed(uploadId, key, 2, { checksum: `sha256 ${sha256(part2, 'base64')}`, size: String(part2.length) });
    const good2 = await put(signed2.url, part2, signed2.headers);
    expect(good2.status).toBe(200);
    const completed = await client.complete(uploadId, key, [
      { PartNumber: 1, ETag: good.etag },
      { PartNumber: 2, ETag: good2.etag },
    ]);
    expect(completed).toMatchObject({ status: 200, json: { size: data.length } });
    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(sha256(data));
  });

  it('binds the size a client names when no length was declared, and the part size it declared at creation', async () => {
    const client = await sessionClient(gateway, acme);
    const open = await client.create('unknown-length.bin');
    const sized = await client.signed(open.uploadId, open.key, 1, { size: String(MiB) });
    expect(new URL(sized.url).searchParams.get('X-Amz-SignedHeaders')).toBe('content-length;host');
    expect(await put(sized.url, randomBytes(MiB + 1))).toMatchObject({ status: 403 });
    expect(await put(sized.url, randomBytes(MiB))).toMatchObject({ status: 200 });
    await abortLeavingNothing(client, open.uploadId, open.key);

    const declared = await client.request('POST', '/multipart', {
      filename: 'eight-mib-parts.bin',
      metadata: { 'upload-length': String(20 * MiB), 'upload-part-size': String(8 * MiB) },
    });
    expect(declared).toMatchObject({ status: 200, json: { partSize: 8 * MiB } });
    const { uploadId, key } = declared.json as { uploadId: string; key: string };
    expect(await client.signRequest(uploadId, key, 3, { size: String(4 * MiB) })).toMatchObject({ status: 200 });
    expect(await client.signRequest(uploadId, key, 3, { size: String(5 * MiB) })).toMatchObject({
      status: 400,
      json: { message: expect.stringContaining('part 3 of this upload is 4194304 bytes') },
    });
    expect(await client.signRequest(uploadId, key, 4)).toMatchObject({
      status: 400,
      json: { message: expect.stringContaining("beyond the upload's declared length") },
    });
    await abortLeavingNothing(client, uploadId, key);
  });
});

describe('pushed progress: the client reports each finished part', () => {
  it('records a part S3 confirms, and a watcher whose gateway never polls sees each one at once', async () => {
    const client = await sessionClient(gateway, acme);
    const data = randomBytes(12 * MiB);
    const { uploadId, key } = await client.create('pushed.bin', { 'upload-length': String(data.length) });
    const stream = await openStream(gateway, uploadId, acme.auth);
    try {
      await expect.poll(() => stream.events.length).toBeGreaterThan(0);
      expect(stream.events[0]).toMatchObject({ bytes: 0, totalBytes: 12 * MiB });
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (const [n, start, end] of [
        [1, 0, 5 * MiB],
        [2, 5 * MiB, 10 * MiB],
        [3, 10 * MiB, 12 * MiB],
      ] as const) {
        const signed = await client.signed(uploadId, key, n);
        const sent = await put(signed.url, data.subarray(start, end));
        expect(sent.status).toBe(200);
        // The PUT alone shows nothing: this gateway does not poll S3.
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(stream.events.some((e) => e.bytes === end)).toBe(false);
        const reportedAt = Date.now();
        const reported = await client.done(uploadId, key, n, { ETag: `"${sent.etag}"`, size: end - start });
        expect(reported).toMatchObject({ status: 200, json: { partNumber: n, size: end - start, partsCompleted: n, bytesReceived: end } });
        await expect.poll(() => stream.events.some((e) => e.bytes === end), { timeout: 5_000, interval: 10 }).toBe(true);
        expect(Date.now() - reportedAt).toBeLessThan(5_000);
        parts.push({ PartNumber: n, ETag: sent.etag });
      }
      // Reporting a part again changes nothing.
      expect(await client.done(uploadId, key, 1, { ETag: parts[0]!.ETag, size: 5 * MiB })).toMatchObject({
        status: 200,
        json: { partsCompleted: 3, bytesReceived: 12 * MiB },
      });
      expect(await client.complete(uploadId, key, parts)).toMatchObject({ status: 200 });
      await stream.ended;
      expect(stream.events[stream.events.length - 1]).toMatchObject({ outcome: 'completed', bytes: 12 * MiB });
    } finally {
      stream.close();
    }
    const state = await gateway.app.uploads.state(acme.name, uploadId);
    expect(state).toMatchObject({ outcome: 'completed', partsCompleted: 3, reportedParts: [[1, 3]] });
  });

  it('refuses a claim S3 does not confirm (a part it lacks, another ETag, another size) with 409, recording nothing', async () => {
    const client = await sessionClient(gateway, acme);
    const { uploadId, key } = await client.create('claims.bin', { 'upload-length': String(10 * MiB) });
    const signed = await client.signed(uploadId, key, 1);
    const sent = await put(signed.url, randomBytes(5 * MiB));
    expect(sent.status).toBe(200);
    const refusals = [
      [2, { ETag: sent.etag, size: 5 * MiB }, 'S3 has no part 2'],
      [1, { ETag: 'ffffffffffffffffffffffffffffffff', size: 5 * MiB }, 'has ETag'],
      [1, { ETag: sent.etag, size: 5 * MiB - 1 }, 'bytes in S3, not 5242879'],
    ] as const;
    for (const [n, claim, says] of refusals) {
      expect(await client.done(uploadId, key, n, claim), says).toMatchObject({
        status: 409,
        json: { error: 'UploadConflict', message: expect.stringContaining(says) },
      });
    }
    for (const malformed of [{}, { ETag: sent.etag }, { ETag: sent.etag, size: '5242880' }, { ETag: '', size: 1 }]) {
      expect((await client.done(uploadId, key, 1, malformed)).status, JSON.stringify(malformed)).toBe(400);
    }
    expect((await client.done(uploadId, key, 3, { ETag: sent.etag, size: 5 * MiB })).status).toBe(409);
    const state = await gateway.app.uploads.state(acme.name, uploadId);
    expect(state).toMatchObject({ partsCompleted: 0, offset: 0 });
    expect(state.reportedParts).toBeUndefined();
    await abortLeavingNothing(client, uploadId, key);
  });
});

describe('reported parts across continue-as-new', () => {
  it('carries the reported parts into the next run: counted once, then completed', async () => {
    const continuing = await startTestGateway(stack, [acme], { plugins: [s3MultipartPlugin()], service: { updatesPerRun: 2 } });
    try {
      const client = await sessionClient(continuing, acme);
      const data = randomBytes(11 * MiB);
      const { uploadId, key } = await client.create('continued.bin', { 'upload-length': String(data.length) });
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (const [n, start, end] of [
        [1, 0, 5 * MiB],
        [2, 5 * MiB, 10 * MiB],
        [3, 10 * MiB, 11 * MiB],
      ] as const) {
        const sent = await put((await client.signed(uploadId, key, n)).url, data.subarray(start, end));
        expect((await client.done(uploadId, key, n, { ETag: sent.etag, size: end - start })).status).toBe(200);
        // Reported again after the run changed: still counted once.
        expect(await client.done(uploadId, key, n, { ETag: sent.etag, size: end - start })).toMatchObject({
          json: { partsCompleted: n, bytesReceived: end },
        });
        parts.push({ PartNumber: n, ETag: sent.etag });
      }
      const state = await continuing.app.uploads.state(acme.name, uploadId);
      expect(state.runs).toBeGreaterThan(1);
      expect(state).toMatchObject({ partsCompleted: 3, offset: 11 * MiB, reportedParts: [[1, 3]] });
      expect(await client.complete(uploadId, key, parts)).toMatchObject({ status: 200, json: { size: data.length } });
      expect(await objectSha256(stack.s3, BUCKET, key)).toBe(sha256(data));
    } finally {
      await continuing.close();
    }
  });
});

describe('resume: a client that lost its state continues from what S3 holds', () => {
  it('lists the parts S3 has with a new session, sends only the rest through still-binding URLs, and completes', async () => {
    const data = randomBytes(11 * MiB);
    const before = await sessionClient(gateway, acme);
    const { uploadId, key } = await before.create('resumed.bin', { 'upload-length': String(data.length) });
    const first = await put((await before.signed(uploadId, key, 1)).url, data.subarray(0, 5 * MiB));
    expect(first.status).toBe(200);
    expect((await before.done(uploadId, key, 1, { ETag: first.etag, size: 5 * MiB })).status).toBe(200);
    // Part 2 was on the wire when the tab closed: S3 has it, nobody reported it.
    expect((await put((await before.signed(uploadId, key, 2)).url, data.subarray(5 * MiB, 10 * MiB))).status).toBe(200);

    // The reopened page: a new session, only { uploadId, key } kept.
    const after = await sessionClient(gateway, acme);
    const listed = await after.list(uploadId, key);
    expect(listed.status).toBe(200);
    const held = listed.json as { PartNumber: number; Size: number; ETag: string }[];
    expect(held.map((p) => [p.PartNumber, p.Size])).toEqual([
      [1, 5 * MiB],
      [2, 5 * MiB],
    ]);
    const third = await after.signed(uploadId, key, 3);
    expect(await put(third.url, data.subarray(10 * MiB, 11 * MiB - 1))).toMatchObject({ status: 403 });
    const sent = await put(third.url, data.subarray(10 * MiB));
    expect(sent.status).toBe(200);
    for (const part of held)
      expect((await after.done(uploadId, key, part.PartNumber, { ETag: part.ETag, size: part.Size })).status).toBe(200);
    expect(await after.done(uploadId, key, 3, { ETag: sent.etag, size: MiB })).toMatchObject({ json: { bytesReceived: 11 * MiB } });
    const completed = await after.complete(uploadId, key, [
      ...held.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag })),
      { PartNumber: 3, ETag: sent.etag },
    ]);
    expect(completed).toMatchObject({ status: 200, json: { size: data.length } });
    expect(await objectSha256(stack.s3, BUCKET, key)).toBe(sha256(data));
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
  });
});

describe('empty files: Uppy’s POST-policy path, through the saga', () => {
  /** What @uppy/aws-s3 v6 does for an empty file: GET /s3/params, then POST the fields and the file as a form. */
  async function postEmpty(client: CompanionClient, filename: string, file: Blob, metadata: Record<string, string> = {}) {
    const query = new URLSearchParams({ filename, type: 'text/plain' });
    for (const [name, value] of Object.entries(metadata)) query.set(`metadata[${name}]`, value);
    const params = await client.request('GET', `/params?${query}`);
    expect(params, JSON.stringify(params.json)).toMatchObject({
      status: 200,
      json: { method: 'POST', fields: { key: expect.any(String) } },
    });
    const { url, fields, uploadId, key } = params.json as { url: string; fields: Record<string, string>; uploadId: string; key: string };
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.set(name, value);
    form.set('file', file, filename);
    const response = await fetch(new URL(url, gateway.url), { method: 'POST', body: form });
    return { uploadId, key, status: response.status, etag: response.headers.get('etag'), json: (await response.json()) as unknown };
  }

  it('stores an empty file: verified, merged and committed by its saga like any upload', async () => {
    const client = await sessionClient(gateway, acme);
    const counted = async (outcome: string) =>
      (await gateway.app.metrics.uploads.get()).values.find((v) => v.labels.protocol === 's3-multipart' && v.labels.outcome === outcome)
        ?.value ?? 0;
    const [createdBefore, completedBefore] = [await counted('created'), await counted('completed')];
    const sent = await postEmpty(client, 'empty.txt', new Blob([]), { 'upload-length': '0', project: 'zero' });
    expect([await counted('created'), await counted('completed')]).toEqual([createdBefore + 1, completedBefore + 1]);
    expect(sent).toMatchObject({ status: 201, json: { key: sent.key, bucket: BUCKET, size: 0 } });
    expect(sent.etag).toBeTruthy();
    expect(await objectSha256(stack.s3, BUCKET, sent.key)).toBe(sha256(Buffer.alloc(0)));
    expect(await incompleteUploads(stack.s3, BUCKET, sent.key)).toEqual([]);
    const state = await gateway.app.uploads.state(acme.name, sent.uploadId);
    expect(state).toMatchObject({ mode: 'presigned', outcome: 'completed', length: 0, metadata: { project: 'zero' }, result: { size: 0 } });
    expect(await ledger().reservation(acme.name, sent.uploadId)).toMatchObject({ status: 'committed' });
    // Without a declared length (what Uppy sends unless told otherwise) the path takes empty files too.
    expect(await postEmpty(client, 'also-empty.txt', new Blob([]))).toMatchObject({ status: 201, json: { size: 0 } });
  });

  it('refuses a file with bytes on the empty-file path (413) and compensates its saga, and a declared length above 0 before anything starts (400)', async () => {
    const client = await sessionClient(gateway, acme);
    for (const bytes of [10, 200 * 1024]) {
      const sent = await postEmpty(client, 'not-empty.txt', new Blob([randomBytes(bytes)]));
      expect(sent, `${bytes} bytes`).toMatchObject({
        status: 413,
        json: { error: 'UploadTooLarge', message: expect.stringContaining('shouldUseMultipart: true') },
      });
      const state = await gateway.app.uploads.state(acme.name, sent.uploadId);
      expect(state.outcome).toBe('cancelled');
      expect(await incompleteUploads(stack.s3, BUCKET, sent.key)).toEqual([]);
      expect(await objectExists(stack.s3, BUCKET, sent.key)).toBe(false);
      expect(await ledger().reservation(acme.name, sent.uploadId)).toMatchObject({ status: 'released' });
    }
    const declared = await client.request(
      'GET',
      `/params?${new URLSearchParams({ filename: 'small.bin', 'metadata[upload-length]': '5' })}`,
    );
    expect(declared).toMatchObject({ status: 400, json: { message: expect.stringContaining('shouldUseMultipart: true') } });
  });
});
