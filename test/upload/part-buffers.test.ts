/**
 * upload-parts reuses one buffer per part in flight (src/s3/part-buffers.ts). Reuse is
 * only safe if no buffer is overwritten while its part is still being sent: two parts sharing a
 * buffer would send one part's bytes under the other's number with a checksum that matches them,
 * which S3 accepts. So the stored parts are compared, one by one, with checksums computed from the
 * file itself, and the buffers the source was asked to fill are counted. Reads are delayed at
 * random so parts finish out of order.
 */
import { readFile } from 'node:fs/promises';
import { AbortMultipartUploadCommand } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, type UploadActivities } from '../../src/activities';
import type { ByteSource, SourceResolver } from '../../src/activities/sources/byte-source';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { partChecksum } from '../../src/s3/checksums';
import { listAllParts } from '../../src/s3/list-parts';
import { partRange, planParts } from '../../src/upload/part-plan';
import type { SourceDescriptor } from '../../src/upload/request';
import { makeRandomFile, makeTempDir, MiB, type TestFile } from '../support/files';
import { connectTestStack, uniqueId, type TestStack } from '../support/harness';
import { unusedQuotaLedger } from '../support/unused-quota-ledger';

const BUCKET = 'uploads';
const PART_SIZE = 5 * MiB;
const CONCURRENCY = 3;
let stack: TestStack;
let tmp: { dir: string; remove(): Promise<void> };
let file: TestFile;

/** Local files, each read delayed by 0–40 ms, recording the buffers the activity offers. */
class RecordingResolver implements SourceResolver {
  readonly offered = new Set<Buffer>();
  readsWithoutBuffer = 0;
  constructor(private readonly inner: SourceResolver) {}

  async open(descriptor: SourceDescriptor): Promise<ByteSource> {
    const source = await this.inner.open(descriptor);
    return {
      description: source.description,
      stat: () => source.stat(),
      close: () => source.close(),
      read: async (offset, length, into) => {
        if (into) this.offered.add(into);
        else this.readsWithoutBuffer++;
        await new Promise((r) => setTimeout(r, Math.random() * 40));
        return source.read(offset, length, into);
      },
    };
  }
}

beforeAll(async () => {
  stack = await connectTestStack();
  tmp = await makeTempDir();
  // 9 parts: the last one shorter, so a reused buffer also serves a part smaller than itself.
  file = await makeRandomFile(tmp.dir, 'reuse.bin', 8 * PART_SIZE + 3 * MiB);
});

afterAll(async () => {
  await stack?.close();
  await tmp?.remove();
});

describe('upload-parts part buffers', () => {
  it('sends every part with its own bytes while reusing one buffer per part in flight', async () => {
    const sources = new RecordingResolver(new LocalFileResolver({ allowedRoots: [tmp.dir] }));
    const activities: UploadActivities = createActivities({ s3: stack.s3, sources, quota: unusedQuotaLedger });
    const key = `part-buffers/${uniqueId('reuse')}.bin`;
    const plan = planParts(file.size, PART_SIZE);
    const source = { type: 'file' as const, path: file.path };
    const sourceVersion = (await (await sources.open(source)).stat()).version;

    const result = (await new MockActivityEnvironment().run(activities.uploadParts, {
      bucket: BUCKET,
      key,
      source,
      sourceVersion,
      plan,
      firstPart: 1,
      lastPart: plan.partCount,
      partConcurrency: CONCURRENCY,
      checksumAlgorithm: 'CRC32C' as const,
      contentType: 'application/octet-stream',
      metadata: {},
    })) as Awaited<ReturnType<UploadActivities['uploadParts']>>;
    try {
      expect(result).toMatchObject({ partsUploaded: 9, bytesSent: file.size });
      expect(sources.readsWithoutBuffer).toBe(0);
      expect(sources.offered.size).toBeGreaterThan(0);
      expect(sources.offered.size).toBeLessThanOrEqual(CONCURRENCY);

      const bytes = await readFile(file.path);
      const stored = await listAllParts(stack.s3, { bucket: BUCKET, key, multipartUploadId: result.multipartUploadId });
      expect(stored.map((p) => p.PartNumber)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (const part of stored) {
        const { offset, length } = partRange(plan, part.PartNumber!);
        expect({ part: part.PartNumber, size: part.Size, crc32c: part.ChecksumCRC32C }).toEqual({
          part: part.PartNumber,
          size: length,
          crc32c: await partChecksum('CRC32C', bytes.subarray(offset, offset + length)),
        });
      }
    } finally {
      await stack.s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: result.multipartUploadId }));
    }
  });
});
