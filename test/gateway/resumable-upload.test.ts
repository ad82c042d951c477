/**
 * The IETF resumable-upload draft on the gateway's tus endpoint, with raw requests through
 * node:http (it reports informational responses such as the 104, and lets a test cut a
 * connection mid-content): creation with and without content, resumption after a cut, appends,
 * cancellation, a wrong offset, the bytes in S3 and the saga's outcome.
 *
 * The same request sequences are sent to tusd v2.9.1 with `-enable-experimental-protocol` (its S3
 * store on the run's MinIO), and the answers compared field by field. Without
 * `deliberateDifference` the two must answer alike (and as `expect` says); with it, each side must
 * answer what the step pins, and `why` quotes the draft's words for the gateway's answer.
 *
 * The rows of the "Resumable-upload draft" table of docs/reference/bad-input.md are checked here:
 * each names a case and step whose gateway answer must have the row's status and contain the row's
 * code spans.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startTusdServer, type TusdServer } from '../../src/embedded';
import { mintUploadToken } from '../../src/gateway/upload-token';
import { MiB } from '../support/files';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { expectCatalogueRows, expectOnlyCreatedUploadsInS3 } from '../support/http-refusals';
import { keysUnder, multipartKeysUnder, objectSha256 } from '../support/s3-inspect';
import { startTestGateway, testTenant, type TestGateway } from './gateway-harness';
import { SERVER_BUILD_WAIT_MS } from '../support/late-built-servers';

const BUCKET = 'uploads';
const MAX_SIZE = 64 * MiB;
const PARTIAL = 'application/partial-upload';
const TOKEN_SECRET = randomBytes(32).toString('base64url');
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
let tusd: TusdServer;
const tusdDir = path.join(os.tmpdir(), `tusd-draft-${randomUUID().slice(0, 8)}`);
const tenant = testTenant('draft');
/** Where the upload-token test's upload is stored (the key its token names). */
const TOKEN_KEY = `${tenant.name}/draft/u1.bin`;
const other = testTenant('draft-other');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  gateway = await startTestGateway(stack, [tenant, other], {
    env: { UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZE: String(MAX_SIZE), UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET: TOKEN_SECRET },
  });
  tusd = await startTusdServer({
    dataDir: tusdDir,
    maxSize: MAX_SIZE,
    experimentalProtocol: true,
    s3: {
      endpoint: inject('s3Endpoint'),
      region: inject('s3Region'),
      accessKeyId: inject('s3AccessKeyId'),
      secretAccessKey: inject('s3SecretAccessKey'),
      bucket: BUCKET,
      objectPrefix: `tusd-draft/${randomUUID().slice(0, 8)}/`,
    },
  });
}, 120_000);

afterAll(async () => {
  await tusd?.stop();
  await fsp.rm(tusdDir, { recursive: true, force: true });
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
}, SERVER_BUILD_WAIT_MS);

// ---- raw requests

interface Exchange {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Informational responses before the final one (status and fields). */
  informational: { status: number; headers: http.IncomingHttpHeaders }[];
}

/** Ids of the uploads the servers created (answered 201, or named in a 104): the only ones S3 may hold anything of. */
const createdUploads = new Set<string>();

/** One request whose content `write` sends; resolves with the final answer and the informational ones before it. */
function exchange(
  url: string,
  method: string,
  headers: Record<string, string>,
  write: (request: http.ClientRequest) => void,
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const informational: Exchange['informational'] = [];
    const request = http.request(url, { method, agent: false, headers });
    request.on('information', (info) => informational.push({ status: info.statusCode, headers: info.headers }));
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () => {
        if (response.statusCode === 201 && response.headers.location)
          createdUploads.add(String(response.headers.location).split('/').pop()!);
        resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks).toString(), informational });
      });
    });
    request.on('error', reject);
    write(request);
  });
}

/** One request; the body, when given, is sent with its Content-Length unless `headers` says otherwise. */
function send(url: string, method: string, headers: Record<string, string>, body?: Buffer): Promise<Exchange> {
  const withLength = { ...(body ? { 'Content-Length': String(body.length) } : {}), ...headers };
  return exchange(url, method, withLength, (request) => request.end(body));
}

/** One request whose content goes in `pieces` without Content-Length (chunked): its size is not known when it starts. */
function sendChunked(url: string, method: string, headers: Record<string, string>, pieces: Buffer[]): Promise<Exchange> {
  return exchange(url, method, headers, (request) => {
    for (const piece of pieces) request.write(piece);
    request.end();
  });
}

