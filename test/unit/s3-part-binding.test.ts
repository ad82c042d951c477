/**
 * What presigned part URLs bind and what a part report may record, as pure functions: Uppy's part
 * rule, the `size` and `checksum` parameters, the part ranges the workflow carries, and the
 * recordPart validator.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../../src/gateway/errors';
import { declaredPartSizeOf, parsePartChecksum, partBinding, presignedPartSize, uppyPartSize } from '../../src/gateway/s3-part-binding';
import { hasPart, partReportProblem, withPart, type GatewayUploadState, type PartRanges } from '../../src/upload/gateway-upload';
import { GiB, MiB } from '../../src/upload/part-plan';

const sha256 = (text: string) => createHash('sha256').update(text).digest('base64');

describe('the part size of a presigned upload', () => {
  it('follows @uppy/aws-s3 v6: max(5 MiB, ceil(length / 10,000))', () => {
    expect(uppyPartSize(0)).toBe(5 * MiB);
    expect(uppyPartSize(12 * MiB)).toBe(5 * MiB);
    expect(uppyPartSize(50_000 * MiB)).toBe(5 * MiB);
    expect(uppyPartSize(100_000 * MiB + 1)).toBe(Math.ceil((100_000 * MiB + 1) / 10_000));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 * 1024 * GiB }), (length) => {
        const partSize = uppyPartSize(length);
        expect(Math.ceil(length / partSize)).toBeLessThanOrEqual(10_000);
        expect(partSize).toBeGreaterThanOrEqual(5 * MiB);
      }),
    );
  });

  it('takes a declared part size within S3’s limits that keeps to 10,000 parts, and refuses any other', () => {
    expect(presignedPartSize(20 * MiB, 8 * MiB)).toBe(8 * MiB);
    expect(presignedPartSize(undefined, undefined)).toBe(5 * MiB);
    expect(() => presignedPartSize(20 * MiB, 4 * MiB)).toThrow(/must be from 5242880 \(5 MiB\) to 5368709120 \(5 GiB\)/);
    expect(() => presignedPartSize(20 * MiB, 6 * GiB)).toThrow(InvalidRequestError);
    expect(() => presignedPartSize(60_000 * MiB, 5 * MiB)).toThrow(/more than 10000 parts; use at least 6291456/);
    expect(declaredPartSizeOf({ 'upload-part-size': '8388608' })).toBe(8 * MiB);
    expect(declaredPartSizeOf({})).toBeUndefined();
    for (const bad of ['8 MiB', '-1', 1.5, {}])
      expect(() => declaredPartSizeOf({ 'upload-part-size': bad }), String(bad)).toThrow(InvalidRequestError);
  });
});

describe('partBinding', () => {
  const upload = { length: 12 * MiB, partSize: 5 * MiB };

  it('binds each part’s size from the declared length, the last one to what is left', () => {
    expect(partBinding(upload, 1, {})).toEqual({ size: 5 * MiB });
    expect(partBinding(upload, 3, {})).toEqual({ size: 2 * MiB });
    expect(partBinding(upload, 3, { size: String(2 * MiB) })).toEqual({ size: 2 * MiB });
    expect(partBinding({ length: 0, partSize: 5 * MiB }, 1, {})).toEqual({ size: 0 });
  });

  it('refuses a part beyond the declared length and a size that is not the part’s', () => {
    expect(() => partBinding(upload, 4, {})).toThrow(
      "part 4 is beyond the upload's declared length: 12582912 bytes in parts of 5242880 are 3 parts",
    );
    expect(() => partBinding({ length: 0, partSize: 5 * MiB }, 2, {})).toThrow(/are 1 part$/);
    expect(() => partBinding(upload, 1, { size: String(5 * MiB + 1) })).toThrow('part 1 of this upload is 5242880 bytes');
  });

  it('binds a size the client names when no length was declared, and nothing when it names none', () => {
    expect(partBinding({ partSize: 5 * MiB }, 9, { size: '1024' })).toEqual({ size: 1024 });
    expect(partBinding({ partSize: 5 * MiB }, 9, {})).toEqual({});
  });

  it('refuses a malformed size: not a whole number, negative, beyond 5 GiB', () => {
    for (const size of ['abc', '-1', '1.5', '1e6', String(5 * GiB + 1), ' 5']) {
      expect(() => partBinding({ partSize: 5 * MiB }, 1, { size }), size).toThrow(
        /size must be a whole number of bytes from 0 to 5368709120/,
      );
    }
  });

  it('binds a checksum given as "<algorithm> <base64>", like tus’s Upload-Checksum', () => {
    const digest = sha256('part');
    expect(partBinding(upload, 1, { checksum: `sha256 ${digest}` })).toEqual({
      size: 5 * MiB,
      checksum: { algorithm: 'SHA256', value: digest },
    });
    expect(parsePartChecksum('SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=')).toEqual({ algorithm: 'SHA1', value: 'Kq5sNclPz7QV2+lfQIuc6R7oRu0=' });
    expect(parsePartChecksum('crc32c AAAAAA==')).toEqual({ algorithm: 'CRC32C', value: 'AAAAAA==' });
    expect(parsePartChecksum(undefined)).toBeUndefined();
  });

  it('refuses a malformed checksum: no algorithm, an unsupported one, a digest of the wrong length, not base64', () => {
    const cases: [unknown, RegExp][] = [
      [sha256('x'), /checksum must be "<algorithm> <base64 digest>"/],
      [
        `md5 ${createHash('md5').update('x').digest('base64')}`,
        /checksum algorithm "md5" is not supported; use one of sha256, sha1, crc32, crc32c/,
      ],
      ['sha256 AAAAAA==', /a sha256 checksum is the base64 of 32 bytes/],
      ['crc32 AAAA', /a crc32 checksum is the base64 of 4 bytes/],
      [`sha256 ${sha256('x').replace('=', '')}`, /a sha256 checksum is the base64 of 32 bytes/],
      ['sha256 not*base64', /checksum must be/],
      // A "+" left unencoded in a query arrives as a space.
      [`sha256 ${'a b'.repeat(14)}`, /checksum must be/],
      [['sha256 x', 'sha1 y'], /checksum must be/],
    ];
    for (const [checksum, says] of cases) expect(() => partBinding(upload, 1, { checksum }), String(checksum)).toThrow(says);
  });
});

describe('part ranges', () => {
  it('keep parts reported in order as one range, and merge gaps as they fill', () => {
    let ranges: PartRanges = [];
    for (const n of [1, 2, 3]) ranges = withPart(ranges, n);
    expect(ranges).toEqual([[1, 3]]);
    ranges = withPart(withPart(ranges, 7), 5);
    expect(ranges).toEqual([
      [1, 3],
      [5, 5],
      [7, 7],
    ]);
    expect(withPart(withPart(ranges, 6), 4)).toEqual([[1, 7]]);
    expect(withPart(ranges, 2)).toEqual(ranges);
    expect(ranges).toEqual([
      [1, 3],
      [5, 5],
      [7, 7],
    ]);
  });

  it('hold exactly the parts added, in any order', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 60 }), { maxLength: 80 }), (parts) => {
        const ranges = parts.reduce<PartRanges>((acc, n) => withPart(acc, n), []);
        for (let n = 1; n <= 61; n++) expect(hasPart(ranges, n)).toBe(parts.includes(n));
        ranges.forEach(([first, last], i) => {
          expect(first).toBeLessThanOrEqual(last);
          if (i > 0) expect(first).toBeGreaterThan(ranges[i - 1]![1] + 1);
        });
      }),
    );
  });
});

describe('partReportProblem (the recordPart validator)', () => {
  const presigned = (over: Partial<GatewayUploadState> = {}) =>
    ({
      mode: 'presigned',
      phase: 'receive-parts',
      outcome: 'running',
      length: 12 * MiB,
      partSize: 5 * MiB,
      expiresAt: 10_000,
      ...over,
    }) as const;

  it('accepts a part within the declared length, or any S3 part number without one', () => {
    expect(partReportProblem(presigned(), { partNumber: 3, size: 2 * MiB }, 0)).toBeUndefined();
    expect(partReportProblem(presigned({ length: undefined }), { partNumber: 10_000, size: 5 * MiB }, 0)).toBeUndefined();
  });

  it('rejects reports on an upload that does not receive parts, has expired, or for a part that cannot be', () => {
    expect(partReportProblem(presigned({ mode: 'tus' }), { partNumber: 1, size: 1 }, 0)?.type).toBe('NotReceiving');
    expect(partReportProblem(presigned({ phase: 'verify' }), { partNumber: 1, size: 1 }, 0)?.type).toBe('NotReceiving');
    expect(partReportProblem(presigned(), { partNumber: 1, size: 1 }, 10_000)?.type).toBe('UploadExpired');
    expect(partReportProblem(presigned(), { partNumber: 4, size: 1 }, 0)).toMatchObject({
      type: 'InvalidChunk',
      message: expect.stringContaining('1–3'),
    });
    expect(partReportProblem(presigned(), { partNumber: 1, size: -1 }, 0)?.type).toBe('InvalidChunk');
    expect(partReportProblem(presigned(), { partNumber: 1.5, size: 1 }, 0)?.type).toBe('InvalidChunk');
  });
});
