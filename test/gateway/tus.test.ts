/**
 * The tus endpoint with a real client: tus-js-client in Node against in-process gateways, the real
 * worker, Temporal and MinIO. Every test checks what S3 holds afterwards independently of the code
 * under test (test/support/s3-inspect.ts): the object's SHA-256, no incomplete multipart upload, no
 * staged segment — and for uploads that end without an object, that the quota reservation is gone.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import type { Redis } from 'ioredis';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { stagingPrefixOf } from '../../src/upload/staging';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { incompleteUploads, keysUnder, objectSha256 } from '../support/s3-inspect';
import { startTcpCounter } from '../support/tcp-counter';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';
import { createTusUpload, idOf, startTestGateway, startTus, testRedis, testTenant, tusRequest, type TestGateway } from './gateway-harness';
import { STAMP_KEY } from '../../src/upload/object-stamp';
import { uploadWorkflowId } from '../../src/upload/request';
import { itStoreIndependent } from '../support/store-independent';
import type { GatewayUploadState } from '../../src/upload/gateway-upload';
import { progressPlugin } from '../../src/gateway/progress';
import { openStream } from './progress-stream';

const BUCKET = 'uploads';
let stack: TestStack;
let worker: RunningWorker;
let redis: Redis;
let gateway: TestGateway;
let replica: TestGateway;
let webhooks: WebhookReceiver;
const acme = testTenant('acme');
const beta = testTenant('beta');
const slow = testTenant('slow');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  redis = testRedis();
  webhooks = await startWebhookReceiver();
  const overrides = {
    tenants: { [acme.name]: { webhookUrl: webhooks.url('/acme') }, [slow.name]: { webhookUrl: webhooks.url(`/${slow.name}`) } },
  };
  // Two replicas sharing Redis (locks, rate limits), as behind a load balancer.
  gateway = await startTestGateway(stack, [acme, beta, slow], { redis, overrides });
  replica = await startTestGateway(stack, [acme, beta, slow], { redis, overrides, plugins: [progressPlugin()] });
});

afterAll(async () => {
  await replica?.close();
  await gateway?.close();
  await webhooks?.close();
  await redis?.quit();
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const ledger = () =>
  new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });

/** Nothing of the upload in S3 but (when `object`) the object itself. */
async function expectNothingLeftBehind(tenant: string, uploadId: string, key: string): Promise<void> {
  expect(await incompleteUploads(stack.s3, BUCKET, key), 'incomplete multipart uploads').toEqual([]);
  expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(tenant, uploadId)), 'staged segments').toEqual([]);
}

async function headOffset(url: string, auth: Record<string, string>): Promise<number> {
  const response = await tusRequest(url, 'HEAD', auth);
  expect(response.status).toBe(200);
  return Number(response.headers.get('upload-offset'));
}