/**
 * A creation whose connection is cut mid-content: the head, then (once the 104 names the upload)
 * `sent` bytes, then the socket is destroyed. Resolves with the 104's Location.
 */
function createAndCut(url: string, headers: Record<string, string>, sent: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent: false, headers });
    request.on('information', (info) => {
      if (info.statusCode !== 104) return;
      const location = info.headers.location!;
      createdUploads.add(location.split('/').pop()!);
      request.write(sent, () =>
        setTimeout(() => {
          request.destroy();
          resolve(location);
        }, 1_500),
      );
    });
    request.on('response', (response) => reject(new Error(`the creation answered ${response.statusCode} before it was cut`)));
    request.on('error', () => undefined); // the cut
    request.flushHeaders();
  });
}

/** An append that must be accepted: 201 with the offset after it and the completeness it asked for. */
async function appendAccepted(url: string, offset: number, content: Buffer, complete: '?0' | '?1'): Promise<void> {
  const headers = draftHeaders({ 'Upload-Offset': String(offset), 'Upload-Complete': complete, 'Content-Type': PARTIAL });
  const answer = await send(url, 'PATCH', headers, content);
  expect([answer.status, answer.headers['upload-offset'], answer.headers['upload-complete']], answer.body).toEqual([
    201,
    String(offset + content.length),
    complete,
  ]);
}

const draftHeaders = (extra: Record<string, string> = {}) => ({ 'Upload-Draft-Interop-Version': '6', ...tenant.auth, ...extra });
const absolute = (location: string | string[] | undefined) => new URL(String(location), gateway.url).toString();
const idOf = (url: string) => url.split('/').pop()!;

async function expectStored(uploadId: string, data: Buffer): Promise<void> {
  const ended = await gateway.app.uploads.waitForEnd(tenant.name, uploadId, 60_000);
  expect(ended.outcome).toBe('completed');
  expect(ended.length).toBe(data.length);
  expect(await objectSha256(stack.s3, BUCKET, ended.key)).toBe(sha256(data));
  expect(await keysUnder(stack.s3, BUCKET, `.upload-saga/staging/${tenant.name}/${uploadId}/`)).toEqual([]);
}

// ---- the gateway alone: saga, S3, resumption

