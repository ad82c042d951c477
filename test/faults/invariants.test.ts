/**
 * Negative controls of the fault suite's invariant checker (`invariants.ts`): after one real upload
 * completed, each violation the checker claims to catch is planted in the real systems — other
 * bytes under the key, the object gone, a leftover multipart upload, a staged object, an open
 * reservation, a reservation committed twice over, a webhook event that contradicts the outcome, one
 * whose signature does not verify, one repeated under its key with another body —
 * and the checker must fail naming it. The clean upload passes first, so a checker that always
 * fails is caught as well.
 *
 * Why it is built this way: a checker that passes a planted violation makes every fault scenario
 * pass vacuously; planting through the same APIs a faulty saga would leave behind (S3, the ledger,
 * an HTTP delivery to the receiver) tests the checker's reads, not a stand-in.
 */
import { createHmac, randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient } from '../../src/client';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { stagingPrefixOf } from '../../src/upload/staging';
import { makeRandomFile, makeTempDir, MiB, type TestFile } from '../support/files';
import { connectTestStack, startUploadWorker, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import type { TrackedUpload } from './framework';
import { assertTenantLedgerInvariants, assertUploadInvariants, type InvariantContext, type InvariantExpectation } from './invariants';
import { startWebhookSink, type SinkDelivery, type WebhookSink } from './webhook-sink';

const webhookSecret = `invariants-test-secret-${randomUUID()}`;
const bucket = 'uploads';
const tenant = uniqueId('t-invariants');
let stack: TestStack;
let worker: RunningWorker;
let sink: WebhookSink;
let ctx: InvariantContext;
let tmp: Awaited<ReturnType<typeof makeTempDir>>;
let file: TestFile;
let upload: TrackedUpload;
let ledger: TemporalQuotaLedger;

beforeAll(async () => {
  stack = await connectTestStack({ env: { UPLOAD_SAGA_WEBHOOK_SECRET: webhookSecret } });
  worker = await startUploadWorker(stack);
  sink = await startWebhookSink();
  const taskQueue = stack.config.temporal.taskQueue;
  ctx = { client: stack.client, taskQueue, s3: stack.s3, webhook: sink, webhookSecret, log: () => undefined };
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue, limits: { defaultBytes: 1024 ** 4 } });
  tmp = await makeTempDir('upload-saga-invariants-');
  file = await makeRandomFile(tmp.dir, 'source.bin', 6 * MiB);
  const uploadId = uniqueId('up');
  const key = `invariants/${uniqueId('obj')}.bin`;
  const handle = await new UploadClient({ client: stack.client, taskQueue }).start({
    uploadId,
    tenant,
    source: { type: 'file', path: file.path },
    destination: { bucket, key },
    webhookUrl: sink.url(),
  });
  upload = {
    tenant,
    uploadId,
    workflowId: handle.workflowId,
    bucket,
    key,
    source: { size: file.size, sha256: file.sha256 },
    webhookUrl: sink.url(),
    handle,
    checked: false,
  };
  await handle.result();
}, 180_000);

afterAll(async () => {
  await sink?.close();
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

/** The checker's verdict on `tracked` (default: the completed upload): the message, or `undefined` when it passed. */
async function verdict(tracked: TrackedUpload = upload, expectation: InvariantExpectation = {}): Promise<string | undefined> {
  // A fresh object each time: the checker caches how an upload settled per tracked object.
  return assertUploadInvariants(ctx, { ...tracked }, expectation).then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error.message : String(error)),
  );
}

async function putSource(): Promise<void> {
  await stack.s3.send(new PutObjectCommand({ Bucket: bucket, Key: upload.key, Body: await fsp.readFile(file.path) }));
}

