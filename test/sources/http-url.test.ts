/**
 * URL sources against a real HTTP server: ranged parts in parallel, the sequential fallback, and
 * change detection. The bytes then go through the real upload saga into MinIO.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient, UploadFailedError } from '../../src/client';
import { MiB } from '../support/files';
import { startFileServer } from '../support/file-server';
import { connectTestStack, uniqueId, type RunningWorker, type TestStack, startUploadWorker } from '../support/harness';
import { incompleteUploads, objectSha256 } from '../support/s3-inspect';

/** Per-file tenant: a tenant's quota ledger runs on the task queue of the worker that first served it. */
const TENANT = uniqueId('acme');

let stack: TestStack;
let worker: RunningWorker;
let uploads: UploadClient;

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
});

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('URL sources', () => {
  it('uploads from a server with range support, one ranged GET per part, byte-identical', async () => {
    const content = randomBytes(17 * MiB + 3);
    const server = await startFileServer(content, { ranges: true });
    try {
      const key = `url/${uniqueId('ranged')}.bin`;
      const result = await (
        await uploads.start({
          uploadId: uniqueId('url'),
          tenant: TENANT,
          source: { type: 'url', url: server.url },
          destination: { bucket: 'uploads', key },
          partSize: 5 * MiB,
        })
      ).result();
      expect(result).toMatchObject({ size: content.length, partCount: 4 });
      expect(await objectSha256(stack.s3, 'uploads', key)).toBe(sha256(content));
      const ranged = server.requests.filter((r) => r.method === 'GET' && r.range);
      // One ranged GET per part, and no more: verify compares checksums instead of downloading again.
      expect(ranged.map((r) => r.range).sort()).toEqual(
        [0, 1, 2, 3].map((i) => `bytes=${i * 5 * MiB}-${Math.min((i + 1) * 5 * MiB, content.length) - 1}`).sort(),
      );
      expect(server.requests.filter((r) => r.method === 'GET' && !r.range)).toHaveLength(0);
    } finally {
      await server.close();
    }
  });

  it('falls back to one sequential stream when the server ignores ranges', async () => {
    const content = randomBytes(12 * MiB);
    const server = await startFileServer(content, { ranges: false });
    try {
      const key = `url/${uniqueId('sequential')}.bin`;
      await (
        await uploads.start({
          uploadId: uniqueId('url'),
          tenant: TENANT,
          source: { type: 'url', url: server.url },
          destination: { bucket: 'uploads', key },
          partSize: 5 * MiB,
          partConcurrency: 3,
        })
      ).result();
      expect(await objectSha256(stack.s3, 'uploads', key)).toBe(sha256(content));
      expect(server.requests.filter((r) => r.range)).toHaveLength(0);
    } finally {
      await server.close();
    }
  });

  it('fails with SourceChanged and compensates when the file changes on the server during the upload', async () => {
    const content = randomBytes(30 * MiB);
    const server = await startFileServer(content, { ranges: true });
    try {
      const key = `url/${uniqueId('changes')}.bin`;
      const handle = await uploads.start({
        uploadId: uniqueId('url'),
        tenant: TENANT,
        source: { type: 'url', url: server.url },
        destination: { bucket: 'uploads', key },
        partSize: 5 * MiB,
        partConcurrency: 1,
      });
      await expect.poll(() => server.requests.filter((r) => r.range).length, { timeout: 30_000, interval: 20 }).toBeGreaterThan(0);
      server.setContent(randomBytes(30 * MiB));
      const err = (await handle.result().catch((e: unknown) => e)) as UploadFailedError;
      expect(err).toBeInstanceOf(UploadFailedError);
      expect(err.message).toContain('SourceChanged');
      expect(err.message).not.toContain('not-logged'); // query strings (tokens) never appear in errors
      expect(err.outcome).toBe('compensated');
      expect(await incompleteUploads(stack.s3, 'uploads', key)).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
