/**
 * Pause and resume of gateway uploads (`POST /uploads/:id/pause` and `/resume`, and the same
 * Updates through UploadClient), against in-process gateways, the real worker, Temporal and MinIO:
 * a paused tus upload refuses PATCHes with 423 and still answers HEAD, keeps its reservation, and
 * finishes with tus-js-client once resumed; the expiry clock runs or stops as asked, and a pause
 * with it stopped that outlasts the maximum pause expires the upload (compensated); a pause
 * survives a worker restart; a paused presigned upload signs no part URL. The refusals are the
 * "Gateway pause and resume" table of docs/reference/bad-input.md, read and produced here.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient } from '../../src/client';
import { s3MultipartPlugin } from '../../src/gateway/s3-multipart';
import { stagingPrefixOf } from '../../src/upload/staging';
import { runCliInProcess } from '../support/cli-in-process';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { incompleteUploads, keysUnder, objectSha256 } from '../support/s3-inspect';
import { codeSpans, fragmentPattern, readRepoFile, tables } from '../support/markdown';
import { sessionClient, type CompanionClient } from './companion-client';
import {
  createTusUpload,
  idOf,
  quotaLedgerOf,
  startTestGateway,
  startTus,
  testRedis,
  testTenant,
  tusRequest,
  type TestGateway,
  type TestTenant,
} from './gateway-harness';

const BUCKET = 'uploads';
const CATALOGUE = 'docs/reference/bad-input.md';
const TABLE = 'Gateway pause and resume';
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
/** Uploads expire 8 s after creation; a pause with the clock stopped lasts at most 30 s. */
let shortLived: TestGateway;
/** A pause with the clock stopped lasts at most 3 s (uploads expire after the default 24 h). */
let bounded: TestGateway;
let companion: CompanionClient;
/** With Redis, as replicas run: every PATCH confirms its state with the workflow, so it sees a pause sent around the gateway. */
let replicated: TestGateway;
let redis: Redis;
const acme = testTenant('pause');
const beta = testTenant('pauseother');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  gateway = await startTestGateway(stack, [acme, beta], { plugins: [s3MultipartPlugin()] });
  shortLived = await startTestGateway(stack, [acme, beta], {
    env: { UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY: '8s', UPLOAD_SAGA_GATEWAY_MAX_PAUSE: '30s' },
  });
  bounded = await startTestGateway(stack, [acme, beta], { env: { UPLOAD_SAGA_GATEWAY_MAX_PAUSE: '3s' } });
  companion = await sessionClient(gateway, acme);
  redis = testRedis();
  replicated = await startTestGateway(stack, [acme, beta], { redis });
});