describe('the resumable-upload draft on the gateway: the same sagas as tus', () => {
  it('creates an upload with its whole content: 104 with the Location before 201, bytes identical in S3, the saga completed', async () => {
    const data = randomBytes(6 * MiB + 123);
    const answer = await send(
      `${gateway.url}/files`,
      'POST',
      draftHeaders({ 'Upload-Complete': '?1', 'Content-Type': 'image/png', 'Content-Disposition': 'attachment; filename="draft.png"' }),
      data,
    );
    expect(answer.status, answer.body).toBe(201);
    expect(answer.informational).toHaveLength(1);
    const [interim] = answer.informational;
    expect(interim).toMatchObject({ status: 104, headers: { location: answer.headers.location, 'upload-draft-interop-version': '6' } });
    expect(answer.headers).toMatchObject({ 'upload-offset': String(data.length), 'upload-complete': '?1' });
    expect(answer.headers['tus-resumable']).toBeUndefined();
    const uploadId = idOf(absolute(answer.headers.location));
    await expectStored(uploadId, data);
    const state = await gateway.app.uploads.state(tenant.name, uploadId);
    expect(state).toMatchObject({ filename: 'draft.png', contentType: 'image/png', key: `${tenant.name}/${uploadId}/draft.png` });
    // Offset retrieval after completion.
    const head = await send(absolute(answer.headers.location), 'HEAD', draftHeaders());
    expect([head.status, head.headers['upload-offset'], head.headers['upload-complete']]).toEqual([204, String(data.length), '?1']);
  });

  it('creates an upload resource without content, then appends in two requests; HEAD tells offset and completeness', async () => {
    const data = randomBytes(3 * MiB);
    const created = await send(
      `${gateway.url}/files`,
      'POST',
      draftHeaders({ 'Upload-Complete': '?0', 'Upload-Length': String(data.length) }),
    );
    expect([created.status, created.headers['upload-offset'], created.headers['upload-complete']]).toEqual([201, '0', '?0']);
    expect(created.headers['upload-limit']).toBe(`min-size=0,max-size=${MAX_SIZE}`);
    const url = absolute(created.headers.location);
    const head = await send(url, 'HEAD', draftHeaders());
    expect(head.status).toBe(204);
    expect(head.headers).toMatchObject({
      'upload-offset': '0',
      'upload-complete': '?0',
      'upload-length': String(data.length),
      'cache-control': 'no-store',
    });
    await appendAccepted(url, 0, data.subarray(0, MiB), '?0');
    await appendAccepted(url, MiB, data.subarray(MiB), '?1');
    await expectStored(idOf(url), data);
  });

  it('takes an upload of unknown length whole, in one creation without Content-Length: its end is its size', async () => {
    const data = randomBytes(7 * MiB + 11);
    const pieces = [data.subarray(0, 3 * MiB), data.subarray(3 * MiB, 5 * MiB), data.subarray(5 * MiB)];
    const answer = await sendChunked(`${gateway.url}/files`, 'POST', draftHeaders({ 'Upload-Complete': '?1' }), pieces);
    expect(answer.status, answer.body).toBe(201);
    expect(answer.headers).toMatchObject({ 'upload-offset': String(data.length), 'upload-complete': '?1' });
    const url = absolute(answer.headers.location);
    await expectStored(idOf(url), data);
    const head = await send(url, 'HEAD', draftHeaders());
    expect([head.status, head.headers['upload-length'], head.headers['upload-complete']]).toEqual([204, String(data.length), '?1']);
  });

  it('takes an upload of unknown length in appends: HEAD has no Upload-Length until the last append, sent without Content-Length, ends it', async () => {
    const data = randomBytes(6 * MiB + 5);
    const created = await send(`${gateway.url}/files`, 'POST', draftHeaders({ 'Upload-Complete': '?0' }), data.subarray(0, 2 * MiB));
    expect([created.status, created.headers['upload-offset'], created.headers['upload-complete']], created.body).toEqual([
      201,
      String(2 * MiB),
      '?0',
    ]);
    const url = absolute(created.headers.location);
    const during = await send(url, 'HEAD', draftHeaders());
    expect([during.status, during.headers['upload-offset'], during.headers['upload-length']]).toEqual([204, String(2 * MiB), undefined]);
    await appendAccepted(url, 2 * MiB, data.subarray(2 * MiB, 4 * MiB), '?0');
    const last = await sendChunked(
      url,
      'PATCH',
      draftHeaders({ 'Upload-Offset': String(4 * MiB), 'Upload-Complete': '?1', 'Content-Type': PARTIAL }),
      [data.subarray(4 * MiB, 5 * MiB), data.subarray(5 * MiB)],
    );
    expect([last.status, last.headers['upload-offset'], last.headers['upload-complete']], last.body).toEqual([
      201,
      String(data.length),
      '?1',
    ]);
    await expectStored(idOf(url), data);
  });

  it('refuses, for an upload of unknown length, an append whose declared size is below the offset, and one past it; nothing changes', async () => {
    const created = await send(`${gateway.url}/files`, 'POST', draftHeaders({ 'Upload-Complete': '?0' }), randomBytes(1000));
    const url = absolute(created.headers.location);
    const headers = (extra: Record<string, string>) =>
      draftHeaders({ 'Upload-Offset': '1000', 'Content-Type': PARTIAL, 'Upload-Complete': '?1', ...extra });
    const below = await send(url, 'PATCH', headers({ 'Upload-Length': '999' }), Buffer.alloc(0));
    expect([below.status, below.body]).toEqual([400, "Upload-Length 999 is below the upload's offset 1000"]);
    const past = await send(url, 'PATCH', headers({ 'Upload-Length': '1500' }), randomBytes(600));
    expect(past.status).toBe(400);
    expect(past.body).toContain("the append would end at 1600, past the upload's final size 1500");
    const head = await send(url, 'HEAD', draftHeaders());
    expect([head.headers['upload-offset'], head.headers['upload-length']]).toEqual(['1000', undefined]);
    expect((await send(url, 'DELETE', draftHeaders())).status).toBe(204);
  });

  it('resumes after the connection is cut mid-content: offset retrieval, then an append of the rest', async () => {
    const data = randomBytes(9 * MiB);
    const sentBeforeCut = 6 * MiB;
    const location = await createAndCut(
      `${gateway.url}/files`,
      draftHeaders({ 'Upload-Complete': '?1', 'Upload-Length': String(data.length), 'Content-Length': String(data.length) }),
      data.subarray(0, sentBeforeCut),
    );
    const url = absolute(location);
    // HEAD waits for the upload's lock: the cut creation records what arrived first.
    const head = await send(url, 'HEAD', draftHeaders());
    expect(head.status).toBe(204);
    const offset = Number(head.headers['upload-offset']);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(sentBeforeCut);
    expect(head.headers['upload-complete']).toBe('?0');
    await appendAccepted(url, offset, data.subarray(offset), '?1');
    await expectStored(idOf(url), data);
    console.log(`draft resume: ${(sentBeforeCut / MiB).toFixed(2)} MiB sent before the cut, ${(offset / MiB).toFixed(2)} MiB kept`);
  });

  it('cancels with DELETE: the saga is cancelled, nothing of the upload stays in S3, the resource is gone (404)', async () => {
    const created = await send(
      `${gateway.url}/files`,
      'POST',
      draftHeaders({ 'Upload-Complete': '?0', 'Upload-Length': String(8 * MiB) }),
      randomBytes(6 * MiB),
    );
    expect([created.status, created.headers['upload-offset']]).toEqual([201, String(6 * MiB)]);
    const url = absolute(created.headers.location);
    const cancelled = await send(url, 'DELETE', draftHeaders());
    expect(cancelled.status).toBe(204);
    const ended = await gateway.app.uploads.waitForEnd(tenant.name, idOf(url), 60_000);
    expect(ended.outcome).toBe('cancelled');
    expect(await multipartKeysUnder(stack.s3, BUCKET, `${tenant.name}/${idOf(url)}/`)).toEqual([]);
    expect(await keysUnder(stack.s3, BUCKET, `.upload-saga/staging/${tenant.name}/${idOf(url)}/`)).toEqual([]);
    expect((await send(url, 'HEAD', draftHeaders())).status).toBe(404);
  });

  it('answers a wrong offset with 409, the right Upload-Offset and a problem document, and changes nothing', async () => {
    const created = await send(
      `${gateway.url}/files`,
      'POST',
      draftHeaders({ 'Upload-Complete': '?0', 'Upload-Length': '10' }),
      Buffer.from('abcd'),
    );
    const url = absolute(created.headers.location);
    const wrong = await send(url, 'PATCH', draftHeaders({ 'Upload-Offset': '2', 'Content-Type': PARTIAL }), Buffer.from('cd'));
    expect(wrong.status).toBe(409);
    expect(wrong.headers['upload-offset']).toBe('4');
    expect(wrong.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(wrong.body)).toMatchObject({
      type: 'https://iana.org/assignments/http-problem-types#mismatching-upload-offset',
      'expected-offset': 4,
      'provided-offset': 2,
    });
    expect((await send(url, 'HEAD', draftHeaders())).headers['upload-offset']).toBe('4');
  });

  it('applies authentication, tenants and limits as tus does: no token 401, another tenant 404, over the maximum 413, nothing created', async () => {
    const created = await send(`${gateway.url}/files`, 'POST', draftHeaders({ 'Upload-Complete': '?0', 'Upload-Length': '10' }));
    const url = absolute(created.headers.location);
    const anonymous = await send(url, 'HEAD', { 'Upload-Draft-Interop-Version': '6' });
    expect(anonymous.status).toBe(401);
    const foreign = await send(url, 'HEAD', { 'Upload-Draft-Interop-Version': '6', ...other.auth });
    expect(foreign.status).toBe(404);
    const foreignAppend = await send(
      url,
      'PATCH',
      { 'Upload-Draft-Interop-Version': '6', ...other.auth, 'Upload-Offset': '0', 'Content-Type': PARTIAL },
      Buffer.from('xx'),
    );
    expect(foreignAppend.status).toBe(404);
    const tooLarge = await send(
      `${gateway.url}/files`,
      'POST',
      draftHeaders({ 'Upload-Complete': '?0', 'Upload-Length': String(MAX_SIZE + 1) }),
    );
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.informational).toEqual([]);
    expect(await keysUnder(stack.s3, BUCKET, `${other.name}/`)).toEqual([]);
  });

  it('holds an upload token to its one upload, its key and its maxBytes, as on tus', async () => {
    const { token } = await mintUploadToken({
      secret: TOKEN_SECRET,
      tenant: tenant.name,
      maxBytes: MiB,
      key: 'draft/u1.bin',
      expiresIn: '5m',
    });
    const bearer = { 'Upload-Draft-Interop-Version': '6', Authorization: `Bearer ${token}` };
    const data = randomBytes(1000);
    const created = await send(`${gateway.url}/files`, 'POST', { ...bearer, 'Upload-Complete': '?1' }, data);
    expect(created.status, created.body).toBe(201);
    expect(await objectSha256(stack.s3, BUCKET, TOKEN_KEY)).toBe(sha256(data));
    const again = await send(`${gateway.url}/files`, 'POST', { ...bearer, 'Upload-Complete': '?0', 'Upload-Length': '10' });
    expect([again.status, again.informational]).toEqual([403, []]);
    const big = await mintUploadToken({ secret: TOKEN_SECRET, tenant: tenant.name, maxBytes: MiB, expiresIn: '5m' });
    const tooLarge = await send(`${gateway.url}/files`, 'POST', {
      'Upload-Draft-Interop-Version': '6',
      Authorization: `Bearer ${big.token}`,
      'Upload-Complete': '?0',
      'Upload-Length': String(MiB + 1),
    });
    expect(tooLarge.status).toBe(413);
  });

  it('serves interop version 3 (draft -01), whose completeness header is Upload-Incomplete', async () => {
    const data = Buffer.from('hello, draft -01');
    const headers = { ...tenant.auth, 'Upload-Draft-Interop-Version': '3' };
    const created = await send(
      `${gateway.url}/files`,
      'POST',
      { ...headers, 'Upload-Incomplete': '?1', 'Upload-Length': String(data.length) },
      data.subarray(0, 5),
    );
    expect([created.status, created.headers['upload-incomplete'], created.headers['upload-complete']]).toEqual([201, '?1', undefined]);
    expect(created.informational[0]?.headers['upload-draft-interop-version']).toBe('3');
    const url = absolute(created.headers.location);
    const rest = await send(url, 'PATCH', { ...headers, 'Upload-Offset': '5', 'Upload-Incomplete': '?0' }, data.subarray(5));
    expect([rest.status, rest.headers['upload-incomplete']], rest.body).toEqual([201, '?0']);
    await expectStored(idOf(url), data);
  });
});

