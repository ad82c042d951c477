/**
 * Several parts in flight per tus PATCH (`tusPartsInFlight`), against the real worker, Temporal and
 * MinIO. The gateway's S3 client carries a watch (an SDK middleware) that counts the UploadParts
 * under way and can hold each one back before it is sent, so that parts overlap on a machine of any
 * speed; S3 itself is never replaced. Checked independently of the gateway: the object's SHA-256,
 * the parts S3 lists, what the workflow recorded.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ListPartsCommand, type S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/connections';
import { stagingPrefixOf } from '../../src/upload/staging';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { incompleteUploads, keysUnder, objectSha256 } from '../support/s3-inspect';
import { startTcpCounter } from '../support/tcp-counter';
import { createTusUpload, idOf, startTestGateway, startTus, testTenant, tusRequest, type TestGateway } from './gateway-harness';

const BUCKET = 'uploads';
const PART = 5 * MiB;
const IN_FLIGHT = 3;
let stack: TestStack;
let worker: RunningWorker;
let gateway: TestGateway;
let gatewayS3: S3Client;
const tenant = testTenant('inflight');

/** UploadParts the gateway's S3 client has under way: how many at most, each one's span, and what to do to them. */
const watch = {
  active: 0,
  max: 0,
  /** Hold every UploadPart this long before sending it. */
  holdMs: 0,
  /** A part held until another one is in S3, then sent with a spoiled checksum header, so that S3 refuses it. */
  spoil: undefined as { part: number; after: number } | undefined,
  /** Parts S3 accepted. */
  accepted: new Set<number>(),
  reset(holdMs: number, spoil?: { part: number; after: number }) {
    this.active = 0;
    this.max = 0;
    this.holdMs = holdMs;
    this.spoil = spoil;
    this.accepted = new Set();
  },
};

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  gatewayS3 = createS3Client(stack.config.s3);
  gatewayS3.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'UploadPartCommand') return next(args);
      const partNumber = (args.input as { PartNumber: number }).PartNumber;
      watch.active++;
      watch.max = Math.max(watch.max, watch.active);
      try {
        await new Promise((r) => setTimeout(r, watch.holdMs));
        if (watch.spoil?.part === partNumber) {
          const deadline = Date.now() + 60_000;
          while (!watch.accepted.has(watch.spoil.after) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          (args.request as { headers: Record<string, string> }).headers['x-amz-checksum-crc32c'] = 'AAAAAA==';
        }
        const result = await next(args);
        watch.accepted.add(partNumber);
        return result;
      } finally {
        watch.active--;
      }
    },
    { step: 'build', name: 'testPartWatch' },
  );
  gateway = await startTestGateway(stack, [tenant], { s3: gatewayS3, overrides: { tusPartsInFlight: IN_FLIGHT } });
});

