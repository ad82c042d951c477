/**
 * tus concatenation (parallel uploads) through the gateway, against the real worker, Temporal and
 * MinIO: tus-js-client with `parallelUploads` (partials of 8 MiB, joined by UploadPartCopy; and
 * partials of 3 MiB, joined through the worker), raw requests, a final through a second replica
 * (the first one's memory of the partials it saw stored goes stale), a partial that is never joined,
 * and the refusals that need tenants (another tenant's partial) or limits (partials over the
 * maximum). Each checks the object's bytes, that no partial is left in S3, and the tenant's quota
 * ledger independently of the gateway: the partials' reservations are committed once, the final
 * reserves nothing. The protocol answers are compared with tusd in tus-conformance.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partialObjectKeyOf, stagingPrefixOf } from '../../src/upload/staging';
import type { GatewayUploadState } from '../../src/upload/gateway-upload';
import { uploadWorkflowId } from '../../src/upload/request';
import { uploadDeleteWorkflowId } from '../../src/upload/delete-request';
import { claimPartialUpdate, releasePartialSignal, withdrawPartialUpdate } from '../../src/upload/gateway-upload-messages';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { expectCatalogueRows, type CataloguedAnswer } from '../support/http-refusals';
import { incompleteUploads, keysUnder, multipartKeysUnder, objectSha256 } from '../support/s3-inspect';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';
import {
  idOf,
  quotaLedgerOf,
  startTestGateway,
  startTus,
  storedPartials,
  testTenant,
  tusRequest,
  type TestGateway,
} from './gateway-harness';

const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
let shortExpiry: TestGateway;
let smallMaximum: TestGateway;
let replica: TestGateway;
let notifying: TestGateway;
let webhooks: WebhookReceiver;
const parallel = testTenant('concat-par');
const small = testTenant('concat-small');
const raw = testTenant('concat-raw');
const other = testTenant('concat-other');
const expiring = testTenant('concat-expiry');
const limited = testTenant('concat-limit');
const replicated = testTenant('concat-replica');
const held = testTenant('concat-held');
const broken = testTenant('concat-broken');
const terminating = testTenant('concat-delete');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  const defaults = { maxUploadBytes: 64 * MiB, requestsPerSecond: 1000, maxBodyStreams: 8 };
  gateway = await startTestGateway(stack, [parallel, small, raw, other, replicated, broken, terminating], { overrides: { defaults } });
  // A second replica of the same gateway: it did not see the partials sent through the first.
  replica = await startTestGateway(stack, [replicated], { overrides: { defaults } });
  shortExpiry = await startTestGateway(stack, [expiring], { overrides: { defaults, uploadExpiryMs: 8_000 } });
  smallMaximum = await startTestGateway(stack, [limited], { overrides: { defaults: { ...defaults, maxUploadBytes: 10 * MiB } } });
  // A tenant with a webhook, on a gateway of its own (its upload metric counts this tenant's uploads only).
  webhooks = await startWebhookReceiver();
  notifying = await startTestGateway(stack, [held], {
    overrides: { defaults, tenants: { [held.name]: { webhookUrl: webhooks.url(`/${held.name}`) } } },
  });
});

afterAll(async () => {
  await notifying?.close();
  await webhooks?.close();
  await replica?.close();
  await smallMaximum?.close();
  await shortExpiry?.close();
  await gateway?.close();
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const ledger = () => quotaLedgerOf(stack);

async function eventually<T>(read: () => Promise<T>, wanted: T, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await read();
    if (JSON.stringify(last) === JSON.stringify(wanted)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(last, what).toEqual(wanted);
}

/** The partials were joined: each ended completed, its stored object and staging prefix are gone, its reservation committed. */
async function expectPartialsSettled(tenant: string, final: GatewayUploadState): Promise<void> {
  expect(final.concat?.kind).toBe('final');
  const partials = final.concat?.kind === 'final' ? final.concat.partials : [];
  for (const id of partials) {
    const ended = await gateway.app.uploads.waitForEnd(tenant, id, 30_000);
    expect([ended.outcome, ended.concat], `partial ${id}`).toEqual(['completed', expect.objectContaining({ joinedInto: final.uploadId })]);
    expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(tenant, id)), `partial ${id}: staged objects`).toEqual([]);
    expect(await incompleteUploads(stack.s3, BUCKET, partialObjectKeyOf(tenant, id)), `partial ${id}: multipart uploads`).toEqual([]);
    await eventually(() => ledger().reservation(tenant, id), { status: 'committed' }, `partial ${id}: reservation`);
  }
  expect(await ledger().reservation(tenant, final.uploadId), 'the final reserves nothing').toEqual({ status: 'unknown' });
}