// ---- compared with tusd

type Field =
  | 'status'
  | '104'
  | 'location'
  | 'upload-offset'
  | 'upload-complete'
  | 'upload-incomplete'
  | 'upload-length'
  | 'upload-limit'
  | 'cache-control'
  | 'tus-resumable';
type Fields = Partial<Record<Field, string | null>>;

interface Step {
  method: 'POST' | 'HEAD' | 'PATCH' | 'DELETE';
  /** The creation endpoint, or the upload the case created last. */
  at: 'endpoint' | 'upload';
  /** Request headers over `Upload-Draft-Interop-Version: 6`; `null` leaves a header out. */
  headers?: Record<string, string | null>;
  body?: Buffer;
  compare: readonly Field[];
  expect?: Fields;
  deliberateDifference?: { why: string; gateway: Fields; tusd: Fields };
}
interface Case {
  name: string;
  steps: readonly Step[];
}

const bytes = (n: number) => Buffer.alloc(n, 0x62);
const CREATE_FIELDS: readonly Field[] = ['status', '104', 'location', 'upload-offset', 'upload-limit', 'tus-resumable'];
const HEAD_FIELDS: readonly Field[] = ['status', 'upload-offset', 'upload-complete', 'upload-length', 'upload-limit', 'cache-control'];
const create = (length: number, complete: '?0' | '?1', body?: Buffer, extra: Record<string, string | null> = {}): Step => ({
  method: 'POST',
  at: 'endpoint',
  headers: { 'Upload-Complete': complete, 'Upload-Length': String(length), ...extra },
  ...(body ? { body } : {}),
  compare: CREATE_FIELDS,
  expect: { status: '201', '104': '/files/{id}', location: '/files/{id}' },
});
const append = (offset: number, body: Buffer, complete: '?0' | '?1', extra: Record<string, string | null> = {}): Step => ({
  method: 'PATCH',
  at: 'upload',
  headers: { 'Upload-Offset': String(offset), 'Upload-Complete': complete, 'Content-Type': PARTIAL, ...extra },
  body,
  compare: ['status', 'upload-offset'],
});
const head = (expected: Fields): Step => ({ method: 'HEAD', at: 'upload', compare: HEAD_FIELDS, expect: { status: '204', ...expected } });