afterAll(async () => {
  await gateway?.close();
  gatewayS3?.destroy();
  await worker?.stop();
  await stack?.close();
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function listedParts(key: string, uploadId: string): Promise<number[]> {
  const listed = await stack.s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
  return (listed.Parts ?? []).map((p) => p.PartNumber!);
}

async function headOffset(url: string): Promise<number> {
  const response = await tusRequest(url, 'HEAD', tenant.auth);
  expect(response.status).toBe(200);
  return Number(response.headers.get('upload-offset'));
}

async function expectStoredAndClean(uploadId: string, data: Buffer): Promise<void> {
  const state = await gateway.app.uploads.waitForEnd(tenant.name, uploadId, 30_000);
  expect(state.outcome).toBe('completed');
  expect(await objectSha256(stack.s3, BUCKET, state.key)).toBe(sha256(data));
  expect(await incompleteUploads(stack.s3, BUCKET, state.key)).toEqual([]);
  expect(await keysUnder(stack.s3, BUCKET, stagingPrefixOf(tenant.name, uploadId))).toEqual([]);
}

describe('tus PATCH with several parts in flight', () => {
  it('sends the parts of one PATCH to S3 overlapping in time, never more than tusPartsInFlight at once', async () => {
    watch.reset(1000);
    const data = randomBytes(8 * PART + 123);
    const run = startTus(data, { endpoint: `${gateway.url}/files`, headers: tenant.auth });
    await run.done;
    // Each part is held 1 s and received in far less: the slots fill, and the cap holds.
    expect(watch.max).toBe(IN_FLIGHT);
    const uploadId = idOf(run.upload.url);
    const state = await gateway.app.uploads.state(tenant.name, uploadId);
    // The last 123 bytes are folded into part 8 (parts of varying size).
    expect(state).toMatchObject({ offset: data.length, partsCompleted: 8 });
    await expectStoredAndClean(uploadId, data);
  });

  it('keeps what S3 has when the connection is cut with parts in flight: they finish, the tail is folded into the last, the client resumes', async () => {
    watch.reset(3000);
    const data = randomBytes(6 * PART);
    // Unthrottled: the parts fill their slots at once, and reading stops until one is free.
    const relay = await startTcpCounter({ host: '127.0.0.1', port: Number(new URL(gateway.url).port) });
    const first = startTus(data, { endpoint: `${relay.url}/files`, headers: tenant.auth });
    const failed = first.done.then(
      () => expect.fail('the first client should have lost its connection'),
      (err: unknown) => err,
    );
    const deadline = Date.now() + 60_000;
    // A full part is sent once 5 MiB of the next arrived (it might take a remainder otherwise): at
    // 4 parts + 2 MiB, at least parts 1 and 2 are on their way once the saga opened the upload (the
    // body is received while it opens, and nothing is sent before).
    while ((relay.bytesUp() < 4 * PART + 2 * MiB || watch.active < 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const inFlightAtCut = watch.active;
    await relay.close();
    expect(await failed).toBeInstanceOf(Error);
    expect(inFlightAtCut).toBeGreaterThanOrEqual(2);

    const url = new URL(new URL(first.upload.url!).pathname, gateway.url).toString();
    const uploadId = idOf(url);
    const offset = await headOffset(url);
    const before = await gateway.app.uploads.state(tenant.name, uploadId);
    // Every part that was in flight reached S3 and was recorded; what followed them (under 5 MiB)
    // was folded into the last of them when the body ended (parts of varying size): nothing staged.
    expect(before.partsCompleted).toBeGreaterThanOrEqual(inFlightAtCut);
    expect(await listedParts(before.key, before.multipartUploadId!)).toEqual(
      Array.from({ length: before.partsCompleted }, (_, i) => i + 1),
    );
    expect(before).toMatchObject({ partsBytes: offset, staged: [] });

    watch.reset(0);
    await startTus(data, { uploadUrl: url, headers: tenant.auth }).done;
    await expectStoredAndClean(uploadId, data);
  });

  it('records only the parts before one S3 refuses, though later ones finished; the client resumes from there', async () => {
    watch.reset(0, { part: 2, after: 3 });
    const data = randomBytes(5 * PART);
    const url = await createTusUpload(gateway, tenant, data.length, 'gap.bin');
    const uploadId = idOf(url);
    const patch = await tusRequest(url, 'PATCH', { ...tenant.auth, 'Upload-Offset': '0' }, data);
    expect(patch.status).toBe(500);
    const during = await gateway.app.uploads.state(tenant.name, uploadId);
    // S3 has parts 1 and 3 (part 2 was refused only after part 3 was in); only part 1 is before the gap.
    const listed = await listedParts(during.key, during.multipartUploadId!);
    expect(listed).toContain(1);
    expect(listed).toContain(3);
    expect(listed).not.toContain(2);
    expect(during).toMatchObject({ offset: PART, partsCompleted: 1, staged: [] });
    expect(await headOffset(url)).toBe(PART);

    watch.reset(0);
    await startTus(data, { uploadUrl: url, headers: tenant.auth }).done;
    await expectStoredAndClean(uploadId, data);
  });
});