describe('the invariant checker', () => {
  it('passes the clean, completed upload (the control the plants are measured against)', async () => {
    expect(await verdict()).toBeUndefined();
    await expect(assertTenantLedgerInvariants(ctx, tenant, [upload])).resolves.toBeUndefined();
  }, 60_000);

  it('fails when the object is not byte-identical to the source', async () => {
    const other = Buffer.from(await fsp.readFile(file.path));
    other[0] = (other[0] ?? 0) ^ 0xff;
    await stack.s3.send(new PutObjectCommand({ Bucket: bucket, Key: upload.key, Body: other }));
    try {
      expect(await verdict()).toMatch(/is not byte-identical to the source: SHA-256 [0-9a-f]{64}, source/);
    } finally {
      await putSource();
    }
  }, 60_000);

  it('fails when a completed upload has no object', async () => {
    await stack.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: upload.key }));
    try {
      expect(await verdict()).toMatch(/the upload completed but s3:\/\/uploads\/invariants\/\S+ does not exist/);
    } finally {
      await putSource();
    }
  }, 60_000);

  it('fails on a leftover multipart upload for the key', async () => {
    const { UploadId } = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: upload.key }));
    try {
      expect(await verdict()).toContain(`1 incomplete multipart upload(s) left for s3://${bucket}/${upload.key}: ${UploadId}`);
    } finally {
      await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.key, UploadId }));
    }
  }, 60_000);

  it('fails on a staged object left under the upload’s staging prefix', async () => {
    const staged = `${stagingPrefixOf(tenant, upload.uploadId)}part-00001`;
    await stack.s3.send(new PutObjectCommand({ Bucket: bucket, Key: staged, Body: 'left behind' }));
    try {
      expect(await verdict()).toContain(`1 staged object(s) left under ${stagingPrefixOf(tenant, upload.uploadId)}: ${staged}`);
    } finally {
      await stack.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: staged }));
    }
  }, 60_000);

  it('fails on an open reservation, for the upload and for its tenant', async () => {
    // The ledger still holds a reservation under the upload's tenant: read as this upload's, the
    // completed upload was never committed; read for the tenant, a reservation leaked.
    const open = uniqueId('up-open');
    await ledger.reserve({ tenant, uploadId: open, bytes: 4096 });
    try {
      expect(await verdict({ ...upload, uploadId: open })).toMatch(
        /the ledger has the reservation reserved, expected committed \(the upload ended completed\)/,
      );
      await expect(assertTenantLedgerInvariants(ctx, tenant, [upload])).rejects.toThrow(
        `ledger of tenant ${tenant}: 1 reservation(s) of 4096 bytes left open after every upload ended`,
      );
    } finally {
      await ledger.release({ tenant, uploadId: open });
    }
  }, 90_000);

  it('fails when the tenant’s used bytes exceed its completed uploads (a commit counted twice)', async () => {
    const extra = uniqueId('up-extra');
    await ledger.reserve({ tenant, uploadId: extra, bytes: 4096 });
    await ledger.commit({ tenant, uploadId: extra });
    await expect(assertTenantLedgerInvariants(ctx, tenant, [upload])).rejects.toThrow(
      `used bytes are ${file.size + 4096}, but the completed uploads add up to ${file.size} (a commit counted more than once)`,
    );
  }, 90_000);

  // Last: the receiver keeps every delivery, so these plants cannot be taken back (each test
  // below also sees the ones before it).
  it('fails when the receiver got a webhook event that contradicts the outcome', async () => {
    const event = { ...ownDelivery().json, id: randomUUID(), type: 'upload.failed' };
    expect(await deliver(event)).toBe(204);
    const message = await verdict();
    expect(message).toContain('the receiver got upload.failed, which contradicts the outcome completed');
    // Signed correctly and keyed by its own id: the contradiction is the only thing wrong.
    expect(message?.split('\n  - ')).toHaveLength(2);
  }, 60_000);

  it('fails on a delivery whose signature does not verify, and on one repeated under its key with another body', async () => {
    const own = ownDelivery();
    expect(await deliver(own.json, { signature: 't=1,v1=00' })).toBe(204);
    expect(await deliver({ ...own.json, size: 1 })).toBe(204);
    const message = await verdict();
    expect(message).toContain('a upload.completed delivery has no valid signature (t=1,v1=00)');
    expect(message).toMatch(new RegExp(`two deliveries with Idempotency-Key ${String(own.json.id)} differ \\(size: `));
  }, 60_000);

  it('fails when a webhook expected to stay undelivered was acknowledged', async () => {
    const message = await verdict(upload, { webhook: 'undelivered' });
    expect(message).toContain('the webhook was down for good, but the result says notification delivered');
    expect(message).toMatch(/the webhook was expected to stay undelivered, but \d+ deliveries were acknowledged/);
  }, 60_000);
});

/** The completed upload's own `upload.completed` delivery. */
function ownDelivery(): SinkDelivery {
  const own = sink.deliveries.find((d) => d.json.workflowId === upload.workflowId && d.json.type === 'upload.completed');
  if (!own) throw new Error('the completed upload’s own webhook delivery did not reach the receiver');
  return own;
}

/** Delivers `event` to the receiver as the worker would (signed with the secret, keyed by its id) unless `signature` is given. */
async function deliver(event: Record<string, unknown>, options: { signature?: string } = {}): Promise<number> {
  const body = JSON.stringify(event);
  const t = Math.floor(Date.now() / 1000);
  const signature = options.signature ?? `t=${t},v1=${createHmac('sha256', webhookSecret).update(`${t}.${body}`).digest('hex')}`;
  const response = await fetch(sink.url(), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': String(event.id), 'x-upload-saga-signature': signature },
    body,
  });
  return response.status;
}