/** A deliberate difference in the status alone. */
const differsInStatus = (why: string, gateway: string, tusd: string) => ({ why, gateway: { status: gateway }, tusd: { status: tusd } });

const INCOMPLETE_201 =
  'tusd sends no Upload-Complete on a creation or an append; the draft (-05): "If the request completes successfully but the entire upload is not yet complete [...] the server MUST acknowledge it by responding with the 201 (Created) status code and an Upload-Complete header value set to false"';
const APPEND_201 =
  'tusd answers an append 204 without Upload-Complete; the draft (-05) on upload append: "Servers are RECOMMENDED to use a 201 (Created) response" for a complete upload, and for an incomplete one "MUST acknowledge it by responding with a 201 (Created) status code"';
/** An append both accept: the gateway answers 201 with Upload-Complete, tusd 204 without ({@link APPEND_201}). */
const acceptedAppend = (offset: number, body: Buffer, complete: '?0' | '?1'): Step => ({
  ...append(offset, body, complete),
  compare: ['status', 'upload-offset', 'upload-complete'],
  expect: { 'upload-offset': String(offset + body.length) },
  deliberateDifference: {
    why: APPEND_201,
    gateway: { status: '201', 'upload-complete': complete },
    tusd: { status: '204', 'upload-complete': null },
  },
});
const FAILURE_OFFSET =
  'the draft (-05): "The server MUST send the Upload-Offset header field in the response if it considers the upload active, either when the response is a success [...] or when the response is a failure (e.g. 409 (Conflict))"; tusd sends none on a failure';