describe('tus with tus-js-client', () => {
  it('uploads 12 MiB in 1 MiB chunks, folding staged chunks into 5 MiB parts: byte-identical, nothing left behind, webhook sent', async () => {
    const data = randomBytes(12 * MiB);
    const run = startTus(data, {
      endpoint: `${gateway.url}/files`,
      chunkSize: 1 * MiB,
      headers: acme.auth,
      metadata: { filename: 'twelve.bin', filetype: 'application/x-test' },
    });
    await run.done;

    // The PATCH that sent the last byte answered once the object was merged; the saga ends after it.
    const uploadId = idOf(run.upload.url);
    const state = await gateway.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(state).toMatchObject({
      outcome: 'completed',
      offset: 12 * MiB,
      partsCompleted: 3,
      key: `${acme.name}/${uploadId}/twelve.bin`,
      contentType: 'application/x-test',
    });
    expect(state.result).toMatchObject({ size: 12 * MiB, partCount: 3, notification: { status: 'delivered' } });
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    // Stamped with its upload, so a delete through the saga gives its bytes back to the tenant.
    const head = await stack.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: state.key }));
    expect(head.Metadata?.[STAMP_KEY]).toBe(uploadWorkflowId(acme.name, uploadId));
    await expectNothingLeftBehind(acme.name, uploadId, state.key);
    expect(webhooks.received.find((w) => w.json.uploadId === uploadId)?.json).toMatchObject({
      type: 'upload.completed',
      tenant: acme.name,
      key: state.key,
    });
    // HEAD after completion: the full offset, from the finished workflow.
    expect(await headOffset(run.upload.url!, acme.auth)).toBe(12 * MiB);
  });

  it('answers the finishing PATCH once the object is merged, while the saga still notifies: object byte-exact, HEAD at the end', async () => {
    // The tenant's webhook receiver holds its answer: the saga waits at notify, after its pivot.
    let release!: () => void;
    webhooks.holdUntil.set(`/${slow.name}`, new Promise<void>((resolve) => (release = resolve)));
    // The states the gateway answered with (published to progress streams), read without a query.
    const seen: GatewayUploadState[] = [];
    const stopObserving = gateway.app.uploads.observe((state) => state.tenant === slow.name && seen.push(state));
    const data = randomBytes(6 * MiB + 123);
    const run = startTus(data, {
      endpoint: `${gateway.url}/files`,
      chunkSize: 4 * MiB,
      headers: slow.auth,
      metadata: { filename: 'early.bin' },
    });
    let uploadId: string;
    try {
      await run.done;
      uploadId = idOf(run.upload.url);
      // Answered while the workflow runs on (Temporal's own view, no worker involved)…
      const { status } = await stack.client.workflow.getHandle(uploadWorkflowId(slow.name, uploadId)).describe();
      expect(status.name).toBe('RUNNING');
      // …from a state that says merged, every byte recorded, nothing failed.
      const answered = seen.filter((s) => s.uploadId === uploadId).pop();
      expect(answered).toMatchObject({ outcome: 'running', merged: true, offset: data.length, length: data.length });
      expect(answered?.failure).toBeUndefined();
      // The record that brought the last byte answered merged (verify and merge ran in its workflow
      // task, patch gateway-local-verify-merge): the finishing request sent no waitUntilMerged.
      const history = await stack.client.workflow.getHandle(uploadWorkflowId(slow.name, uploadId)).fetchHistory();
      const updates = (history.events ?? []).flatMap(
        (e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name ?? [],
      );
      expect(updates.at(-1)).toBe('recordChunk');
      expect(updates).not.toContain('waitUntilMerged');
      // A client told "done" finds the object in S3, byte for byte, at that moment.
      expect(await objectSha256(stack.s3, BUCKET, answered!.key)).toBe(sha256(data));
      // HEAD on either replica while notify (a local activity) holds the workflow task: answered at
      // once from the mark the finishing request left (a query would wait for the task's heartbeat,
      // up to 8 s), with the final offset and no expiry any more.
      // notify has sent the webhook, whose receiver holds it: the workflow task that runs notify is held.
      await expect.poll(() => webhooks.received.some((w) => w.path === `/${slow.name}` && w.json.uploadId === uploadId)).toBe(true);
      const path = new URL(run.upload.url!).pathname;
      const timedHead = async (base: string) => {
        const started = performance.now();
        const head = await tusRequest(new URL(path, base).toString(), 'HEAD', slow.auth);
        return { head, ms: performance.now() - started };
      };
      for (const base of [gateway.url, replica.url]) {
        const { head, ms } = await timedHead(base);
        expect(head.status).toBe(200);
        expect(Number(head.headers.get('upload-offset'))).toBe(data.length);
        expect(Number(head.headers.get('upload-length'))).toBe(data.length);
        expect(head.headers.get('upload-expires')).toBeNull();
        expect(head.headers.get('upload-metadata')).toContain('filename');
        expect(ms, `HEAD on ${base === gateway.url ? 'the finishing replica' : 'the other replica'}`).toBeLessThan(1_000);
      }
      // The resumable-upload draft's HEAD takes the same path: complete, at once.
      const started = performance.now();
      const draftHead = await fetch(new URL(path, replica.url), {
        method: 'HEAD',
        headers: { ...slow.auth, 'Upload-Draft-Interop-Version': '6' },
      });
      expect([draftHead.status, draftHead.headers.get('upload-offset'), draftHead.headers.get('upload-complete')]).toEqual([
        204,
        String(data.length),
        '?1',
      ]);
      expect(performance.now() - started, "the draft's HEAD").toBeLessThan(1_000);
      // A progress stream opened now starts at once too (its first reads take the mark), at the final offset.
      const streamStarted = performance.now();
      const stream = await openStream(replica, uploadId, slow.auth);
      try {
        await expect.poll(() => stream.events.length, { timeout: 5_000, interval: 20 }).toBeGreaterThan(0);
        expect(performance.now() - streamStarted, 'first progress event').toBeLessThan(1_000);
        expect(stream.events[0]).toMatchObject({ uploadId, bytes: data.length, totalBytes: data.length, outcome: 'running' });
      } finally {
        stream.close();
      }
      // Without the mark (lapsed, or never set), a replica asks the workflow: slower while notify
      // holds the task, still the final offset; what it learned marks the upload for the next read.
      await redis.del(`upload-saga:merged:${slow.name}:${uploadId}`);
      const asked = await timedHead(replica.url);
      expect(asked.head.status).toBe(200);
      expect(Number(asked.head.headers.get('upload-offset'))).toBe(data.length);
      expect(asked.head.headers.get('upload-expires')).toBeNull();
      await expect.poll(() => redis.exists(`upload-saga:merged:${slow.name}:${uploadId}`)).toBe(1);
      const again = await timedHead(gateway.url);
      expect(Number(again.head.headers.get('upload-offset'))).toBe(data.length);
      expect(again.ms, 'HEAD after a replica learned the merge from the workflow').toBeLessThan(1_000);
      expect((await stack.client.workflow.getHandle(uploadWorkflowId(slow.name, uploadId)).describe()).status.name, 'still notifying').toBe(
        'RUNNING',
      );
    } finally {
      release();
    }
    const ended = await gateway.app.uploads.waitForEnd(slow.name, uploadId, 30_000);
    expect(ended).toMatchObject({ outcome: 'completed', phase: 'done', offset: data.length });
    expect(ended.result).toMatchObject({ size: data.length, notification: { status: 'delivered' } });
    // The gateway waited for the end in the background and published it.
    await expect.poll(() => seen.filter((s) => s.uploadId === uploadId).pop()?.outcome).toBe('completed');
    stopObserving();
    await expectNothingLeftBehind(slow.name, uploadId, ended.key);
    await expect.poll(() => ledger().reservation(slow.name, uploadId), { timeout: 10_000 }).toEqual({ status: 'committed' });
  });

  /**
   * Uploads `data` with tus-js-client in PATCHes of `chunkSize` (chunked bodies, as on Node); after
   * each PATCH, what is staged: in the workflow's state and under the staging prefix in S3.
   */
  async function uploadInChunks(data: Buffer, chunkSize: number, filename: string) {
    const stagedAfter: { staged: number; objects: number }[] = [];
    let uploadId = '';
    const run = startTus(data, {
      endpoint: `${gateway.url}/files`,
      chunkSize,
      headers: acme.auth,
      metadata: { filename },
      onAfterResponse: async (request) => {
        if (request.getMethod() !== 'PATCH') return;
        uploadId = idOf(request.getURL());
        const state = await gateway.app.uploads.state(acme.name, uploadId);
        const objects = await keysUnder(stack.s3, BUCKET, stagingPrefixOf(acme.name, uploadId));
        stagedAfter.push({ staged: state.staged.length, objects: objects.length });
      },
    });
    await run.done;
    // The finishing answer comes at the merge: the saga's end (staging prefix deleted) follows.
    const state = await gateway.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    await expectNothingLeftBehind(acme.name, uploadId, state.key);
    return { state, stagedAfter };
  }

  it('sends the remainder of an 8 MiB PATCH inside its last part (parts of varying size): nothing staged, byte-identical', async () => {
    // 19 MiB in 8 MiB PATCHes: parts of 8, 8 and 3 MiB (5 MiB + the 3 MiB remainder folded in).
    const { state, stagedAfter } = await uploadInChunks(randomBytes(19 * MiB), 8 * MiB, 'eight.bin');
    expect(stagedAfter).toEqual(Array(3).fill({ staged: 0, objects: 0 }));
    expect(state).toMatchObject({ outcome: 'completed', offset: 19 * MiB, partsCompleted: 3, partsBytes: 19 * MiB });
    expect(state.result).toMatchObject({ size: 19 * MiB, partCount: 3 });
  });

  it('keeps equal parts with UPLOAD_SAGA_GATEWAY_TUS_EQUAL_PARTS: 8 MiB PATCHes stage their tails as before', async () => {
    const equal = await startTestGateway(stack, [acme], { redis, overrides: { tusEqualParts: true } });
    try {
      const data = randomBytes(19 * MiB);
      const staged: number[] = [];
      let uploadId = '';
      await startTus(data, {
        endpoint: `${equal.url}/files`,
        chunkSize: 8 * MiB,
        headers: acme.auth,
        onAfterResponse: async (request) => {
          if (request.getMethod() !== 'PATCH') return;
          uploadId = idOf(request.getURL());
          staged.push((await equal.app.uploads.state(acme.name, uploadId)).staged.length);
        },
      }).done;
      expect(staged).toEqual([1, 1, 0]);
      const state = await equal.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
      expect(state).toMatchObject({ outcome: 'completed', partsCompleted: 4 });
      expect(state.result).toMatchObject({ size: 19 * MiB, partCount: 4 });
      expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
      await expectNothingLeftBehind(acme.name, uploadId, state.key);
    } finally {
      await equal.close();
    }
  });

  it('cuts PATCHes without a remainder into parts of the part size as before: 10 MiB PATCHes, two 5 MiB parts each', async () => {
    const { state, stagedAfter } = await uploadInChunks(randomBytes(20 * MiB), 10 * MiB, 'ten.bin');
    expect(stagedAfter).toEqual(Array(2).fill({ staged: 0, objects: 0 }));
    expect(state).toMatchObject({ outcome: 'completed', offset: 20 * MiB, partsCompleted: 4 });
    expect(state.result).toMatchObject({ size: 20 * MiB, partCount: 4 });
  });

  it("stages a PATCH smaller than a part, and folds it and the next PATCH's remainder into that PATCH's parts", async () => {
    const data = randomBytes(12 * MiB);
    const url = await createTusUpload(gateway, acme, data.length);
    const uploadId = idOf(url);
    const patch = async (from: number, to: number) => {
      const response = await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': String(from) }, data.subarray(from, to));
      expect(response.status, await response.text()).toBe(204);
      return gateway.app.uploads.state(acme.name, uploadId);
    };
    // 2 MiB: smaller than a part, staged as before.
    expect(await patch(0, 2 * MiB)).toMatchObject({
      offset: 2 * MiB,
      partsCompleted: 0,
      partsBytes: 0,
      staged: [{ start: 0, end: 2 * MiB }],
    });
    // 9 MiB: the staged 2 MiB read back + 3 MiB make part 1; 5 MiB make part 2, and the last 1 MiB is folded into it.
    expect(await patch(2 * MiB, 11 * MiB)).toMatchObject({ offset: 11 * MiB, partsCompleted: 2, partsBytes: 11 * MiB, staged: [] });
    // The last MiB: the upload's last part, on its own.
    expect(await patch(11 * MiB, 12 * MiB)).toMatchObject({ offset: 12 * MiB, partsCompleted: 3 });
    const state = await gateway.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(state.outcome).toBe('completed');
    expect(state.result).toMatchObject({ size: 12 * MiB, partCount: 3 });
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    await expectNothingLeftBehind(acme.name, uploadId, state.key);
  });

  it('resumes with a new client from the offset HEAD reports after the connection died mid-PATCH', async () => {
    const data = randomBytes(12 * MiB);
    const gatewayPort = Number(new URL(gateway.url).port);
    const relay = await startTcpCounter({ host: '127.0.0.1', port: gatewayPort }, { bytesPerSecond: 3 * MiB });
    // One PATCH for the whole file (no chunkSize): the cut lands inside it.
    const first = startTus(data, { endpoint: `${relay.url}/files`, headers: acme.auth, metadata: { filename: 'resumed.bin' } });
    const failed = first.done.then(
      () => expect.fail('the first client should have lost its connection'),
      (err: unknown) => err,
    );
    const deadline = Date.now() + 60_000;
    while (relay.bytesUp() < 7 * MiB && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const sentBeforeCut = relay.bytesUp();
    await relay.close(); // destroys both sockets
    expect(await failed).toBeInstanceOf(Error);

    const url = new URL(new URL(first.upload.url!).pathname, gateway.url).toString();
    const offset = await headOffset(url, acme.auth);
    // What arrived before the cut was kept: the first part (5 MiB) with the remainder (under 5 MiB)
    // folded into it, since the body ended there (parts of varying size): nothing staged.
    expect(offset).toBeGreaterThan(5 * MiB);
    expect(offset).toBeLessThan(10 * MiB);
    const uploadId = idOf(url);
    const before = await gateway.app.uploads.state(acme.name, uploadId);
    expect(before).toMatchObject({ partsCompleted: 1, partsBytes: offset, staged: [] });

    let resent = 0;
    const second = startTus(data, { uploadUrl: url, headers: acme.auth, onProgress: (sent) => (resent = sent) });
    await second.done;
    const state = await gateway.app.uploads.waitForEnd(acme.name, uploadId, 30_000);
    expect(state.outcome).toBe('completed');
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    await expectNothingLeftBehind(acme.name, uploadId, state.key);
    console.log(
      `resume: ${(sentBeforeCut / MiB).toFixed(2)} MiB sent before the cut, ${(offset / MiB).toFixed(2)} MiB kept, ` +
        `the new client sent ${((resent - offset) / MiB).toFixed(2)} MiB from offset ${offset}`,
    );
  });

  itStoreIndependent(
    'continues the workflow as new when many chunks arrive (the first sent with the POST), and still ends byte-identical',
    async () => {
      const small = await startTestGateway(stack, [acme], { redis, service: { updatesPerRun: 4 } });
      try {
        const data = randomBytes(11 * MiB + 123);
        const run = startTus(data, {
          endpoint: `${small.url}/files`,
          chunkSize: 1 * MiB,
          headers: acme.auth,
          uploadDataDuringCreation: true,
        });
        await run.done;
        const state = await small.app.uploads.waitForEnd(acme.name, idOf(run.upload.url), 30_000);
        expect(state.outcome).toBe('completed');
        expect(state.runs).toBeGreaterThanOrEqual(3);
        expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
        await expectNothingLeftBehind(acme.name, state.uploadId, state.key);
      } finally {
        await small.close();
      }
    },
  );
});

