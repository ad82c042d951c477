/**
 * putSmallObject on the real store: the fast path below the SDK stores what the SDK would (body,
 * checksum, metadata, content type, awkward keys), and every answer other than success reaches
 * the caller as the SDK's own error, after the SDK's attempt.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/connections';
import { putSmallObject } from '../../src/s3/direct-put-object';
import { partChecksum } from '../../src/s3/checksums';
import { isS3Error } from '../../src/s3/classify-error';
import { connectTestStack, type TestStack } from '../support/harness';

const BUCKET = 'uploads';
const PREFIX = `direct-put-${Date.now()}/`;
let stack: TestStack;

beforeAll(async () => {
  stack = await connectTestStack();
});

afterAll(async () => {
  await stack?.close();
});

async function input(key: string, body = randomBytes(70_000)) {
  return {
    bucket: BUCKET,
    key,
    body,
    contentType: 'application/x-test',
    metadata: { 'upload-saga-batch': 'acme/b1' },
    checksumAlgorithm: 'CRC32C' as const,
    checksum: await partChecksum('CRC32C', body),
  };
}

describe('putSmallObject', () => {
  it('stores the body with its checksum, metadata and content type, and returns the echoed checksum', async () => {
    const put = await input(`${PREFIX}plain.bin`);
    const send = vi.spyOn(stack.s3, 'send');
    const out = await putSmallObject(stack.s3, put);
    expect(send, 'stored on the fast path, not through the SDK').not.toHaveBeenCalled();
    send.mockRestore();
    expect(out.checksum).toBe(put.checksum);
    const got = await stack.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: put.key, ChecksumMode: 'ENABLED' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(put.body)).toBe(true);
    expect(got.ContentType).toBe('application/x-test');
    expect(got.Metadata).toEqual({ 'upload-saga-batch': 'acme/b1' });
    expect(got.ChecksumCRC32C).toBe(put.checksum);
  });

  it('addresses keys with spaces, reserved characters and non-ASCII letters', async () => {
    for (const name of ["a b+c=d&e;f!g'h(i)j*k~l.bin", 'ünï cödé/ø.bin', 'x%20y/%2F.bin']) {
      const put = await input(`${PREFIX}keys/${name}`, Buffer.from(name));
      const send = vi.spyOn(stack.s3, 'send');
      await putSmallObject(stack.s3, put);
      expect(send, name).not.toHaveBeenCalled();
      send.mockRestore();
      const head = await stack.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: put.key }));
      expect(head.ContentLength, name).toBe(put.body.length);
    }
  });

  it('answers a checksum the body does not match with the SDK error, and stores nothing', async () => {
    const put = await input(`${PREFIX}bad-digest.bin`);
    const err = await putSmallObject(stack.s3, { ...put, checksum: await partChecksum('CRC32C', Buffer.from('other')) }).catch(
      (e: unknown) => e,
    );
    expect(isS3Error(err, 'BadDigest', 'InvalidRequest', 'XAmzContentChecksumMismatch', 'Http400')).toBe(true);
    const head = await stack.s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: put.key })).catch((e: unknown) => e);
    expect(isS3Error(head, 'NotFound', 'NoSuchKey', 'Http404')).toBe(true);
  });

  it('with ifNoneMatch, refuses to replace an object with the SDK error PreconditionFailed', async () => {
    const put = await input(`${PREFIX}exists.bin`);
    await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: put.key, Body: 'first' }));
    const err = await putSmallObject(stack.s3, { ...put, ifNoneMatch: true }).catch((e: unknown) => e);
    expect(isS3Error(err, 'PreconditionFailed', 'Http412')).toBe(true);
    const got = await stack.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: put.key }));
    expect(await got.Body!.transformToString()).toBe('first');
  });

  it('answers a missing bucket with the SDK error', async () => {
    const put = await input(`${PREFIX}nowhere.bin`);
    const err = await putSmallObject(stack.s3, { ...put, bucket: `no-such-bucket-${Date.now()}` }).catch((e: unknown) => e);
    expect(isS3Error(err, 'NoSuchBucket', 'Http404')).toBe(true);
  });

  it('goes through the SDK for a client with middleware of its owner, which it must not pass by', async () => {
    const s3 = createS3Client(stack.config.s3);
    const seen: string[] = [];
    s3.middlewareStack.add(
      (next, context) => (args) => {
        seen.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize', name: 'ownersCounter' },
    );
    try {
      await putSmallObject(s3, await input(`${PREFIX}owned.bin`));
      expect(seen).toEqual(['PutObjectCommand']);
    } finally {
      s3.destroy();
    }
  });

  it('rejects with an AbortError when its signal is aborted', async () => {
    const put = await input(`${PREFIX}aborted.bin`);
    const controller = new AbortController();
    controller.abort();
    const err = await putSmallObject(stack.s3, put, controller.signal).catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortError');
  });
});
