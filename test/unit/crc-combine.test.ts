/**
 * CRC combination against the libraries' CRCs of whole buffers: for any split of any buffer, the
 * part CRCs combined equal the CRC of the whole — for CRC32, CRC32C and CRC64NVME.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createChecksum, partChecksum } from '../../src/s3/checksums';
import { combineBase64Crcs } from '../../src/s3/crc-combine';
import { FULL_OBJECT_CRC_ALGORITHMS } from '../../src/upload/request';

async function splitAndCombine(algorithm: (typeof FULL_OBJECT_CRC_ALGORITHMS)[number], data: Buffer, cuts: number[]): Promise<string> {
  const bounds = [0, ...[...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b), data.length];
  const parts = bounds.slice(1).map((end, i) => data.subarray(bounds[i], end));
  return combineBase64Crcs(
    algorithm,
    await Promise.all(parts.map(async (p) => ({ checksum: await partChecksum(algorithm, p), length: p.length }))),
  );
}

describe('combining CRCs', () => {
  it('matches the published check values (CRC of "123456789")', async () => {
    const digits = Buffer.from('123456789');
    expect(Buffer.from(await partChecksum('CRC32', digits), 'base64').toString('hex')).toBe('cbf43926');
    expect(Buffer.from(await partChecksum('CRC32C', digits), 'base64').toString('hex')).toBe('e3069283');
    expect(Buffer.from(await partChecksum('CRC64NVME', digits), 'base64').toString('hex')).toBe('ae8b14860a799888');
    for (const algorithm of FULL_OBJECT_CRC_ALGORITHMS)
      expect(await splitAndCombine(algorithm, digits, [3, 4])).toBe(await partChecksum(algorithm, digits));
  });

  it.each(FULL_OBJECT_CRC_ALGORITHMS)('%s: the combination of any split equals the CRC of the whole', async (algorithm) => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 4096 }), fc.array(fc.nat(), { maxLength: 6 }), async (bytes, cuts) => {
        const data = Buffer.from(bytes);
        expect(await splitAndCombine(algorithm, data, cuts)).toBe(await partChecksum(algorithm, data));
      }),
      { numRuns: 200 },
    );
  });

  it.each(FULL_OBJECT_CRC_ALGORITHMS)('%s: holds for multi-MiB parts, as a multipart upload has them', async (algorithm) => {
    const data = randomBytes(3 * 5 * 1024 * 1024 + 123);
    expect(await splitAndCombine(algorithm, data, [5 * 1024 * 1024, 10 * 1024 * 1024])).toBe(await partChecksum(algorithm, data));
  });

  it('incremental checksums equal one-shot ones', async () => {
    const data = randomBytes(100_000);
    for (const algorithm of ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const) {
      const incremental = createChecksum(algorithm);
      incremental.update(data.subarray(0, 33_333));
      incremental.update(data.subarray(33_333));
      expect(await incremental.digest()).toBe(await partChecksum(algorithm, data));
    }
  });

  it('refuses a checksum of the wrong width instead of combining garbage', () => {
    expect(() => combineBase64Crcs('CRC64NVME', [{ checksum: '3q2+7w==', length: 4 }])).toThrow('a CRC64NVME is 8 bytes, got 4');
  });
});
