/**
 * The refusals of the presigned multipart endpoint: the "Presigned multipart endpoint" table of
 * docs/reference/bad-input.md. This test reads the table and produces every row against a real
 * gateway, the real worker, Temporal and MinIO — the gateway's own answers, and S3's answers to
 * PUTs that break what a part URL binds — and checks each status and that the answer contains the
 * row's code spans. A row without a case, or a case without a row, fails. After every case,
 * nothing was recorded (no reported part) and, once the upload is aborted or compensated, nothing
 * of it is left in S3.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3MultipartPlugin } from '../../src/gateway/s3-multipart';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { codeSpans, fragmentPattern, readRepoFile, tables } from '../support/markdown';
import { incompleteUploads, objectExists } from '../support/s3-inspect';
import { putToS3, sessionClient, type CompanionClient } from './companion-client';
import { startTestGateway, testTenant, type TestGateway } from './gateway-harness';

const CATALOGUE = 'docs/reference/bad-input.md';
const TABLE = 'Presigned multipart endpoint';
const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
let client: CompanionClient;
const acme = testTenant('badpresigned');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  gateway = await startTestGateway(stack, [acme], { plugins: [s3MultipartPlugin()] });
  client = await sessionClient(gateway, acme);
});

afterAll(async () => {
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
});

/** One answer: its status and its text (the gateway's JSON message, or S3's XML). */
interface Answer {
  status: number;
  text: string;
}

