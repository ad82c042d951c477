import { describe, expect, it } from 'vitest';
import { DEFAULT_S3_STORE_RULES, multipartLimitsOf, partSizesProblem } from '../../src/s3/store-rules';
import { multipartChecksums } from '../../src/upload/integrity';
import { storesInOnePut } from '../../src/upload/one-put';
import { MiB, planParts } from '../../src/upload/part-plan';

const r2 = { ...DEFAULT_S3_STORE_RULES, equalParts: true };

describe("the store's rules", () => {
  it('plans within a lower part limit by raising the part size, and says so', () => {
    const plan = planParts(2000 * MiB, 8 * MiB, multipartLimitsOf({ maxParts: 100 }));
    expect(plan).toMatchObject({ partSize: 20 * MiB, partCount: 100 });
    expect(plan.adjusted?.reason).toContain("S3's limit of 100 parts");
  });

  it('accepts equal parts with a shorter last one, and any sizes when equal parts are not required', () => {
    expect(partSizesProblem([8 * MiB, 8 * MiB, 3], r2)).toBeUndefined();
    expect(partSizesProblem([8 * MiB], r2)).toBeUndefined();
    expect(partSizesProblem([6 * MiB, 5 * MiB, 3], DEFAULT_S3_STORE_RULES)).toBeUndefined();
  });

  it('names the first part whose size differs when the store requires equal parts', () => {
    expect(partSizesProblem([6 * MiB, 6 * MiB, 5 * MiB, 3], r2)).toBe(
      `part 3 has ${5 * MiB} bytes where part 1 has ${6 * MiB}: the store requires every part but the last to have the same size (S3_EQUAL_PARTS)`,
    );
  });

  it('refuses more parts than the store allows', () => {
    expect(partSizesProblem([5 * MiB, 5 * MiB, 1], { maxParts: 2, equalParts: false })).toBe(
      "3 parts exceed the store's limit of 2 parts (S3_MAX_PARTS)",
    );
  });
});

describe('checksums by what the store does', () => {
  const request = { checksumAlgorithm: 'CRC32C' as const, expectedChecksum: undefined };
  const crcRequest = { checksumAlgorithm: 'CRC32C' as const, expectedChecksum: { algorithm: 'CRC32C' as const, value: 'AAAAAA==' } };

  it('gives server-side copies no checksum unless the store accepts a checksummed UploadPartCopy', () => {
    expect(multipartChecksums(request, 'server-side-copy')).toEqual({});
    expect(multipartChecksums(request, 'server-side-copy', { additional: true, onCopies: false })).toEqual({});
    expect(multipartChecksums(request, 'server-side-copy', { additional: true, onCopies: true })).toEqual({
      algorithm: 'CRC32C',
      type: 'COMPOSITE',
    });
    expect(multipartChecksums(crcRequest, 'server-side-copy', { additional: true, onCopies: true })).toEqual({
      algorithm: 'CRC32C',
      type: 'FULL_OBJECT',
      expectedFullObject: crcRequest.expectedChecksum,
    });
  });

  it('gives no upload a checksum on a store without additional checksums, and keeps those uploads off the one-put path', () => {
    expect(multipartChecksums(request, 'stream', { additional: false, onCopies: false })).toEqual({});
    expect(multipartChecksums(crcRequest, 'stream', { additional: false, onCopies: false })).toEqual({});
    const onePart = planParts(MiB);
    expect(storesInOnePut(onePart, 'stream')).toBe(true);
    expect(storesInOnePut(onePart, 'stream', false)).toBe(false);
  });
});
