/**
 * The fault helpers of scenarios 6–9 do what they claim, against the run's real MinIO: toxiproxy
 * (built from its Go module) changes what S3 requests experience; a MinIO user's writes can be
 * denied mid-way (MinIO ignores bucket policies for signed requests and exempts its root user);
 * the corrupting relay makes S3 reject a part whose checksum no longer matches; the S3 gate loses
 * an answer only after MinIO carried the request out (scenario 19); and the store's
 * answers to each fault are classified the way the saga's retry policies expect.
 */
import os from 'node:os';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadBucketCommand,
  ListPartsCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checksumField, partChecksum } from '../../src/s3/checksums';
import { classifyS3Error } from '../../src/s3/classify-error';
import { createS3Client } from '../../src/connections';
import { startToxiproxyServer, type ToxiproxyProxy, type ToxiproxyServer } from '../../src/embedded';
import { PERMANENT_S3_FAILURES } from '../../src/workflows/upload-steps';
import { MiB } from '../support/files';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';
import { incompleteUploads } from '../support/s3-inspect';
import { startCorruptingRelay } from './helpers/corrupting-relay';
import { createRestrictableS3User, encryptAdminBody } from './helpers/minio-admin';
import { startS3Gate } from './s3-gate';
import { SERVER_BUILD_WAIT_MS } from '../support/late-built-servers';

let stack: TestStack;
let toxiproxy: ToxiproxyServer;
const clients: S3Client[] = [];

/** An S3 client like the worker's (same tuning), pointed elsewhere or signing as someone else. */
function s3Via(endpoint: string, credentials = stack.config.s3.credentials): S3Client {
  const client = createS3Client({ ...stack.config.s3, endpoint, ...(credentials ? { credentials } : {}) });
  clients.push(client);
  return client;
}

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected the request to fail, it succeeded'),
    (err: unknown) => err,
  );
}

beforeAll(async () => {
  stack = await connectTestStack();
  toxiproxy = await startToxiproxyServer({ dataDir: `${os.tmpdir()}/${uniqueId('toxiproxy')}` });
}, 600_000); // a first build of toxiproxy-server takes about a minute

afterAll(async () => {
  for (const client of clients) client.destroy();
  await toxiproxy?.stop();
  await stack?.close();
}, SERVER_BUILD_WAIT_MS);