describe('tus across replicas', () => {
  itStoreIndependent('accepts PATCHes alternately on two gateways: the offset lives in the workflow, not in a gateway', async () => {
    const data = randomBytes(7 * MiB + 5);
    const url = await createTusUpload(gateway, acme, data.length, 'alternating.bin');
    const path = new URL(url).pathname;
    let offset = 0;
    for (let i = 0; offset < data.length; i++) {
      const target = i % 2 === 0 ? gateway : replica;
      const chunk = data.subarray(offset, offset + MiB);
      const response = await tusRequest(`${target.url}${path}`, 'PATCH', { ...acme.auth, 'Upload-Offset': String(offset) }, chunk);
      expect(response.status, await response.text()).toBe(204);
      offset = Number(response.headers.get('upload-offset'));
      if (offset < data.length) expect(await headOffset(`${(i % 2 === 0 ? replica : gateway).url}${path}`, acme.auth)).toBe(offset);
    }
    const state = await replica.app.uploads.waitForEnd(acme.name, idOf(url), 30_000);
    expect(state.outcome).toBe('completed');
    expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    await expectNothingLeftBehind(acme.name, state.uploadId, state.key);
  });

  itStoreIndependent(
    'a replica whose last sight of an upload is stale writes nothing before the workflow confirms it: 409, the other replica’s bytes kept',
    async () => {
      const data = randomBytes(4 * MiB);
      const url = await createTusUpload(gateway, acme, data.length, 'stale.bin');
      const path = new URL(url).pathname;
      const patch = (target: TestGateway, from: number, body: Buffer) =>
        tusRequest(`${target.url}${path}`, 'PATCH', { ...acme.auth, 'Upload-Offset': String(from) }, body);
      // `gateway` remembers the upload at 1 MiB; `replica` then moves it to 2 MiB.
      for (const [target, from] of [
        [gateway, 0],
        [replica, MiB],
      ] as const) {
        const response = await patch(target, from, data.subarray(from, from + MiB));
        expect(response.status, await response.text()).toBe(204);
      }
      // A client that did not learn the new offset sends other bytes for [1 MiB, 2 MiB) to `gateway`:
      // written from its stale sight, they would replace the staged segment of that range.
      const stale = await patch(gateway, MiB, randomBytes(MiB));
      expect(stale.status).toBe(409);
      expect(await stale.text()).toMatch(/moved on to offset 2097152/);
      for (const [target, from] of [
        [gateway, 2 * MiB],
        [replica, 3 * MiB],
      ] as const) {
        const response = await patch(target, from, data.subarray(from, from + MiB));
        expect(response.status, await response.text()).toBe(204);
      }
      const state = await gateway.app.uploads.waitForEnd(acme.name, idOf(url), 30_000);
      expect(state.outcome).toBe('completed');
      expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
      await expectNothingLeftBehind(acme.name, state.uploadId, state.key);
    },
  );

  itStoreIndependent('lets only one of two concurrent PATCHes at the same offset through; the other gets 409', async () => {
    const data = randomBytes(3 * MiB);
    const url = await createTusUpload(gateway, acme, data.length);
    const path = new URL(url).pathname;
    const chunk = data.subarray(0, MiB);
    const statuses = await Promise.all(
      [gateway, replica].map(
        async (target) => (await tusRequest(`${target.url}${path}`, 'PATCH', { ...acme.auth, 'Upload-Offset': '0' }, chunk)).status,
      ),
    );
    expect(statuses.sort()).toEqual([204, 409]);
    expect(await headOffset(url, acme.auth)).toBe(MiB);
    await tusRequest(url, 'DELETE', acme.auth);
  });
});

