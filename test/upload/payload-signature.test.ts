/**
 * `payloadSignature` (src/s3/payload-signature.ts) against the real MinIO: over plain HTTP the body
 * is signed with a SHA-256 computed off the event loop, which must be the body's own (the store
 * checks it); unsigned, the body's own checksum header must still make the store refuse wrong bytes.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partChecksum } from '../../src/s3/checksums';
import { PartBuffers } from '../../src/s3/part-buffers';
import { payloadSignature } from '../../src/s3/payload-signature';
import { MiB } from '../support/files';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';

const BUCKET = 'uploads';
let stack: TestStack;

beforeAll(async () => {
  stack = await connectTestStack();
});
afterAll(async () => {
  await stack?.close();
});

/** Records the `x-amz-content-sha256` header each command was signed with. */
function signedPayloadHashes<T extends { middlewareStack: { addRelativeTo: (...args: never[]) => void } }>(command: T, seen: string[]): T {
  (command.middlewareStack as unknown as { addRelativeTo(mw: unknown, options: object): void }).addRelativeTo(
    (next: (args: { request: { headers: Record<string, string> } }) => Promise<unknown>) =>
      async (args: { request: { headers: Record<string, string> } }) => {
        seen.push(args.request.headers['x-amz-content-sha256']!);
        return next(args);
      },
    { name: 'tusSpeedSeenPayloadHash', relation: 'after', toMiddleware: 'httpSigningMiddleware' },
  );
  return command;
}

describe('payload signatures', () => {
  it('signs a body as UNSIGNED-PAYLOAD instead of its SHA-256, and the store keeps the bytes', async () => {
    const key = `${uniqueId('tus-speed-unsigned')}/object.bin`;
    const body = randomBytes(1 * MiB + 17);
    const seen: string[] = [];
    const put = (command: PutObjectCommand) => stack.s3.send(signedPayloadHashes(command, seen));
    const input = () => ({ Bucket: BUCKET, Key: key, Body: body, ChecksumAlgorithm: 'CRC32C' as const });
    await put(new PutObjectCommand({ ...input(), ChecksumCRC32C: await partChecksum('CRC32C', body) }));
    // Over plain HTTP (the test store) the body stays signed, with the hash handed to the signer, unless the caller insists.
    await put(payloadSignature(new PutObjectCommand({ ...input(), ChecksumCRC32C: await partChecksum('CRC32C', body) })));
    await put(
      payloadSignature(new PutObjectCommand({ ...input(), ChecksumCRC32C: await partChecksum('CRC32C', body) }), { evenOverHttp: true }),
    );
    const sha256 = createHash('sha256').update(body).digest('hex');
    expect(seen).toEqual([sha256, sha256, 'UNSIGNED-PAYLOAD']);
    const stored = await stack.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(Buffer.from(await stored.Body!.transformToByteArray()).equals(body)).toBe(true);
  });

  it('signs a body in shared memory (as in part buffers of the gateway) with its SHA-256 from a hashing thread, and the store keeps the bytes', async () => {
    const key = `${uniqueId('tus-speed-shared')}/part.bin`;
    const buffers = new PartBuffers(1, { shared: true });
    const buffer = buffers.take(6 * MiB);
    expect(buffer.buffer).toBeInstanceOf(SharedArrayBuffer);
    const body = buffer.subarray(0, 5 * MiB + 3);
    randomFillSync(body);
    const seen: string[] = [];
    await stack.s3.send(
      signedPayloadHashes(
        payloadSignature(
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: key,
            Body: body,
            ChecksumAlgorithm: 'CRC32C',
            ChecksumCRC32C: await partChecksum('CRC32C', body),
          }),
        ),
        seen,
      ),
    );
    // The store checks the signature over the bytes it received: a wrong hash would be refused.
    expect(seen).toEqual([createHash('sha256').update(body).digest('hex')]);
    const stored = await stack.s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(Buffer.from(await stored.Body!.transformToByteArray()).equals(body)).toBe(true);
  });

  it('still has a part refused whose bytes do not match its CRC32C header, and S3 lists no such part', async () => {
    const key = `${uniqueId('tus-speed-unsigned')}/parts.bin`;
    const created = await stack.s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ChecksumAlgorithm: 'CRC32C' }));
    const multipart = { Bucket: BUCKET, Key: key, UploadId: created.UploadId! };
    try {
      const meant = randomBytes(5 * MiB);
      const sent = Buffer.from(meant);
      sent[12345] = sent[12345]! ^ 0xff;
      const refused = stack.s3.send(
        payloadSignature(
          new UploadPartCommand({ ...multipart, PartNumber: 1, Body: sent, ChecksumCRC32C: await partChecksum('CRC32C', meant) }),
          { evenOverHttp: true },
        ),
      );
      await expect(refused).rejects.toThrow();
      const error = (await refused.catch((err: unknown) => err)) as { name?: string; $metadata?: { httpStatusCode?: number } };
      expect(error.$metadata?.httpStatusCode).toBe(400);
      expect((await stack.s3.send(new ListPartsCommand(multipart))).Parts ?? []).toEqual([]);
      // The same part with its own bytes is accepted.
      await stack.s3.send(
        payloadSignature(
          new UploadPartCommand({ ...multipart, PartNumber: 1, Body: meant, ChecksumCRC32C: await partChecksum('CRC32C', meant) }),
          { evenOverHttp: true },
        ),
      );
      expect((await stack.s3.send(new ListPartsCommand(multipart))).Parts?.map((p) => p.ChecksumCRC32C)).toEqual([
        await partChecksum('CRC32C', meant),
      ]);
    } finally {
      await stack.s3.send(new AbortMultipartUploadCommand(multipart));
    }
  });
});