describe('toxiproxy between a client and MinIO', () => {
  let proxy: ToxiproxyProxy;
  beforeAll(async () => {
    proxy = await toxiproxy.client.createProxy({ name: uniqueId('minio'), upstream: new URL(stack.env.S3_ENDPOINT!).host });
  });

  it('relays S3 requests untouched until a toxic is added', async () => {
    expect(proxy.listen).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(proxy.listen).not.toMatch(/:0$/);
    await s3Via(proxy.url).send(new HeadBucketCommand({ Bucket: 'uploads' }));
    expect(await proxy.toxics()).toEqual([]);
  });

  it('adds latency and limits bandwidth on open and new connections', async () => {
    const s3 = s3Via(proxy.url);
    await proxy.addToxic({ type: 'latency', attributes: { latency: 400 } }, { name: 'slow' });
    let started = Date.now();
    await s3.send(new HeadBucketCommand({ Bucket: 'uploads' }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    await proxy.removeToxic('slow');

    await proxy.addToxic({ type: 'bandwidth', attributes: { rate: 512 } }, { name: 'narrow', stream: 'upstream' });
    started = Date.now();
    await s3.send(new PutObjectCommand({ Bucket: 'uploads', Key: `faults/helpers/${uniqueId('bw')}`, Body: Buffer.alloc(MiB) }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500); // 1 MiB at 512 KB/s ≈ 2 s
    await proxy.removeToxic('narrow');
  });

  it('resets connections: the error is a retryable S3.NetworkError', async () => {
    await proxy.addToxic({ type: 'reset_peer', attributes: { timeout: 0 } }, { name: 'rst', stream: 'upstream' });
    const err = await failureOf(s3Via(proxy.url).send(new HeadBucketCommand({ Bucket: 'uploads' })));
    await proxy.removeToxic('rst');
    expect(classifyS3Error(err)).toMatchObject({ type: 'S3.NetworkError', retryable: true });
  });

  it('stalls a connection until the toxic is removed, then the request completes', async () => {
    await proxy.addToxic({ type: 'timeout', attributes: { timeout: 0 } }, { name: 'stall', stream: 'upstream' });
    let settled = false;
    const request = s3Via(proxy.url)
      .send(new HeadBucketCommand({ Bucket: 'uploads' }))
      .finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(settled).toBe(false);
    await proxy.removeToxic('stall');
    // Held, not lost for good: once the toxic is gone the request is answered (on this connection or the SDK's retry).
    await expect(request).resolves.toBeDefined();
  });

  it('a stalled request fails after the S3 client idle timeout (S3_IDLE_TIMEOUT_MS), as a retryable S3.NetworkError', async () => {
    await proxy.addToxic({ type: 'timeout', attributes: { timeout: 0 } }, { name: 'stall-for-good', stream: 'upstream' });
    const s3 = createS3Client({ ...stack.config.s3, endpoint: proxy.url, idleTimeoutMs: 1_000 });
    clients.push(s3);
    const started = Date.now();
    const err = await failureOf(s3.send(new HeadBucketCommand({ Bucket: 'uploads' })));
    const elapsed = Date.now() - started;
    await proxy.removeToxic('stall-for-good');
    expect(classifyS3Error(err)).toMatchObject({ type: 'S3.NetworkError', retryable: true });
    expect(String((err as Error).message)).toMatch(/1000 ms of inactivity/);
    expect(elapsed).toBeGreaterThanOrEqual(1_000);
  });
});

describe('a MinIO user whose writes are denied mid-way', () => {
  it('is allowed to write, then gets AccessDenied under the prefix (a permanent failure), then is allowed again', async () => {
    const prefix = `faults/denied/${uniqueId('p')}/`;
    const user = await createRestrictableS3User(
      {
        endpoint: stack.env.S3_ENDPOINT!,
        region: stack.config.s3.region,
        accessKeyId: stack.env.S3_ACCESS_KEY_ID!,
        secretAccessKey: stack.env.S3_SECRET_ACCESS_KEY!,
      },
      { bucket: 'uploads', keyPrefix: prefix },
    );
    const s3 = s3Via(stack.env.S3_ENDPOINT!, { accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey });
    const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: `${prefix}a.bin` }));
    await s3.send(
      new UploadPartCommand({
        Bucket: 'uploads',
        Key: `${prefix}a.bin`,
        UploadId: created.UploadId,
        PartNumber: 1,
        Body: Buffer.alloc(1024),
      }),
    );

    await user.denyWrites();
    const denied = await failureOf(
      s3.send(
        new UploadPartCommand({
          Bucket: 'uploads',
          Key: `${prefix}a.bin`,
          UploadId: created.UploadId,
          PartNumber: 2,
          Body: Buffer.alloc(1024),
        }),
      ),
    );
    const classified = classifyS3Error(denied);
    expect(classified).toMatchObject({ type: 'S3.AccessDenied', retryable: false, httpStatus: 403 });
    expect(PERMANENT_S3_FAILURES).toContain(classified.type);
    // Elsewhere, and for the root user, nothing changed; and the compensation may still abort.
    await s3.send(new PutObjectCommand({ Bucket: 'uploads', Key: `faults/allowed/${uniqueId('o')}`, Body: 'x' }));
    await stack.s3.send(new PutObjectCommand({ Bucket: 'uploads', Key: `${prefix}root.bin`, Body: 'x' }));
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'uploads', Key: `${prefix}a.bin`, UploadId: created.UploadId }));

    await user.allowWrites();
    await s3.send(new PutObjectCommand({ Bucket: 'uploads', Key: `${prefix}b.bin`, Body: 'x' }));
  });

  it('encrypts admin bodies in the PBKDF2 + AES-GCM format (fresh salt and nonce each time)', () => {
    const a = encryptAdminBody('secret', Buffer.from('{}'));
    const b = encryptAdminBody('secret', Buffer.from('{}'));
    expect(a.length).toBe(32 + 1 + 8 + 2 + 16);
    expect(a[32]).toBe(0x02);
    expect(a.equals(b)).toBe(false);
  });
});