describe('tus: where a PATCH starts', () => {
  /** Counts the workflow queries a gateway's uploads service sends (every read of an upload's state is one). */
  function countQueries(target: TestGateway): { count: number } {
    const counter = { count: 0 };
    const uploads = target.app.uploads;
    const state = uploads.state.bind(uploads);
    uploads.state = (...args: Parameters<typeof uploads.state>) => {
      counter.count++;
      return state(...args);
    };
    return counter;
  }

  itStoreIndependent(
    'sends PATCHes at the offset the gateway last saw without a query when it is the only replica, with one per PATCH (confirming) otherwise',
    async () => {
      // Without Redis the lock is in-process: this gateway is the only replica of its uploads.
      const alone = await startTestGateway(stack, [acme]);
      try {
        for (const [target, queriesPerPatch] of [
          [alone, 0],
          [gateway, 1],
        ] as const) {
          const data = randomBytes(3 * MiB + 7);
          const url = await createTusUpload(target, acme, data.length, 'counted.bin');
          const path = new URL(url).pathname;
          const queries = countQueries(target);
          const patches = [0, MiB, 2 * MiB, 3 * MiB];
          for (const [i, from] of patches.entries()) {
            const to = patches[i + 1] ?? data.length;
            const response = await tusRequest(
              `${target.url}${path}`,
              'PATCH',
              { ...acme.auth, 'Upload-Offset': String(from) },
              data.subarray(from, to),
            );
            expect(response.status, await response.text()).toBe(204);
            expect(Number(response.headers.get('upload-offset'))).toBe(to);
          }
          expect(queries.count, `queries for ${patches.length} PATCHes`).toBe(queriesPerPatch * patches.length);
          const state = await target.app.uploads.waitForEnd(acme.name, idOf(url), 30_000);
          expect(state.outcome).toBe('completed');
          expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
          await expectNothingLeftBehind(acme.name, state.uploadId, state.key);
        }
      } finally {
        await alone.close();
      }
    },
  );
});