const cases: readonly Case[] = [
  {
    name: 'creation with the whole content, then offset retrieval',
    steps: [
      {
        ...create(11, '?1', bytes(11), { 'Content-Type': 'text/plain', 'Content-Disposition': 'attachment; filename="a.txt"' }),
        compare: [...CREATE_FIELDS, 'upload-complete'],
        expect: { status: '201', '104': '/files/{id}', location: '/files/{id}', 'upload-offset': '11', 'tus-resumable': null },
        deliberateDifference: {
          why: 'tusd sends no Upload-Complete on a creation; the draft lets the final answer carry it, never as false once complete: "The response MUST NOT include the Upload-Complete header field with the value of false"',
          gateway: { 'upload-complete': '?1' },
          tusd: { 'upload-complete': null },
        },
      },
      head({ 'upload-offset': '11', 'upload-complete': '?1', 'upload-length': '11', 'cache-control': 'no-store' }),
    ],
  },
  {
    name: 'creation without content, appends, offset retrieval after each',
    steps: [
      {
        ...create(10, '?0'),
        compare: [...CREATE_FIELDS, 'upload-complete'],
        expect: { status: '201', '104': '/files/{id}', location: '/files/{id}', 'upload-offset': '0' },
        deliberateDifference: { why: INCOMPLETE_201, gateway: { 'upload-complete': '?0' }, tusd: { 'upload-complete': null } },
      },
      head({ 'upload-offset': '0', 'upload-complete': '?0', 'upload-length': '10', 'cache-control': 'no-store' }),
      acceptedAppend(0, bytes(4), '?0'),
      head({ 'upload-offset': '4', 'upload-complete': '?0' }),
      acceptedAppend(4, bytes(6), '?1'),
      head({ 'upload-offset': '10', 'upload-complete': '?1', 'upload-length': '10' }),
    ],
  },
  {
    name: 'an append at the wrong offset is refused with 409 and changes nothing',
    steps: [
      create(10, '?0'),
      {
        ...append(3, bytes(2), '?0'),
        expect: { status: '409' },
        deliberateDifference: { why: FAILURE_OFFSET, gateway: { 'upload-offset': '0' }, tusd: { 'upload-offset': null } },
      },
      head({ 'upload-offset': '0' }),
    ],
  },
  {
    name: 'cancellation: DELETE, then the upload is not found',
    steps: [
      create(10, '?0', bytes(3)),
      { method: 'DELETE', at: 'upload', compare: ['status'], expect: { status: '204' } },
      { method: 'HEAD', at: 'upload', compare: ['status'], expect: { status: '404' } },
    ],
  },
  {
    name: 'interop version 3 (draft -01) says Upload-Incomplete',
    steps: [
      { ...create(6, '?0', bytes(6), { 'Upload-Draft-Interop-Version': '3', 'Upload-Complete': null, 'Upload-Incomplete': '?0' }) },
      {
        method: 'HEAD',
        at: 'upload',
        headers: { 'Upload-Draft-Interop-Version': '3' },
        compare: ['status', 'upload-offset', 'upload-incomplete', 'upload-complete'],
        expect: { status: '204', 'upload-offset': '6', 'upload-incomplete': '?0', 'upload-complete': null },
      },
    ],
  },
  {
    name: 'an interop version not served is refused with 412',
    steps: [
      {
        ...create(10, '?1', undefined, { 'Upload-Draft-Interop-Version': '99' }),
        compare: ['status', '104'],
        expect: { status: '412', '104': null },
      },
    ],
  },
  {
    name: 'an upload creation without Upload-Complete, or with a value that is no structured-field Boolean',
    steps: [
      ...[null, 'yes', '1'].map((value): Step => ({
        ...create(10, '?0', undefined, { 'Upload-Complete': value }),
        compare: ['status', '104'],
        expect: {},
        deliberateDifference: {
          why: 'tusd takes anything but ?1 for "not complete" and creates the upload; the draft: creation "is accomplished by including the Upload-Complete header field", whose value is a structured-field Boolean (RFC 8941: ?0 or ?1) — the gateway refuses what it cannot read instead of guessing',
          gateway: { status: '400', '104': null },
          tusd: { status: '201', '104': '/files/{id}' },
        },
      })),
    ],
  },
  {
    name: 'an upload of unknown length: created without a size, which its completing append makes known',
    steps: [
      {
        ...create(0, '?0', undefined, { 'Upload-Length': null }),
        compare: [...CREATE_FIELDS, 'upload-complete'],
        expect: { status: '201', '104': '/files/{id}', location: '/files/{id}', 'upload-offset': '0' },
        deliberateDifference: { why: INCOMPLETE_201, gateway: { 'upload-complete': '?0' }, tusd: { 'upload-complete': null } },
      },
      head({ 'upload-offset': '0', 'upload-complete': '?0', 'upload-length': null, 'cache-control': 'no-store' }),
      acceptedAppend(0, bytes(4), '?0'),
      head({ 'upload-offset': '4', 'upload-complete': '?0', 'upload-length': null }),
      acceptedAppend(4, bytes(6), '?1'),
      head({ 'upload-offset': '10', 'upload-complete': '?1', 'upload-length': '10' }),
    ],
  },
  {
    name: 'an upload of unknown length: an append that declares a size below its offset',
    steps: [
      { ...create(0, '?0', bytes(10), { 'Upload-Length': null }), compare: ['status', 'upload-offset'], expect: { status: '201' } },
      { ...append(10, bytes(0), '?1', { 'Upload-Length': '9' }), compare: ['status'], expect: { status: '400' } },
      head({ 'upload-offset': '10', 'upload-length': null }),
    ],
  },
  {
    name: 'offset retrieval and cancellation must not carry Upload-Offset or Upload-Complete',
    steps: [
      create(10, '?0'),
      ...(['HEAD', 'DELETE'] as const).map((method): Step => ({
        method,
        at: 'upload',
        headers: method === 'HEAD' ? { 'Upload-Offset': '0' } : { 'Upload-Complete': '?0' },
        compare: ['status'],
        deliberateDifference: differsInStatus(
          'the draft (-05): "The request MUST NOT include an Upload-Offset, Upload-Complete, or Upload-Length header field. The server MUST reject requests with either of these fields by responding with a 400 (Bad Request) status code" (cancellation likewise); tusd ignores them',
          '400',
          '204',
        ),
      })),
    ],
  },
  {
    name: 'an append without Content-Type: application/partial-upload (interop version 6)',
    steps: [
      create(10, '?0'),
      {
        ...append(0, bytes(2), '?0', { 'Content-Type': 'application/octet-stream' }),
        compare: ['status'],
        deliberateDifference: differsInStatus(
          'the draft (-05): "The request MUST use the PATCH method with the application/partial-upload media type"; the gateway answers what HTTP names for a media type it does not take (415, as for tus), tusd 400',
          '415',
          '400',
        ),
      },
    ],
  },
  {
    name: 'an append to a completed upload',
    steps: [
      create(3, '?1', bytes(3)),
      {
        ...append(3, bytes(1), '?1'),
        compare: ['status'],
        deliberateDifference: differsInStatus(
          'the draft (-05): "If the upload is already complete, the server MUST NOT modify the upload resource and MUST respond with a 400 (Bad Request) status code"; tusd answers 204 and the offset',
          '400',
          '204',
        ),
      },
      head({ 'upload-offset': '3', 'upload-complete': '?1' }),
    ],
  },
  {
    name: 'a final size that contradicts the content',
    steps: [
      {
        ...create(10, '?1', bytes(4)),
        compare: ['status', '104'],
        expect: { status: '400', '104': null },
      },
    ],
  },
];