describe('the corrupting relay', () => {
  it('flips a bit in one UploadPart body: S3 rejects the part (permanent failure) and stores nothing', async () => {
    const minio = new URL(stack.env.S3_ENDPOINT!);
    const relay = await startCorruptingRelay(
      { host: minio.hostname, port: Number(minio.port) },
      { corrupt: (request) => request.method === 'PUT' && request.target.includes('partNumber=1&') },
    );
    try {
      const s3 = s3Via(relay.url);
      const key = `faults/corrupt/${uniqueId('c')}.bin`;
      const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: key, ChecksumAlgorithm: 'CRC32C' }));
      const body = Buffer.alloc(5 * MiB, 7);
      const err = await failureOf(
        s3.send(
          new UploadPartCommand({
            Bucket: 'uploads',
            Key: key,
            UploadId: created.UploadId,
            PartNumber: 1,
            Body: body,
            ContentLength: body.length,
            ChecksumAlgorithm: 'CRC32C',
            [checksumField('CRC32C')]: await partChecksum('CRC32C', body),
          }),
        ),
      );
      expect(relay.corrupted).toHaveLength(1);
      expect(relay.unframed).toBe(0);
      const classified = classifyS3Error(err);
      expect(classified.retryable).toBe(false);
      expect(PERMANENT_S3_FAILURES).toContain(classified.type);
      const parts = await stack.s3.send(new ListPartsCommand({ Bucket: 'uploads', Key: key, UploadId: created.UploadId }));
      expect(parts.Parts ?? []).toEqual([]);
      // The next request on the relay is not corrupted (times: 1).
      await s3.send(
        new UploadPartCommand({
          Bucket: 'uploads',
          Key: key,
          UploadId: created.UploadId,
          PartNumber: 1,
          Body: body,
          ContentLength: body.length,
          ChecksumAlgorithm: 'CRC32C',
          [checksumField('CRC32C')]: await partChecksum('CRC32C', body),
        }),
      );
      await s3.send(new AbortMultipartUploadCommand({ Bucket: 'uploads', Key: key, UploadId: created.UploadId }));
    } finally {
      await relay.close();
    }
  });
});

describe('the S3 gate losing answers', () => {
  it('lets MinIO carry out the request, then cuts the connection instead of answering; failures pass through', async () => {
    const gate = await startS3Gate(stack.env.S3_ENDPOINT!);
    try {
      const s3 = s3Via(gate.url);
      const loss = gate.loseAnswers('CreateMultipartUpload', 1);
      const missing = await failureOf(s3.send(new CreateMultipartUploadCommand({ Bucket: uniqueId('no-such-bucket'), Key: 'k' })));
      expect(classifyS3Error(missing).type).toBe('S3.NoSuchBucket');
      expect(loss.lost).toEqual([]); // a failed create is answered: nothing took effect to hide

      const key = `faults/gate/${uniqueId('lose')}.bin`;
      const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'uploads', Key: key })); // the SDK's retry is answered
      expect(loss.forwarded).toBe(3);
      expect(loss.lost).toHaveLength(1);
      const lostId = /<UploadId>([^<]+)<\/UploadId>/.exec(loss.lost[0]!)?.[1];
      expect(lostId).toBeDefined();
      expect(lostId).not.toBe(created.UploadId);
      const open = await incompleteUploads(stack.s3, 'uploads', key);
      expect(open.sort()).toEqual([lostId, created.UploadId].sort());
      for (const id of open) await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: 'uploads', Key: key, UploadId: id }));
    } finally {
      await gate.close();
    }
  });
});