describe('tus protocol errors', () => {
  itStoreIndependent('answers 401 without a valid token, and 404 for another tenant’s upload on every method', async () => {
    const url = await createTusUpload(gateway, acme, 2 * MiB);
    expect((await tusRequest(url, 'HEAD', {})).status).toBe(401);
    expect((await tusRequest(url, 'HEAD', { Authorization: 'Bearer not-a-token' })).status).toBe(401);
    expect((await tusRequest(url, 'HEAD', beta.auth)).status).toBe(404);
    expect((await tusRequest(url, 'PATCH', { ...beta.auth, 'Upload-Offset': '0' }, randomBytes(1024))).status).toBe(404);
    expect((await tusRequest(url, 'DELETE', beta.auth)).status).toBe(404);
    // The owner's upload is untouched.
    expect(await headOffset(url, acme.auth)).toBe(0);
    await tusRequest(url, 'DELETE', acme.auth);
  });

  itStoreIndependent(
    'answers 409 for a PATCH at the wrong offset, 415 for a wrong Content-Type, 412 without Tus-Resumable, and records nothing',
    async () => {
      const url = await createTusUpload(gateway, acme, 2 * MiB);
      const response = await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': '1024' }, randomBytes(1024));
      expect(response.status).toBe(409);
      const wrongType = await tusRequest(
        url,
        'PATCH',
        { ...acme.auth, 'Upload-Offset': '0', 'Content-Type': 'application/octet-stream' },
        randomBytes(1024),
      );
      expect(wrongType.status).toBe(415);
      const noVersion = await fetch(url, { method: 'HEAD', headers: acme.auth });
      expect(noVersion.status).toBe(412);
      expect(await headOffset(url, acme.auth)).toBe(0);
      await tusRequest(url, 'DELETE', acme.auth);
    },
  );

  itStoreIndependent(
    'answers 460 for a body that does not match Upload-Checksum and records nothing; a matching one is accepted',
    async () => {
      const data = randomBytes(2 * MiB);
      const url = await createTusUpload(gateway, acme, data.length, 'checked.bin');
      const first = data.subarray(0, MiB);
      const digest = (algorithm: string, bytes: Buffer) => createHash(algorithm).update(bytes).digest('base64');

      const wrong = await tusRequest(
        url,
        'PATCH',
        { ...acme.auth, 'Upload-Offset': '0', 'Upload-Checksum': `sha1 ${digest('sha1', randomBytes(16))}` },
        first,
      );
      expect(wrong.status).toBe(460);
      expect(await headOffset(url, acme.auth)).toBe(0);
      const unsupported = await tusRequest(
        url,
        'PATCH',
        { ...acme.auth, 'Upload-Offset': '0', 'Upload-Checksum': `sha512 ${digest('sha512', first)}` },
        first,
      );
      expect(unsupported.status).toBe(400);
      expect(await unsupported.text()).toContain('sha1, md5, crc32, sha256');

      const right = await tusRequest(
        url,
        'PATCH',
        { ...acme.auth, 'Upload-Offset': '0', 'Upload-Checksum': `sha1 ${digest('sha1', first)}` },
        first,
      );
      expect(right.status).toBe(204);
      const last = await tusRequest(
        url,
        'PATCH',
        { ...acme.auth, 'Upload-Offset': String(MiB), 'Upload-Checksum': `md5 ${digest('md5', data.subarray(MiB))}` },
        data.subarray(MiB),
      );
      expect(last.status).toBe(204);
      const state = await gateway.app.uploads.waitForEnd(acme.name, idOf(url), 30_000);
      expect(state.outcome).toBe('completed');
      expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
    },
  );

  itStoreIndependent('answers 413 for an upload larger than the tenant may send, and 429 beyond its request rate', async () => {
    const limited = testTenant('limited');
    const small = await startTestGateway(stack, [limited], {
      overrides: { tenants: { [limited.name]: { maxUploadBytes: 10 * MiB, requestsPerSecond: 3 } } },
    });
    try {
      const tooLarge = await tusRequest(`${small.url}/files`, 'POST', { ...limited.auth, 'Upload-Length': String(10 * MiB + 1) });
      expect(tooLarge.status).toBe(413);
      const options = await tusRequest(`${small.url}/files`, 'OPTIONS', {});
      expect(options.headers.get('tus-extension')).toBe(
        'creation,creation-with-upload,creation-defer-length,termination,expiration,checksum,concatenation',
      );
      expect(options.headers.get('tus-checksum-algorithm')).toBe('sha1,md5,crc32,sha256');

      await new Promise((r) => setTimeout(r, 1000)); // a fresh one-second window
      const answers = await Promise.all(Array.from({ length: 10 }, () => tusRequest(`${small.url}/files/nope`, 'HEAD', limited.auth)));
      const limitedAnswers = answers.filter((r) => r.status === 429);
      // 3 per second; a burst may straddle a second boundary, so at most 6 get through.
      expect(limitedAnswers.length).toBeGreaterThanOrEqual(4);
      expect(limitedAnswers[0]!.headers.get('retry-after')).toBe('1');
      expect(answers.filter((r) => r.status === 404).length).toBe(10 - limitedAnswers.length);
    } finally {
      await small.close();
    }
  });
});