/** What a case leaves to check: the uploads it created (each must end with nothing recorded and nothing in S3). */
interface Produced {
  answers: Answer[];
  uploads: { uploadId: string; key: string }[];
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('base64');
const gatewayAnswer = ({ status, json }: { status: number; json: unknown }): Answer => ({
  status,
  text: (json as { message?: string } | undefined)?.message ?? JSON.stringify(json),
});

/** A 12 MiB upload declared at creation: parts of 5, 5 and 2 MiB. */
async function declared(): Promise<{ uploadId: string; key: string }> {
  return client.create('bad-input.bin', { 'upload-length': String(12 * MiB) });
}

/** Signs part 1 of a fresh upload with `bind`; the gateway's answer. */
async function signing(bind: { size?: string; checksum?: string }, partNumber = 1): Promise<Produced> {
  const upload = await declared();
  return { uploads: [upload], answers: [gatewayAnswer(await client.signRequest(upload.uploadId, upload.key, partNumber, bind))] };
}

/** A fresh upload with part 1 (5 MiB) in S3; its ETag. */
async function withFirstPart(): Promise<{ upload: { uploadId: string; key: string }; etag: string }> {
  const upload = await declared();
  const signed = await client.signed(upload.uploadId, upload.key, 1);
  const sent = await putToS3(signed.url, randomBytes(5 * MiB));
  expect(sent.status, sent.text).toBe(200);
  return { upload, etag: sent.etag };
}

/** Reports on part `n` of an upload that has part 1 in S3. */
async function reporting(n: number, claim: (etag: string) => unknown): Promise<Produced> {
  const { upload, etag } = await withFirstPart();
  return { uploads: [upload], answers: [gatewayAnswer(await client.done(upload.uploadId, upload.key, n, claim(etag)))] };
}

/** An empty-file request as @uppy/aws-s3 v6 sends it, with the given meta. */
function paramsQuery(meta: Record<string, string>): string {
  const query = new URLSearchParams({ filename: 'empty.txt', type: 'text/plain' });
  for (const [name, value] of Object.entries(meta)) query.set(`metadata[${name}]`, value);
  return `/params?${query}`;
}

const CASES: Record<string, () => Promise<Produced>> = {
  'sign a part number beyond the declared length': () => signing({}, 4),
  'sign with a malformed `size` (not a whole number, negative, over 5 GiB)': async () => {
    const produced: Produced = { answers: [], uploads: [] };
    for (const size of ['abc', '-1', String(5 * 1024 * MiB + 1)]) {
      const { answers, uploads } = await signing({ size });
      produced.answers.push(...answers);
      produced.uploads.push(...uploads);
    }
    return produced;
  },
  "sign with a `size` other than the part's (the length was declared)": () => signing({ size: String(5 * MiB + 1) }),
  'sign with a malformed `checksum`': () => signing({ checksum: sha256(Buffer.from('no algorithm')) }),
  'sign with a `checksum` algorithm not offered': () => signing({ checksum: `md5 ${createHash('md5').update('x').digest('base64')}` }),
  'sign with a `checksum` digest of the wrong length': () => signing({ checksum: 'sha256 AAAAAA==' }),
  'create with `upload-part-size` outside 5 MiB–5 GiB': async () => {
    const answer = await client.request('POST', '/multipart', {
      filename: 'parts.bin',
      metadata: { 'upload-length': String(12 * MiB), 'upload-part-size': String(MiB) },
    });
    return { answers: [gatewayAnswer(answer)], uploads: [] };
  },
  'PUT of a part larger (or smaller) than its URL binds': async () => {
    const upload = await declared();
    const { url } = await client.signed(upload.uploadId, upload.key, 1);
    const answers = [await putToS3(url, randomBytes(5 * MiB + 1)), await putToS3(url, randomBytes(5 * MiB - 1))];
    return { answers, uploads: [upload] };
  },
  'PUT of a part whose bytes do not match its bound checksum': async () => {
    const upload = await declared();
    const part = randomBytes(5 * MiB);
    const { url, headers } = await client.signed(upload.uploadId, upload.key, 1, { checksum: `sha256 ${sha256(part)}` });
    return { answers: [await putToS3(url, randomBytes(5 * MiB), headers)], uploads: [upload] };
  },
  'PUT of a part without its bound checksum header': async () => {
    const upload = await declared();
    const part = randomBytes(5 * MiB);
    const { url } = await client.signed(upload.uploadId, upload.key, 1, { checksum: `sha256 ${sha256(part)}` });
    return { answers: [await putToS3(url, part)], uploads: [upload] };
  },
  'report a part S3 does not have': () => reporting(2, (etag) => ({ ETag: etag, size: 5 * MiB })),
  'report a part with another ETag than S3 lists': () =>
    reporting(1, () => ({ ETag: '"0123456789abcdef0123456789abcdef"', size: 5 * MiB })),
  'report a part with another size than S3 lists': () => reporting(1, (etag) => ({ ETag: etag, size: 5 * MiB - 1 })),
  'report a part with a malformed body': async () => {
    const { upload, etag } = await withFirstPart();
    const answers: Answer[] = [];
    for (const claim of [undefined, {}, { ETag: etag }, { ETag: etag, size: '5242880' }, { ETag: 7, size: 5 * MiB }]) {
      answers.push(gatewayAnswer(await client.done(upload.uploadId, upload.key, 1, claim ?? null)));
    }
    return { answers, uploads: [upload] };
  },
  'ask `GET /s3/params` for a file declared larger than 0 bytes': async () => ({
    answers: [gatewayAnswer(await client.request('GET', paramsQuery({ 'upload-length': '5' })))],
    uploads: [],
  }),
  'POST a file with bytes to the empty-file form': async () => {
    const params = await client.request('GET', paramsQuery({}));
    expect(params.status).toBe(200);
    const { url, fields, uploadId, key } = params.json as { url: string; fields: Record<string, string>; uploadId: string; key: string };
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.set(name, value);
    form.set('file', new Blob([randomBytes(100)]), 'not-empty.txt');
    const response = await fetch(new URL(url, gateway.url), { method: 'POST', body: form });
    return { answers: [gatewayAnswer({ status: response.status, json: await response.json() })], uploads: [{ uploadId, key }] };
  },
};

function catalogueRows(): { request: string; by: string; status: number; error: string }[] {
  const found = tables(readRepoFile(CATALOGUE)).filter((t) => t.heading === TABLE);
  expect(found, `${CATALOGUE} has one table under "${TABLE}"`).toHaveLength(1);
  expect(found[0]!.header).toEqual(['request', 'answered by', 'status', 'error']);
  return found[0]!.rows.map(([request, by, status, error]) => ({ request: request!, by: by!, status: Number(status), error: error! }));
}

describe(`the refusals of ${CATALOGUE}, "${TABLE}"`, () => {
  const rows = catalogueRows();

  it('has a case for every row and a row for every case', () => {
    expect(rows.map((r) => r.request).sort()).toEqual(Object.keys(CASES).sort());
  });

  for (const row of rows) {
    it(`${row.request}: ${row.by} answers ${row.status}, ${codeSpans(row.error).join(' ')}`, async () => {
      const { answers, uploads } = await CASES[row.request]!();
      expect(answers.length).toBeGreaterThan(0);
      for (const answer of answers) {
        expect(answer.status, answer.text).toBe(row.status);
        // S3 answers in XML, the gateway in JSON: the row says whose answer it is.
        expect(answer.text.startsWith('<?xml'), answer.text).toBe(row.by === 'S3');
        for (const fragment of codeSpans(row.error)) expect(answer.text).toMatch(fragmentPattern(fragment));
      }
      for (const { uploadId, key } of uploads) {
        const state = await gateway.app.uploads.state(acme.name, uploadId);
        expect(state.reportedParts, 'nothing recorded').toBeUndefined();
        expect(state.partsCompleted).toBe(0);
        if (state.outcome === 'running') expect((await client.abort(uploadId, key)).json).toEqual({ outcome: 'cancelled' });
        expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
        expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
      }
    });
  }
});