afterAll(async () => {
  await replicated?.close();
  await redis?.quit();
  await bounded?.close();
  await shortLived?.close();
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** `POST /uploads/:id/<action>` with a JSON body; status and JSON answer. */
async function pauseRoute(
  target: TestGateway,
  tenant: TestTenant,
  uploadId: string,
  action: 'pause' | 'resume',
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${target.url}/uploads/${encodeURIComponent(uploadId)}/${action}`, {
    method: 'POST',
    headers: { ...tenant.auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

async function patch(url: string, tenant: TestTenant, offset: number, body: Buffer): Promise<Response> {
  return tusRequest(url, 'PATCH', { ...tenant.auth, 'Upload-Offset': String(offset) }, body);
}

async function head(url: string, tenant: TestTenant): Promise<Response> {
  return tusRequest(url, 'HEAD', tenant.auth);
}

/** Waits until the upload's workflow ended and returns its outcome. */
async function outcomeOf(target: TestGateway, uploadId: string, tenant = acme): Promise<string> {
  return (await target.app.uploads.waitForEnd(tenant.name, uploadId, 30_000)).outcome;
}

/** `upload_saga_gateway_pauses_total` of a gateway, by action. */
async function pauseCounts(target: TestGateway): Promise<Record<'pause' | 'resume', number>> {
  const { values } = await target.app.metrics.pauses.get();
  const count = (action: string) => values.find((v) => v.labels.action === action)?.value ?? 0;
  return { pause: count('pause'), resume: count('resume') };
}

/** The CLI in this process, against this file's stack. */
const runCli = (...argv: string[]) => runCliInProcess(stack.env, argv);

describe('pausing a tus upload through the gateway', () => {
  it('refuses the next PATCH with 423 while HEAD gives the offset, holds the reservation, and tus-js-client finishes it once resumed', async () => {
    const data = randomBytes(12 * MiB);
    const url = await createTusUpload(gateway, acme, data.length, 'paused.bin');
    const uploadId = idOf(url);
    expect((await patch(url, acme, 0, data.subarray(0, 6 * MiB))).status).toBe(204);
    const countsBefore = await pauseCounts(gateway);

    const paused = await pauseRoute(gateway, acme, uploadId, 'pause', { reason: 'maintenance by ops' });
    expect(paused.status, JSON.stringify(paused.json)).toBe(200);
    expect(paused.json).toMatchObject({
      paused: true,
      offset: 6 * MiB,
      pause: { paused: true, held: true, reason: 'maintenance by ops', expiry: 'runs' },
    });

    const refused = await patch(url, acme, 6 * MiB, data.subarray(6 * MiB));
    expect(refused.status).toBe(423);
    const message = await refused.text();
    expect(message).toMatch(/is paused since .* \(maintenance by ops\); nothing new is accepted until it is resumed/);
    const answer = await head(url, acme);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('upload-offset')).toBe(String(6 * MiB));
    expect(answer.headers.get('upload-expires')).toBeTruthy();
    // The reservation is held while paused.
    expect(await quotaLedgerOf(stack).reservation(acme.name, uploadId)).toEqual({ status: 'reserved', bytes: data.length });
    // The state the gateway reads says so (the progress stream shows it).
    expect((await gateway.app.uploads.state(acme.name, uploadId)).pause).toMatchObject({ paused: true, reason: 'maintenance by ops' });

    const resumed = await pauseRoute(gateway, acme, uploadId, 'resume');
    expect(resumed.status, JSON.stringify(resumed.json)).toBe(200);
    expect(resumed.json).toMatchObject({ paused: false, offset: 6 * MiB });
    // Counted by the gateway's metrics; a refused resume (409) is not.
    expect((await pauseRoute(gateway, acme, uploadId, 'resume')).status).toBe(409);
    expect(await pauseCounts(gateway)).toEqual({ pause: countsBefore.pause + 1, resume: countsBefore.resume + 1 });

    await startTus(data, { endpoint: `${gateway.url}/files`, uploadUrl: url, headers: acme.auth, chunkSize: 4 * MiB }).done;
    const state = await gateway.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(state.outcome).toBe('completed');
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    expect(await incompleteUploads(stack.s3, BUCKET, state.key)).toEqual([]);
    expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(acme.name, uploadId))).toEqual([]);
  });

  it('with the expiry clock stopped, outlives its expiry while paused (within the maximum pause) and gets the paused time added at resume', async () => {
    const data = randomBytes(2 * MiB);
    const url = await createTusUpload(shortLived, acme, data.length, 'stops.bin');
    const uploadId = idOf(url);
    expect((await patch(url, acme, 0, data.subarray(0, MiB))).status).toBe(204);
    const before = Date.parse((await head(url, acme)).headers.get('upload-expires')!);

    const paused = await pauseRoute(shortLived, acme, uploadId, 'pause', { expiry: 'stops' });
    expect(paused.json).toMatchObject({ paused: true, pause: { expiry: 'stops' } });
    await new Promise((resolve) => setTimeout(resolve, 10_000)); // past the 8 s expiry
    expect((await shortLived.app.uploads.state(acme.name, uploadId)).outcome).toBe('running');

    const resumed = await pauseRoute(shortLived, acme, uploadId, 'resume');
    expect(resumed.status, JSON.stringify(resumed.json)).toBe(200);
    const after = await head(url, acme);
    expect(after.status).toBe(200);
    // Upload-Expires has second precision: the expiry moved on by the ~10 s paused.
    expect(Date.parse(after.headers.get('upload-expires')!) - before).toBeGreaterThanOrEqual(9_000);
    expect((await patch(url, acme, MiB, data.subarray(MiB))).status).toBe(204);
    expect(await outcomeOf(shortLived, uploadId)).toBe('completed');
  }, 60_000);

  it('with the expiry clock stopped, expires once the pause outlasts the maximum pause, compensated as an expired upload', async () => {
    const data = randomBytes(8 * MiB);
    const url = await createTusUpload(bounded, acme, data.length, 'outlasted.bin');
    const uploadId = idOf(url);
    // A 5 MiB part in the multipart upload and 1 MiB staged: both must be gone once it expired.
    expect((await patch(url, acme, 0, data.subarray(0, 5 * MiB))).status).toBe(204);
    expect((await patch(url, acme, 5 * MiB, data.subarray(5 * MiB, 6 * MiB))).status).toBe(204);
    const { key } = await bounded.app.uploads.state(acme.name, uploadId);
    const staging = stagingPrefixOf(acme.name, uploadId);
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toHaveLength(1);
    expect(await keysUnder(stack.s3, BUCKET, staging)).toHaveLength(1);

    const pausedAt = Date.now();
    const paused = await pauseRoute(bounded, acme, uploadId, 'pause', { expiry: 'stops', reason: 'forgotten' });
    expect(paused.json).toMatchObject({ paused: true, pause: { expiry: 'stops' } });
    // Still paused and running before the bound (the upload's own expiry is a day away).
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await bounded.app.uploads.state(acme.name, uploadId)).outcome).toBe('running');

    const ended = await bounded.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(ended.outcome).toBe('expired');
    expect(Date.now() - pausedAt).toBeGreaterThanOrEqual(3000);
    expect(ended.failure?.cause.message).toMatch(
      /^the upload expired at .*: it was paused with its expiry clock stopped since .*, longer than the maximum pause in all \(UPLOAD_SAGA_GATEWAY_MAX_PAUSE, 3s\), with 6\.0 MiB of 8\.0 MiB received/,
    );
    // The reported expiry is when it expired, not a day later.
    expect(ended.expiresAt).toBeLessThan(Date.now());
    // Compensated as any expired upload: multipart upload aborted, staged segment deleted, reservation released.
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
    expect(await keysUnder(stack.s3, BUCKET, staging)).toEqual([]);
    expect(await quotaLedgerOf(stack).reservation(acme.name, uploadId)).toMatchObject({ status: 'released' });
    expect((await head(url, acme)).status).toBe(410);
    const resume = await pauseRoute(bounded, acme, uploadId, 'resume');
    expect(resume.status).toBe(409);
    expect(String(resume.json.message)).toMatch(/it has ended \(expired\)/);
  }, 60_000);

  it('counts every pause with the clock stopped against the maximum: resuming and pausing again does not start it again', async () => {
    const data = randomBytes(2 * MiB);
    const url = await createTusUpload(bounded, acme, data.length, 'paused-in-turns.bin');
    const uploadId = idOf(url);
    expect((await patch(url, acme, 0, data.subarray(0, MiB))).status).toBe(204);
    // Two pauses of about 1.2 s each, resumed in between: 2.4 s of the 3 s maximum.
    for (let turn = 0; turn < 2; turn++) {
      expect((await pauseRoute(bounded, acme, uploadId, 'pause', { expiry: 'stops' })).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      expect((await pauseRoute(bounded, acme, uploadId, 'resume')).status).toBe(200);
    }
    expect((await bounded.app.uploads.state(acme.name, uploadId)).outcome).toBe('running');
    // A third pause has what is left, well under the 3 s one pause alone would get.
    const third = Date.now();
    expect((await pauseRoute(bounded, acme, uploadId, 'pause', { expiry: 'stops' })).status).toBe(200);
    const ended = await bounded.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(ended.outcome).toBe('expired');
    expect(Date.now() - third).toBeLessThan(2500);
    expect(ended.failure?.cause.message).toMatch(
      /paused with its expiry clock stopped since .* after [23]s of such pauses before, longer than the maximum pause in all \(UPLOAD_SAGA_GATEWAY_MAX_PAUSE, 3s\)/,
    );
    expect(await incompleteUploads(stack.s3, BUCKET, ended.key)).toEqual([]);
    expect(await quotaLedgerOf(stack).reservation(acme.name, uploadId)).toMatchObject({ status: 'released' });
  }, 60_000);

  it('bounds a pause sent around the gateway (UploadHandle) by the maximum recorded at creation', async () => {
    const data = randomBytes(2 * MiB);
    const url = await createTusUpload(bounded, acme, data.length, 'outlasted-handle.bin');
    const uploadId = idOf(url);
    expect((await patch(url, acme, 0, data.subarray(0, MiB))).status).toBe(204);
    const handle = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue }).getHandle(acme.name, uploadId);
    const countsBefore = await pauseCounts(bounded);
    expect(await handle.pause({ expiry: 'stops', reason: 'around the gateway' })).toMatchObject({ paused: true, expiry: 'stops' });

    const ended = await bounded.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(ended.outcome).toBe('expired');
    expect(ended.failure?.cause.message).toMatch(/longer than the maximum pause in all \(UPLOAD_SAGA_GATEWAY_MAX_PAUSE, 3s\)/);
    expect(await incompleteUploads(stack.s3, BUCKET, ended.key)).toEqual([]);
    expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(acme.name, uploadId))).toEqual([]);
    expect(await quotaLedgerOf(stack).reservation(acme.name, uploadId)).toMatchObject({ status: 'released' });
    // The gateway's metrics count only what went through its route.
    expect(await pauseCounts(bounded)).toEqual(countsBefore);
  }, 60_000);

  it('with the expiry clock running, is compensated as expired while paused, its reservation released', async () => {
    const data = randomBytes(2 * MiB);
    const url = await createTusUpload(shortLived, acme, data.length, 'runs.bin');
    const uploadId = idOf(url);
    expect((await patch(url, acme, 0, data.subarray(0, MiB))).status).toBe(204);
    const paused = await pauseRoute(shortLived, acme, uploadId, 'pause', { expiry: 'runs' });
    expect(paused.status).toBe(200);

    expect(await outcomeOf(shortLived, uploadId)).toBe('expired');
    const key = (await shortLived.app.uploads.state(acme.name, uploadId)).key;
    expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
    expect(await quotaLedgerOf(stack).reservation(acme.name, uploadId)).toMatchObject({ status: 'released' });
    expect((await head(url, acme)).status).toBe(410);
    const resume = await pauseRoute(shortLived, acme, uploadId, 'resume');
    expect(resume.status).toBe(409);
    expect(String(resume.json.message)).toMatch(/it has ended \(expired\)/);
  }, 60_000);

  it('is paused from the CLI with --expiry stops and resumed from it; a bad --expiry is refused before anything is asked', async () => {
    const data = randomBytes(2 * MiB);
    const url = await createTusUpload(replicated, acme, data.length, 'cli.bin');
    const uploadId = idOf(url);
    expect((await patch(url, acme, 0, data.subarray(0, MiB))).status).toBe(204);
    const bad = await runCli('pause', acme.name, uploadId, '--expiry', 'soon');
    expect(bad.code, bad.output).toBe(2);
    expect(bad.output).toContain('--expiry: expiry must be one of "runs", "stops"');
    const handle = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue }).getHandle(acme.name, uploadId);
    expect(await handle.pauseState()).toMatchObject({ paused: false });

    const paused = await runCli('pause', acme.name, uploadId, '--expiry', 'stops', '--reason', 'from the CLI');
    expect(paused.code, paused.output).toBe(0);
    expect(await handle.pauseState()).toMatchObject({ paused: true, expiry: 'stops', reason: 'from the CLI' });
    expect((await patch(url, acme, MiB, data.subarray(MiB))).status).toBe(423);
    const resumed = await runCli('resume', acme.name, uploadId);
    expect(resumed.code, resumed.output).toBe(0);
    expect((await patch(url, acme, MiB, data.subarray(MiB))).status).toBe(204);
    expect((await replicated.app.uploads.waitForEnd(acme.name, uploadId, 30_000)).outcome).toBe('completed');
  }, 60_000);

  it('stays paused across a worker restart, and UploadClient resumes a gateway upload', async () => {
    const data = randomBytes(6 * MiB);
    const url = await createTusUpload(replicated, acme, data.length, 'restart.bin');
    const uploadId = idOf(url);
    expect((await patch(url, acme, 0, data.subarray(0, 5 * MiB))).status).toBe(204);
    // Paused through the application API: the gateway upload's workflow id is the upload's.
    const handle = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue }).getHandle(acme.name, uploadId);
    expect(await handle.pause({ reason: 'before the worker restart' })).toMatchObject({ paused: true, held: true, expiry: 'runs' });

    await worker.stop();
    worker = await startUploadWorker(stack);

    expect((await patch(url, acme, 5 * MiB, data.subarray(5 * MiB))).status).toBe(423);
    expect((await head(url, acme)).headers.get('upload-offset')).toBe(String(5 * MiB));
    expect(await handle.pauseState()).toMatchObject({ paused: true, reason: 'before the worker restart' });
    expect(await handle.resume()).toMatchObject({ paused: false });
    expect((await patch(url, acme, 5 * MiB, data.subarray(5 * MiB))).status).toBe(204);
    const state = await replicated.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(state.outcome).toBe('completed');
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
  }, 240_000);
});

describe('pausing an upload of the resumable-upload draft', () => {
  it('refuses an append with 423 while HEAD answers the offset, and takes it once resumed', async () => {
    const data = randomBytes(2 * MiB);
    const url = await createTusUpload(gateway, acme, data.length, 'draft.bin');
    const uploadId = idOf(url);
    const draft = (extra: Record<string, string>, body?: Buffer) =>
      fetch(url, {
        method: body ? 'PATCH' : 'HEAD',
        headers: { 'Upload-Draft-Interop-Version': '6', ...acme.auth, ...extra },
        ...(body ? { body } : {}),
      });
    const append = (offset: number, body: Buffer, complete: '?0' | '?1') =>
      draft({ 'Upload-Offset': String(offset), 'Upload-Complete': complete, 'Content-Type': 'application/partial-upload' }, body);
    expect((await append(0, data.subarray(0, MiB), '?0')).status).toBe(201);
    expect((await pauseRoute(gateway, acme, uploadId, 'pause', { reason: 'draft' })).status).toBe(200);

    const refused = await append(MiB, data.subarray(MiB), '?1');
    expect(refused.status).toBe(423);
    expect(await refused.text()).toMatch(/is paused since .* \(draft\)/);
    expect((await draft({})).headers.get('upload-offset')).toBe(String(MiB));

    expect((await pauseRoute(gateway, acme, uploadId, 'resume')).status).toBe(200);
    expect((await append(MiB, data.subarray(MiB), '?1')).status).toBe(201);
    const state = await gateway.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(state.outcome).toBe('completed');
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
  });
});

describe('pausing a presigned multipart upload', () => {
  it('refuses part URLs, part reports and complete with 423, and signs again once resumed', async () => {
    const upload = await companion.create('presigned-paused.bin', { 'upload-length': String(6 * MiB) });
    const first = randomBytes(5 * MiB);
    const etag = await companion.putPart(upload.uploadId, upload.key, 1, first);
    expect((await pauseRoute(gateway, acme, upload.uploadId, 'pause', { reason: 'audit' })).status).toBe(200);

    const sign = await companion.signRequest(upload.uploadId, upload.key, 2);
    expect(sign.status).toBe(423);
    expect(sign.json).toMatchObject({ error: 'UploadPaused', pause: { paused: true, reason: 'audit' } });
    expect((await companion.done(upload.uploadId, upload.key, 1, { ETag: etag, size: first.length })).status).toBe(423);
    expect((await companion.complete(upload.uploadId, upload.key, [{ PartNumber: 1, ETag: etag }])).status).toBe(423);
    // Listing parts is reading: still answered.
    expect((await companion.list(upload.uploadId, upload.key)).status).toBe(200);

    expect((await pauseRoute(gateway, acme, upload.uploadId, 'resume')).status).toBe(200);
    const second = randomBytes(MiB);
    const etag2 = await companion.putPart(upload.uploadId, upload.key, 2, second);
    const done = await companion.complete(upload.uploadId, upload.key, [
      { PartNumber: 1, ETag: etag },
      { PartNumber: 2, ETag: etag2 },
    ]);
    expect(done.status, JSON.stringify(done.json)).toBe(200);
    expect(await objectSha256(stack.s3, BUCKET, upload.key)).toBe(sha256(Buffer.concat([first, second])));
  });
});

// ---- the catalogue's rows

/** Each row's case: the answer (status and JSON message) the row describes. */
const cases: Record<string, () => Promise<{ status: number; message: string }>> = {
  'pause of an unknown upload': async () => answerOf(await pauseRoute(gateway, acme, 'no-such-upload', 'pause')),
  "pause of another tenant's upload": async () => {
    const uploadId = idOf(await createTusUpload(gateway, acme, MiB));
    return answerOf(await pauseRoute(gateway, beta, uploadId, 'pause'));
  },
  'pause of a finished upload': async () => {
    const url = await createTusUpload(gateway, acme, MiB);
    expect((await patch(url, acme, 0, randomBytes(MiB))).status).toBe(204);
    // The finishing PATCH answers at the merge; the saga ends just after.
    await gateway.app.uploads.waitForEnd(acme.name, idOf(url), 30_000);
    return answerOf(await pauseRoute(gateway, acme, idOf(url), 'pause'));
  },
  'resume of an upload that is not paused': async () =>
    answerOf(await pauseRoute(gateway, acme, idOf(await createTusUpload(gateway, acme, MiB)), 'resume')),
  'pause with an expiry other than runs or stops': async () =>
    answerOf(await pauseRoute(gateway, acme, idOf(await createTusUpload(gateway, acme, MiB)), 'pause', { expiry: 'forever' })),
  'pause with a reason over 200 characters': async () =>
    answerOf(await pauseRoute(gateway, acme, idOf(await createTusUpload(gateway, acme, MiB)), 'pause', { reason: 'x'.repeat(201) })),
  'PATCH of a paused tus upload': async () => {
    const url = await createTusUpload(gateway, acme, MiB);
    expect((await pauseRoute(gateway, acme, idOf(url), 'pause', { reason: 'ops' })).status).toBe(200);
    const response = await patch(url, acme, 0, randomBytes(MiB));
    return { status: response.status, message: await response.text() };
  },
};

function answerOf({ status, json }: { status: number; json: Record<string, unknown> }) {
  return { status, message: String(json.message) };
}

describe(`the refusals of ${CATALOGUE}, "${TABLE}"`, () => {
  const found = tables(readRepoFile(CATALOGUE)).filter((t) => t.heading === TABLE);
  const rows = found[0]?.rows.map(([request, status, error]) => ({ request: request!, status: Number(status), error: error! })) ?? [];

  it('has one table, and a case for every row and a row for every case', () => {
    expect(found).toHaveLength(1);
    expect(rows.map((r) => r.request).sort()).toEqual(Object.keys(cases).sort());
  });

  for (const row of rows) {
    it(`${row.request}: ${row.status}, ${codeSpans(row.error).join(' ')}`, async () => {
      const answer = await cases[row.request]!();
      expect(answer.status, answer.message).toBe(row.status);
      for (const fragment of codeSpans(row.error)) expect(answer.message).toMatch(fragmentPattern(fragment));
    });
  }
});