describe('uploads that end without an object leave nothing behind', () => {
  it('terminates an upload on DELETE: multipart upload aborted, staged segment deleted, reservation released, then 410', async () => {
    const url = await createTusUpload(gateway, acme, 8 * MiB, 'terminated.bin');
    // A part, then a PATCH smaller than a part: staged.
    for (const [offset, bytes] of [
      [0, 5 * MiB],
      [5 * MiB, MiB],
    ]) {
      const patch = await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': String(offset) }, randomBytes(bytes!));
      expect(patch.status).toBe(204);
    }
    const uploadId = idOf(url);
    const during = await gateway.app.uploads.state(acme.name, uploadId);
    expect(during).toMatchObject({ partsCompleted: 1, staged: [{ start: 5 * MiB, end: 6 * MiB }] });
    expect(await incompleteUploads(stack.s3, BUCKET, during.key)).toHaveLength(1);
    expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(acme.name, uploadId))).toHaveLength(1);

    expect((await tusRequest(url, 'DELETE', acme.auth)).status).toBe(204);
    const state = await gateway.app.uploads.state(acme.name, uploadId);
    expect(state.outcome).toBe('cancelled');
    expect(state.failure?.compensations.map((c) => `${c.step}:${c.status}`)).toEqual([
      'open-multipart:compensated',
      'reserve-space:compensated',
    ]);
    await expectNothingLeftBehind(acme.name, uploadId, state.key);
    expect((await tusRequest(url, 'HEAD', acme.auth)).status).toBe(410);
    expect((await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': String(6 * MiB) }, randomBytes(1024))).status).toBe(410);
  });

  it('leaves no segment behind when a PATCH from a remembered state meets an upload cancelled elsewhere (no Redis): 410', async () => {
    // Without Redis this gateway is the only replica: a PATCH at the offset it last saw asks the workflow nothing first.
    const alone = await startTestGateway(stack, [acme]);
    try {
      const url = await createTusUpload(alone, acme, 8 * MiB, 'cancelled-elsewhere.bin');
      const uploadId = idOf(url);
      const first = await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': '0' }, randomBytes(1 * MiB));
      expect(first.status).toBe(204);
      // Cancelled outside the gateway (as from the Temporal UI or the CLI): the saga deletes the staging prefix.
      const handle = stack.client.workflow.getHandle(uploadWorkflowId(acme.name, uploadId));
      await handle.cancel();
      await handle.result().catch(() => undefined);
      expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(acme.name, uploadId))).toEqual([]);

      // This PATCH stages its bytes before the workflow refuses the record.
      const late = await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': String(1 * MiB) }, randomBytes(1 * MiB));
      expect(late.status, await late.text()).toBe(410);
      const state = await alone.app.uploads.state(acme.name, uploadId);
      expect(state.outcome).toBe('cancelled');
      await expectNothingLeftBehind(acme.name, uploadId, state.key);
    } finally {
      await alone.close();
    }
  });

  it('terminates a finished upload on DELETE: its object is deleted through the delete saga, the quota given back, then 410', async () => {
    const tenant = testTenant('acme-finished-delete');
    const own = await startTestGateway(stack, [tenant], { redis });
    try {
      const data = randomBytes(2 * MiB);
      const url = await createTusUpload(own, tenant, data.length, 'finished.bin');
      expect((await tusRequest(url, 'PATCH', { ...tenant.auth, 'Upload-Offset': '0' }, data)).status).toBe(204);
      const uploadId = idOf(url);
      const stored = await own.app.uploads.waitForEnd(tenant.name, uploadId, 30_000);
      expect(stored.outcome).toBe('completed');
      expect(await objectSha256(stack.s3, BUCKET, stored.key)).toBe(sha256(data));
      await expect.poll(async () => (await ledger().usage(tenant.name)).usedBytes, { timeout: 15_000 }).toBe(data.length);

      expect((await tusRequest(url, 'DELETE', tenant.auth)).status).toBe(204);
      await expect(stack.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: stored.key }))).rejects.toMatchObject({ name: 'NotFound' });
      await expect.poll(async () => (await ledger().usage(tenant.name)).usedBytes, { timeout: 15_000 }).toBe(0);
      // Terminated: every later request is 410, a second DELETE too (nothing is deleted twice).
      expect((await tusRequest(url, 'HEAD', tenant.auth)).status).toBe(410);
      expect((await tusRequest(url, 'DELETE', tenant.auth)).status).toBe(410);
    } finally {
      await own.close();
    }
  });

  it('a DELETE right after the finishing PATCH (merged, the saga still notifying) waits for its end, then deletes the object', async () => {
    let release!: () => void;
    webhooks.holdUntil.set(`/${slow.name}`, new Promise<void>((resolve) => (release = resolve)));
    const data = randomBytes(MiB + 5);
    const url = await createTusUpload(gateway, slow, data.length, 'deleted-early.bin');
    const uploadId = idOf(url);
    // The DELETE reads the upload merged and running; only then may the saga go on to its end.
    const uploads = gateway.app.uploads;
    const get = uploads.get.bind(uploads);
    let readMerged: GatewayUploadState | undefined;
    uploads.get = async (...args: Parameters<typeof uploads.get>) => {
      const state = await get(...args);
      if (state.uploadId === uploadId && state.merged && state.outcome === 'running') {
        readMerged = state;
        setTimeout(release, 200);
      }
      return state;
    };
    try {
      expect((await tusRequest(url, 'PATCH', { ...slow.auth, 'Upload-Offset': '0' }, data)).status).toBe(204);
      const handle = stack.client.workflow.getHandle(uploadWorkflowId(slow.name, uploadId));
      expect((await handle.describe()).status.name, 'answered before the saga ended').toBe('RUNNING');
      // Not cancelled (after the pivot a cancellation is ignored and the object would stay): deleted once completed.
      expect((await tusRequest(url, 'DELETE', slow.auth)).status).toBe(204);
    } finally {
      uploads.get = get;
      release();
    }
    expect(readMerged, 'the DELETE met the upload merged, its saga running').toBeDefined();
    expect((await gateway.app.uploads.state(slow.name, uploadId)).outcome).toBe('completed');
    await expect(stack.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: readMerged!.key }))).rejects.toMatchObject({
      name: 'NotFound',
    });
    // Deleted: no replica answers from the mark the finishing PATCH left (the DELETE withdrew it).
    expect((await tusRequest(url, 'HEAD', slow.auth)).status).toBe(410);
    expect((await tusRequest(new URL(new URL(url).pathname, replica.url).toString(), 'HEAD', slow.auth)).status).toBe(410);
  });

  it('a single replica (no Redis) answers HEAD of a merged upload from its own mark while notify is held; a DELETE withdraws it', async () => {
    const alone = await startTestGateway(stack, [slow], {
      overrides: { tenants: { [slow.name]: { webhookUrl: webhooks.url(`/${slow.name}`) } } },
    });
    let release!: () => void;
    webhooks.holdUntil.set(`/${slow.name}`, new Promise<void>((resolve) => (release = resolve)));
    try {
      const data = randomBytes(MiB + 7);
      const url = await createTusUpload(alone, slow, data.length, 'alone.bin');
      const uploadId = idOf(url);
      expect((await tusRequest(url, 'PATCH', { ...slow.auth, 'Upload-Offset': '0' }, data)).status).toBe(204);
      // notify has sent the webhook, whose receiver holds it: the workflow task that runs notify is held.
      await expect.poll(() => webhooks.received.some((w) => w.path === `/${slow.name}` && w.json.uploadId === uploadId)).toBe(true);
      const started = performance.now();
      const head = await tusRequest(url, 'HEAD', slow.auth);
      expect(performance.now() - started, 'HEAD from the mark in memory').toBeLessThan(1_000);
      expect([head.status, Number(head.headers.get('upload-offset')), head.headers.get('upload-expires')]).toEqual([
        200,
        data.length,
        null,
      ]);
      // The DELETE waits for the saga's end, then deletes the object; HEAD then asks the workflow: gone.
      setTimeout(release, 200);
      expect((await tusRequest(url, 'DELETE', slow.auth)).status).toBe(204);
      expect((await tusRequest(url, 'HEAD', slow.auth)).status).toBe(410);
    } finally {
      release();
      await alone.close();
    }
  });

  it('refuses to merge when a part in S3 is not what the gateway sent (replaced behind its back): 422, compensated', async () => {
    const data = randomBytes(6 * MiB);
    const url = await createTusUpload(gateway, acme, data.length, 'tampered.bin');
    expect((await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': '0' }, data.subarray(0, 5 * MiB))).status).toBe(204);
    const uploadId = idOf(url);
    const during = await gateway.app.uploads.state(acme.name, uploadId);
    // Part 1 replaced with other bytes of the same size, with a valid checksum of its own.
    await stack.s3.send(
      new UploadPartCommand({
        Bucket: BUCKET,
        Key: during.key,
        UploadId: during.multipartUploadId,
        PartNumber: 1,
        Body: randomBytes(5 * MiB),
        ChecksumAlgorithm: 'CRC32C',
      }),
    );
    const last = await tusRequest(url, 'PATCH', { ...acme.auth, 'Upload-Offset': String(5 * MiB) }, data.subarray(5 * MiB));
    expect(last.status).toBe(422);
    expect(await last.text()).toMatch(/ChecksumMismatch: .*checksums S3 lists for the 2 parts differ/);
    const state = await gateway.app.uploads.state(acme.name, uploadId);
    expect(state.outcome).toBe('compensated');
    expect(state.failure?.failedStep).toBe('verify');
    await expectNothingLeftBehind(acme.name, uploadId, state.key);
  });

  itStoreIndependent('expires an upload not finished in time: compensated by the workflow’s timer, then 410', async () => {
    const expiring = testTenant('expiring');
    const short = await startTestGateway(stack, [expiring], { overrides: { uploadExpiryMs: 4000 } });
    try {
      const url = await createTusUpload(short, expiring, 8 * MiB, 'expiring.bin');
      const patch = await tusRequest(url, 'PATCH', { ...expiring.auth, 'Upload-Offset': '0' }, randomBytes(6 * MiB));
      expect(patch.status).toBe(204);
      expect(Date.parse(patch.headers.get('upload-expires')!)).toBeGreaterThan(Date.now() - 5000);
      const uploadId = idOf(url);
      expect((await ledger().usage(expiring.name)).reservedBytes).toBe(8 * MiB);

      const state = await short.app.uploads.waitForEnd(expiring.name, uploadId, 60_000);
      expect(state.outcome).toBe('expired');
      expect(state.failure?.cause.type).toBe('UploadExpired');
      await expectNothingLeftBehind(expiring.name, uploadId, state.key);
      expect(await ledger().usage(expiring.name)).toMatchObject({ reservedBytes: 0, usedBytes: 0 });
      expect((await tusRequest(url, 'HEAD', expiring.auth)).status).toBe(410);
      expect((await tusRequest(url, 'PATCH', { ...expiring.auth, 'Upload-Offset': String(6 * MiB) }, randomBytes(1024))).status).toBe(410);
    } finally {
      await short.close();
    }
  });
});