interface Target {
  name: 'gateway' | 'tusd';
  endpoint: string;
  auth: Record<string, string>;
}
const targets = (): Target[] => [
  { name: 'gateway', endpoint: `${gateway.url}/files`, auth: tenant.auth },
  { name: 'tusd', endpoint: tusd.endpoint, auth: {} },
];

const locationPath = (value: string | string[] | undefined, base: string) =>
  value === undefined ? null : new URL(String(value), base).pathname.replace(/\/files\/.+$/, '/files/{id}');

function fieldsOf(answer: Exchange, url: string): Record<Field, string | null> {
  const h = (name: string) => {
    const v = answer.headers[name];
    return v === undefined ? null : String(v);
  };
  const interim = answer.informational.find((i) => i.status === 104);
  return {
    status: String(answer.status),
    '104': interim ? locationPath(interim.headers.location, url) : null,
    location: locationPath(answer.headers.location, url),
    'upload-offset': h('upload-offset'),
    'upload-complete': h('upload-complete'),
    'upload-incomplete': h('upload-incomplete'),
    'upload-length': h('upload-length'),
    'upload-limit': h('upload-limit'),
    'cache-control': h('cache-control'),
    'tus-resumable': h('tus-resumable'),
  };
}

async function runCase(target: Target, testCase: Case): Promise<{ fields: Record<Field, string | null>; body: string }[]> {
  let upload: string | undefined;
  const answers: { fields: Record<Field, string | null>; body: string }[] = [];
  for (const step of testCase.steps) {
    const url = step.at === 'endpoint' ? target.endpoint : upload;
    if (!url) throw new Error(`${testCase.name}: a step needs an upload, but none was created`);
    const headers: Record<string, string> = { ...target.auth };
    for (const [name, value] of Object.entries({ 'Upload-Draft-Interop-Version': '6', ...step.headers }))
      if (value !== null) headers[name] = value;
    const answer = await send(
      url,
      step.method,
      headers,
      step.body ?? (step.method === 'POST' || step.method === 'PATCH' ? Buffer.alloc(0) : undefined),
    );
    if (step.method === 'POST' && answer.status === 201) upload = new URL(String(answer.headers.location), url).toString();
    answers.push({ fields: fieldsOf(answer, url), body: answer.body });
  }
  return answers;
}