/** The tus uploads the gateway's metric counts with `outcome`. */
async function tusUploadsCounted(gw: TestGateway, outcome: string): Promise<number> {
  const counter = await gw.app.metrics.uploads.get();
  return counter.values.find((v) => v.labels.protocol === 'tus' && v.labels.outcome === outcome)?.value ?? 0;
}

/** The activities the upload's saga scheduled, in order (regular ones: the task-queue trips it made). */
async function scheduledActivities(tenant: string, uploadId: string): Promise<string[]> {
  const history = await stack.client.workflow.getHandle(uploadWorkflowId(tenant, uploadId)).fetchHistory();
  return (history.events ?? []).flatMap((event) => event.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
}

/** The parts of the stored object, from its multipart ETag (`"…-N"`). */
async function partCountOf(key: string): Promise<number> {
  const head = await stack.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  return Number(/-(\d+)"?$/.exec(head.ETag ?? '')?.[1]);
}

describe('tus concatenation', () => {
  it('tus-js-client with parallelUploads: 3 (8 MiB partials): joined by server-side copies, byte-identical, partials gone, quota counted once', async () => {
    const data = randomBytes(24 * MiB + 17);
    const sent: string[] = [];
    const run = startTus(data, {
      endpoint: `${gateway.url}/files`,
      headers: parallel.auth,
      parallelUploads: 3,
      metadata: { filename: 'parallel.bin', filetype: 'application/x-test' },
      onBeforeRequest: (request) => {
        const concat = request.getHeader('Upload-Concat');
        if (request.getMethod() === 'POST') sent.push(`POST ${concat?.startsWith('final;') ? 'final' : concat}`);
      },
    });
    await run.done;
    expect(sent.sort()).toEqual(['POST final', 'POST partial', 'POST partial', 'POST partial']);
    // The final's creation answered at its merge; its saga ends after settle-partials and notify.
    const final = await gateway.app.uploads.waitForEnd(parallel.name, idOf(run.upload.url), 30_000);
    expect(final).toMatchObject({ outcome: 'completed', length: data.length, offset: data.length, contentType: 'application/x-test' });
    expect(final.key).toBe(`${parallel.name}/${final.uploadId}/parallel.bin`);
    expect(await objectSha256(stack.s3, BUCKET, final.key)).toBe(sha256(data));
    expect(await partCountOf(final.key), 'one UploadPartCopy per partial').toBe(3);
    // Patch tus-concat-join-verifies: the join checks what it wrote, the merge follows without a verify step.
    expect(await scheduledActivities(parallel.name, final.uploadId), "the final's activity trips").toEqual([
      'joinPartials',
      'completeUpload',
    ]);
    await expectPartialsSettled(parallel.name, final);
    // Patch gateway-local-verify-merge: each partial verified and stored its bytes as local
    // activities, and its last record answered once stored (no waitUntilStored sent).
    for (const id of final.concat?.kind === 'final' ? final.concat.partials : []) {
      expect(await scheduledActivities(parallel.name, id), "a partial's activity trips").toEqual(['cleanupUpload']);
      const history = await stack.client.workflow.getHandle(uploadWorkflowId(parallel.name, id)).fetchHistory();
      const updates = (history.events ?? []).flatMap(
        (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name ?? [],
      );
      expect(updates).not.toContain('waitUntilStored');
    }
    await eventually(
      () => ledger().usage(parallel.name),
      { tenant: parallel.name, usedBytes: data.length, reservedBytes: 0, reservations: 0 },
      'the tenant uses the final size, holds nothing',
    );
  });

  it('tus-js-client with parallelUploads: 3 and partials under 5 MiB: joined through the worker, byte-identical, partials gone', async () => {
    const data = randomBytes(9 * MiB);
    const run = startTus(data, {
      endpoint: `${gateway.url}/files`,
      headers: small.auth,
      parallelUploads: 3,
      metadata: { filename: 'small-partials.bin' },
    });
    await run.done;
    const final = await gateway.app.uploads.waitForEnd(small.name, idOf(run.upload.url), 30_000);
    expect(final).toMatchObject({ outcome: 'completed', length: data.length });
    expect(await objectSha256(stack.s3, BUCKET, final.key)).toBe(sha256(data));
    // 3 + 2 MiB assembled into part 1, the remaining 1 + 3 MiB into part 2: S3 needs 5 MiB in every part but the last.
    expect(await partCountOf(final.key)).toBe(2);
    await expectPartialsSettled(small.name, final);
    await eventually(
      () => ledger().usage(small.name),
      { tenant: small.name, usedBytes: data.length, reservedBytes: 0, reservations: 0 },
      'the tenant uses the final size, holds nothing',
    );
  });

  it('raw requests: HEAD names partials and the final, a PATCH to the final is 403, the object is the partials in order', async () => {
    const parts = [randomBytes(6 * MiB), randomBytes(MiB + 1), randomBytes(0)];
    const urls: string[] = [];
    for (const part of parts) {
      const created = await tusRequest(`${gateway.url}/files`, 'POST', {
        ...raw.auth,
        'Upload-Length': String(part.length),
        'Upload-Concat': 'partial',
      });
      expect(created.status, await created.text()).toBe(201);
      const url = new URL(created.headers.get('location')!, gateway.url).toString();
      urls.push(url);
      if (part.length > 0) expect((await tusRequest(url, 'PATCH', { ...raw.auth, 'Upload-Offset': '0' }, part)).status).toBe(204);
      const head = await tusRequest(url, 'HEAD', raw.auth);
      expect([head.headers.get('upload-concat'), head.headers.get('upload-offset')]).toEqual(['partial', String(part.length)]);
    }
    const total = parts.reduce((n, p) => n + p.length, 0);
    // The partials hold their reservations until the final merged.
    await eventually(() => ledger().usage(raw.name), { tenant: raw.name, usedBytes: 0, reservedBytes: total, reservations: 3 }, 'reserved');

    const final = await tusRequest(`${gateway.url}/files`, 'POST', {
      ...raw.auth,
      'Upload-Concat': `final;${urls.map((u) => new URL(u).pathname).join(' ')}`,
      'Upload-Metadata': `filename ${Buffer.from('joined.bin').toString('base64')}`,
    });
    expect(final.status, await final.text()).toBe(201);
    const finalUrl = new URL(final.headers.get('location')!, gateway.url).toString();
    const head = await tusRequest(finalUrl, 'HEAD', raw.auth);
    expect([head.status, head.headers.get('upload-offset'), head.headers.get('upload-length'), head.headers.get('upload-concat')]).toEqual([
      200,
      String(total),
      String(total),
      `final;${urls.map((u) => new URL(u).pathname).join(' ')}`,
    ]);
    const patched = await tusRequest(finalUrl, 'PATCH', { ...raw.auth, 'Upload-Offset': String(total) }, Buffer.from('x'));
    expect([patched.status, await patched.text()]).toEqual([
      403,
      expect.stringContaining('is a final upload (Upload-Concat: final): it takes no PATCH'),
    ]);

    const state = await gateway.app.uploads.state(raw.name, idOf(finalUrl));
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(Buffer.concat(parts)));
    await expectPartialsSettled(raw.name, state);
    await eventually(
      () => ledger().usage(raw.name),
      { tenant: raw.name, usedBytes: total, reservedBytes: 0, reservations: 0 },
      'committed',
    );
    // A joined partial cannot be joined again: its bytes were moved into the final.
    const again = await tusRequest(`${gateway.url}/files`, 'POST', { ...raw.auth, 'Upload-Concat': `final;${new URL(urls[0]!).pathname}` });
    expect([again.status, await again.text()]).toEqual([400, expect.stringContaining(`was already joined into upload ${state.uploadId}`)]);
  });

  it('two gateways: a final through the one that did not see the partials stored reads them; the stale memory of the other is refused by the claim', async () => {
    // The partials' finishing PATCHes go through `gateway`, which remembers them stored; the final goes through `replica`.
    const parts = [randomBytes(5 * MiB + 3), randomBytes(MiB)];
    const paths = await storedPartials(gateway, replicated, parts);
    const final = await tusRequest(`${replica.url}/files`, 'POST', { ...replicated.auth, 'Upload-Concat': `final;${paths.join(' ')}` });
    expect(final.status, await final.text()).toBe(201);
    const state = await replica.app.uploads.waitForEnd(replicated.name, idOf(final.headers.get('location')), 30_000);
    expect(state.outcome).toBe('completed');
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(Buffer.concat(parts)));
    await expectPartialsSettled(replicated.name, state);
    // `gateway` still remembers both partials as stored and waiting: the claim's validator says what they are now.
    const again = await tusRequest(`${gateway.url}/files`, 'POST', { ...replicated.auth, 'Upload-Concat': `final;${paths.join(' ')}` });
    expect([again.status, await again.text()]).toEqual([400, expect.stringContaining(`was already joined into upload ${state.uploadId}`)]);
  });

  it("answers a final's creation once the object is merged, while its saga still notifies: HEAD and the state say merged, the end follows", async () => {
    const parts = [randomBytes(2 * MiB + 5), randomBytes(MiB)];
    const paths = await storedPartials(notifying, held, parts);
    const total = parts.reduce((n, p) => n + p.length, 0);
    // The tenant's webhook receiver holds its answer: the final's saga waits at notify, after its pivot.
    let release!: () => void;
    webhooks.holdUntil.set(`/${held.name}`, new Promise<void>((resolve) => (release = resolve)));
    const completedBefore = await tusUploadsCounted(notifying, 'completed');
    let finalId: string;
    try {
      const created = await tusRequest(`${notifying.url}/files`, 'POST', { ...held.auth, 'Upload-Concat': `final;${paths.join(' ')}` });
      expect(created.status, await created.text()).toBe(201);
      expect(created.headers.get('upload-concat')).toBe(`final;${paths.join(' ')}`);
      finalId = idOf(created.headers.get('location'));
      const handle = stack.client.workflow.getHandle(uploadWorkflowId(held.name, finalId));
      // Answered while the final's saga runs on (Temporal's own view, no worker involved)…
      expect((await handle.describe()).status.name).toBe('RUNNING');
      // …with the object in S3, byte for byte, at that moment, and the final counted completed.
      const key = `${held.name}/${finalId}/file`;
      expect(await objectSha256(stack.s3, BUCKET, key)).toBe(sha256(Buffer.concat(parts)));
      expect(await tusUploadsCounted(notifying, 'completed'), 'the final counted completed').toBe(completedBefore + 1);
      // The saga went on to notify, where the receiver holds it.
      await expect.poll(() => webhooks.received.some((w) => w.json.uploadId === finalId), { timeout: 10_000 }).toBe(true);
      // HEAD at once, from the merged mark the creation left (a query waits for the workflow task's
      // heartbeat while notify, a local activity, is held), and the state query: the final offset,
      // merged, still running, no expiry any more.
      const started = performance.now();
      const head = await tusRequest(`${notifying.url}/files/${finalId}`, 'HEAD', held.auth);
      expect(performance.now() - started, "the final's HEAD, from its mark").toBeLessThan(1_000);
      const state = await notifying.app.uploads.state(held.name, finalId);
      expect([
        head.status,
        head.headers.get('upload-offset'),
        head.headers.get('upload-length'),
        head.headers.get('upload-concat'),
      ]).toEqual([200, String(total), String(total), `final;${paths.join(' ')}`]);
      expect(head.headers.get('upload-expires')).toBeNull();
      expect(state).toMatchObject({ outcome: 'running', merged: true, offset: total, length: total, key });
      expect(state.failure).toBeUndefined();
      expect((await handle.describe()).status.name, 'still notifying').toBe('RUNNING');
    } finally {
      release();
    }
    const ended = await notifying.app.uploads.waitForEnd(held.name, finalId, 30_000);
    expect(ended).toMatchObject({ outcome: 'completed', phase: 'done', offset: total });
    expect(ended.result).toMatchObject({ size: total, notification: { status: 'delivered' } });
    expect(await tusUploadsCounted(notifying, 'completed'), 'counted once').toBe(completedBefore + 1);
    await expectPartialsSettled(held.name, ended);
    await eventually(
      () => ledger().usage(held.name),
      { tenant: held.name, usedBytes: total, reservedBytes: 0, reservations: 0 },
      'the tenant uses the final size, holds nothing',
    );
  });

  it("a final whose join fails (a partial's stored object replaced) is answered 422 with the failure; its partials are handed back", async () => {
    const parts = [randomBytes(MiB), randomBytes(MiB + 7)];
    const paths = await storedPartials(gateway, broken, parts);
    const ids = paths.map((path) => path.split('/').pop()!);
    // Replaced behind the saga's back: the join's reads are conditional on the ETag the partial stored.
    await stack.s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: partialObjectKeyOf(broken.name, ids[1]!), Body: randomBytes(MiB + 7) }),
    );
    const failedBefore = await tusUploadsCounted(gateway, 'compensated');
    const created = await tusRequest(`${gateway.url}/files`, 'POST', { ...broken.auth, 'Upload-Concat': `final;${paths.join(' ')}` });
    const body = await created.text();
    expect([created.status, created.headers.get('location')], body).toEqual([422, null]);
    expect(body).toMatch(/^the partial uploads could not be joined \(compensated\): \S+: /);
    expect(await tusUploadsCounted(gateway, 'compensated')).toBe(failedBefore + 1);
    // Nothing of the final in S3; the partials wait again, unclaimed.
    expect(await keysUnder(stack.s3, BUCKET, `${broken.name}/`)).toEqual([]);
    expect(await multipartKeysUnder(stack.s3, BUCKET, `${broken.name}/`), "the final's multipart upload aborted").toEqual([]);
    for (const id of ids) {
      await eventually(
        async () => {
          const state = await gateway.app.uploads.state(broken.name, id);
          return [state.phase, state.concat?.kind === 'partial' ? (state.concat.claimedBy ?? null) : 'not a partial'];
        },
        ['await-join', null],
        `partial ${id} handed back`,
      );
    }
  });

  it('a partial that is never joined is compensated at its expiry: stored object deleted, reservation released', async () => {
    const created = await tusRequest(`${shortExpiry.url}/files`, 'POST', {
      ...expiring.auth,
      'Upload-Length': String(MiB),
      'Upload-Concat': 'partial',
    });
    expect(created.status).toBe(201);
    const partialUrl = new URL(created.headers.get('location')!, shortExpiry.url).toString();
    const partialId = idOf(partialUrl);
    expect((await tusRequest(partialUrl, 'PATCH', { ...expiring.auth, 'Upload-Offset': '0' }, randomBytes(MiB))).status).toBe(204);
    const stored = await shortExpiry.app.uploads.state(expiring.name, partialId);
    expect([stored.phase, stored.concat?.kind]).toEqual(['await-join', 'partial']);
    expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(expiring.name, partialId))).toEqual([
      partialObjectKeyOf(expiring.name, partialId),
    ]);

    const ended = await shortExpiry.app.uploads.waitForEnd(expiring.name, partialId, 60_000);
    expect(ended.outcome).toBe('expired');
    expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(expiring.name, partialId))).toEqual([]);
    expect(await incompleteUploads(stack.s3, BUCKET, partialObjectKeyOf(expiring.name, partialId))).toEqual([]);
    await eventually(() => ledger().reservation(expiring.name, partialId), { status: 'released' }, 'released');
    await eventually(
      () => ledger().usage(expiring.name),
      { tenant: expiring.name, usedBytes: 0, reservedBytes: 0, reservations: 0 },
      'nothing held',
    );
  });

  const answers = new Map<string, CataloguedAnswer[]>();
  const answer = async (response: Response): Promise<CataloguedAnswer> => ({
    status: String(response.status),
    body: await response.text(),
  });

  it('a DELETE of a partial a final claims is 409 and cancels nothing; the final joins it; unclaimed it is 204 and compensated', async () => {
    const parts = [randomBytes(MiB + 11), randomBytes(2 * MiB), randomBytes(MiB)];
    const paths = await storedPartials(gateway, terminating, parts);
    const ids = paths.map((path) => path.split('/').pop()!);
    const [claimedId, withdrawnId, unclaimedId] = ids as [string, string, string];
    const partialHandle = (id: string) => stack.client.workflow.getHandle(uploadWorkflowId(terminating.name, id));
    const storedKeys = async (id: string) => keysUnder(stack.s3, BUCKET, stagingPrefixOf(terminating.name, id));

    // A final that is joining it, held on cue: its claim, as the gateway takes it when a final is created.
    const joining = 'final-joining-it';
    await partialHandle(claimedId).executeUpdate(claimPartialUpdate, { args: [{ finalUploadId: joining }] });
    const refused = await tusRequest(`${gateway.url}${paths[0]}`, 'DELETE', terminating.auth);
    answers.set('a DELETE of a partial a final is joining', [await answer(refused)]);
    expect(refused.status).toBe(409);
    // Nothing was cancelled: still stored, still claimed, its reservation still held.
    const kept = await gateway.app.uploads.state(terminating.name, claimedId);
    expect([kept.outcome, kept.phase, kept.concat]).toEqual(['running', 'await-join', expect.objectContaining({ claimedBy: joining })]);
    expect(await storedKeys(claimedId)).toEqual([partialObjectKeyOf(terminating.name, claimedId)]);
    expect(await ledger().reservation(terminating.name, claimedId)).toEqual({ status: 'reserved', bytes: parts[0]!.length });

    // The race a gateway's read leaves (a final claims between the read and the cancellation) is
    // closed by the workflow: once a DELETE's withdrawal is accepted, no final can claim the partial.
    await partialHandle(withdrawnId).executeUpdate(withdrawPartialUpdate);
    await partialHandle(claimedId).signal(releasePartialSignal, { finalUploadId: joining });
    const late = await tusRequest(`${gateway.url}/files`, 'POST', {
      ...terminating.auth,
      'Upload-Concat': `final;${paths[0]} ${paths[1]}`,
    });
    expect([late.status, (await late.text()).trimEnd()]).toEqual([409, `partial upload ${withdrawnId} is being terminated (tus DELETE)`]);
    const withdrawn = await tusRequest(`${gateway.url}${paths[1]}`, 'DELETE', terminating.auth);
    expect(withdrawn.status, await withdrawn.text()).toBe(204);

    // The partial the DELETE left alone is joined by a real final: its bytes are the final's, counted once.
    const created = await tusRequest(`${gateway.url}/files`, 'POST', { ...terminating.auth, 'Upload-Concat': `final;${paths[0]}` });
    expect(created.status, await created.text()).toBe(201);
    const finalId = idOf(created.headers.get('location'));
    const ended = await gateway.app.uploads.waitForEnd(terminating.name, finalId, 30_000);
    expect(ended).toMatchObject({ outcome: 'completed', offset: parts[0]!.length });
    expect(await objectSha256(stack.s3, BUCKET, `${terminating.name}/${finalId}/file`)).toBe(sha256(parts[0]!));
    await expectPartialsSettled(terminating.name, ended);
    // A DELETE of the joined partial now: 204 and nothing deleted (its bytes are the final's object,
    // which stays, counted), no delete saga started; HEAD still shows the joined partial.
    const settled = await tusRequest(`${gateway.url}${paths[0]}`, 'DELETE', terminating.auth);
    expect(settled.status, await settled.text()).toBe(204);
    expect(await objectSha256(stack.s3, BUCKET, `${terminating.name}/${finalId}/file`)).toBe(sha256(parts[0]!));
    const head = await tusRequest(`${gateway.url}${paths[0]}`, 'HEAD', terminating.auth);
    expect([head.status, head.headers.get('upload-offset')]).toEqual([200, String(parts[0]!.length)]);
    await expect(stack.client.workflow.getHandle(uploadDeleteWorkflowId(terminating.name, claimedId)).describe()).rejects.toThrow();

    // Unclaimed: terminated as before (compensated: stored object deleted, reservation released).
    const deleted = await tusRequest(`${gateway.url}${paths[2]}`, 'DELETE', terminating.auth);
    expect(deleted.status, await deleted.text()).toBe(204);
    for (const id of [withdrawnId, unclaimedId]) {
      expect((await gateway.app.uploads.state(terminating.name, id)).outcome, `partial ${id}`).toBe('cancelled');
      expect(await storedKeys(id), `partial ${id}: staged objects`).toEqual([]);
      await eventually(() => ledger().reservation(terminating.name, id), { status: 'released' }, `partial ${id}: released`);
    }
    // The tenant uses the joined bytes once and holds nothing; S3 holds the final's object only.
    await eventually(
      () => ledger().usage(terminating.name),
      { tenant: terminating.name, usedBytes: parts[0]!.length, reservedBytes: 0, reservations: 0 },
      'the final counted once',
    );
    expect(await keysUnder(stack.s3, BUCKET, `${terminating.name}/`)).toEqual([`${terminating.name}/${finalId}/file`]);
    for (const id of ids) expect(await storedKeys(id), `partial ${id}`).toEqual([]);
  });

  it("refusals that need tenants or limits: another tenant's partial is 404, partials over the maximum 413; nothing is recorded", async () => {
    // Another tenant's finished partial.
    const foreign = await tusRequest(`${gateway.url}/files`, 'POST', { ...other.auth, 'Upload-Length': '3', 'Upload-Concat': 'partial' });
    const foreignUrl = new URL(foreign.headers.get('location')!, gateway.url).toString();
    expect((await tusRequest(foreignUrl, 'PATCH', { ...other.auth, 'Upload-Offset': '0' }, Buffer.from('abc'))).status).toBe(204);
    const refused = await tusRequest(`${gateway.url}/files`, 'POST', {
      ...raw.auth,
      'Upload-Concat': `final;${new URL(foreignUrl).pathname}`,
    });
    answers.set("a final naming another tenant's partial", [await answer(refused)]);
    const untouched = await gateway.app.uploads.state(other.name, idOf(foreignUrl));
    expect([untouched.phase, untouched.concat]).toEqual(['await-join', expect.not.objectContaining({ claimedBy: expect.anything() })]);

    // Two partials of 6 MiB each fit the 10 MiB maximum; joined they do not.
    const urls: string[] = [];
    for (let i = 0; i < 2; i++) {
      const created = await tusRequest(`${smallMaximum.url}/files`, 'POST', {
        ...limited.auth,
        'Upload-Length': String(6 * MiB),
        'Upload-Concat': 'partial',
      });
      const url = new URL(created.headers.get('location')!, smallMaximum.url).toString();
      expect((await tusRequest(url, 'PATCH', { ...limited.auth, 'Upload-Offset': '0' }, randomBytes(6 * MiB))).status).toBe(204);
      urls.push(new URL(url).pathname);
    }
    const tooLarge = await tusRequest(`${smallMaximum.url}/files`, 'POST', { ...limited.auth, 'Upload-Concat': `final;${urls.join(' ')}` });
    answers.set('a final whose partials add up to more than the maximum upload size', [await answer(tooLarge)]);
    for (const url of urls) {
      const state = await smallMaximum.app.uploads.state(limited.name, url.split('/').pop()!);
      expect([state.phase, state.concat?.kind === 'partial' ? state.concat.claimedBy : 'not a partial']).toEqual(['await-join', undefined]);
    }
    // Nothing of a final was written: the tenants' own prefixes hold no object and no multipart upload.
    for (const tenant of [raw, limited]) {
      expect(await keysUnder(stack.s3, BUCKET, `${tenant.name}/`).then((keys) => keys.filter((k) => !k.endsWith('/joined.bin')))).toEqual(
        [],
      );
    }
    expectCatalogueRows('tus concatenation', (name) => answers.get(name));
  });
});