const pick = (fields: Record<Field, string | null>, names: readonly Field[]): Fields =>
  Object.fromEntries(names.map((n) => [n, fields[n]]));
const gatewayAnswers = new Map<string, { fields: Record<Field, string | null>; body: string }[]>();

describe('the resumable-upload draft compared with tusd v2.9.1 (-enable-experimental-protocol)', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, testCase) => {
    const [gw, ref] = targets();
    const g = await runCase(gw!, testCase);
    const t = await runCase(ref!, testCase);
    gatewayAnswers.set(testCase.name, g);
    testCase.steps.forEach((step, i) => {
      const label = `${testCase.name}, step ${i + 1} (${step.method})`;
      const differs = step.deliberateDifference;
      const deliberate = new Set(Object.keys({ ...differs?.gateway, ...differs?.tusd }) as Field[]);
      if (differs) {
        expect(pick(g[i]!.fields, Object.keys(differs.gateway) as Field[]), `${label}: gateway side\n${g[i]!.body}`).toEqual(
          differs.gateway,
        );
        expect(pick(t[i]!.fields, Object.keys(differs.tusd) as Field[]), `${label}: tusd side\n${t[i]!.body}`).toEqual(differs.tusd);
      }
      const shared = step.compare.filter((f) => !deliberate.has(f));
      expect(pick(g[i]!.fields, shared), `${label}: gateway answers as tusd\ngateway: ${g[i]!.body}\ntusd: ${t[i]!.body}`).toEqual(
        pick(t[i]!.fields, shared),
      );
      for (const [field, value] of Object.entries(step.expect ?? {}) as [Field, string | null][]) {
        if (deliberate.has(field)) continue;
        expect(g[i]!.fields[field], `${label}: the draft's ${field} (gateway)\n${g[i]!.body}`).toBe(value);
      }
    });
  });

  it('a refused request leaves nothing in S3: every object, multipart upload and staged segment of the tenant belongs to an upload created (answered 201, or named in a 104)', async () => {
    // The upload token's one upload is stored at the key the token names, not under its id.
    await expectOnlyCreatedUploadsInS3(stack.s3, BUCKET, tenant.name, createdUploads, [TOKEN_KEY]);
  });

  it('every bad-input row of the resumable-upload draft is answered as the catalogue says', () => {
    expectCatalogueRows('Resumable-upload draft', (name) =>
      gatewayAnswers.get(name)?.map((a) => ({ status: a.fields.status, body: a.body })),
    );
  });
});
