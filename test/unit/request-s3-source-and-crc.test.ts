/**
 * Request validation for S3-object sources and full-object CRCs given in advance: what is
 * accepted, what each mistake is told, and the defaults they imply.
 */
import { describe, expect, it } from 'vitest';
import { sourceFromArgument, sourceName } from '../../src/cli/source-argument';
import { multipartChecksums } from '../../src/upload/integrity';
import { describeSource, findRequestProblems, normalizeUploadRequest, type UploadRequest } from '../../src/upload/request';

const valid: UploadRequest = {
  uploadId: 'copy-1',
  tenant: 'acme',
  source: { type: 's3', bucket: 'archive', key: 'videos/2026/a.mp4' },
  destination: { bucket: 'uploads', key: 'videos/a.mp4' },
};
const problemsWith = (patch: Record<string, unknown>) => findRequestProblems({ ...valid, ...patch });

describe('S3-object sources in requests', () => {
  it('accepts an object, a version and a profile name, and describes it as s3://bucket/key', () => {
    expect(findRequestProblems(valid)).toEqual([]);
    const full = {
      ...valid,
      source: { type: 's3', bucket: 'archive', key: 'a b/ü.bin', versionId: '3sL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY', profile: 'cold-store_2' },
    };
    expect(findRequestProblems(full)).toEqual([]);
    expect(describeSource(full.source as UploadRequest['source'])).toBe('s3://archive/a b/ü.bin');
  });

  it('is what the CLI makes of s3://bucket/key', () => {
    const source = sourceFromArgument('s3://archive/videos/2026/a.mp4');
    expect(source).toEqual({ type: 's3', bucket: 'archive', key: 'videos/2026/a.mp4' });
    expect(sourceName(source)).toBe('a.mp4');
    expect(findRequestProblems({ ...valid, source })).toEqual([]);
  });

  it.each([
    [
      'bucket breaking the naming rules',
      { bucket: 'Archive', key: 'k' },
      'source.bucket',
      'may contain only lowercase letters, digits, dots and hyphens',
    ],
    ['missing key', { bucket: 'archive' }, 'source.key', 'is required'],
    ['key with ..', { bucket: 'archive', key: 'a/../b' }, 'source.key', 'must not contain "." or ".." path segments'],
    ['empty version id', { bucket: 'archive', key: 'k', versionId: '' }, 'source.versionId', 'must be 1–1024 printable ASCII characters'],
    [
      'profile with a slash',
      { bucket: 'archive', key: 'k', profile: 'a/b' },
      'source.profile',
      'must be a profile name configured on the worker',
    ],
    ['credentials in the request', { bucket: 'archive', key: 'k', accessKeyId: 'AKIA…' }, 'source', 'unknown field(s) accessKeyId'],
  ])('rejects a source with %s', (_name, source, field, message) => {
    const problems = problemsWith({ source: { type: 's3', ...source } });
    expect(problems).toContainEqual({ field, message: expect.stringContaining(message) as string });
  });
});

describe('expected full-object CRCs', () => {
  it('accepts base64 CRCs of the right width and makes their algorithm the part checksum', () => {
    const request = normalizeUploadRequest({ ...valid, expectedChecksum: { algorithm: 'CRC64NVME', value: 'bA1Os6lBXLg=' } });
    expect(request.checksumAlgorithm).toBe('CRC64NVME');
    expect(normalizeUploadRequest({ ...valid, expectedChecksum: { algorithm: 'CRC32C', value: '3q2+7w==' } }).checksumAlgorithm).toBe(
      'CRC32C',
    );
    expect(
      normalizeUploadRequest({ ...valid, expectedChecksum: { algorithm: 'CRC32', value: '3q2+7w==' }, checksumAlgorithm: 'CRC32' })
        .checksumAlgorithm,
    ).toBe('CRC32');
  });

  it.each([
    [
      'a CRC64NVME of 4 bytes',
      { algorithm: 'CRC64NVME', value: '3q2+7w==' },
      'expectedChecksum.value',
      'base64 of the 8-byte big-endian CRC64NVME',
    ],
    ['a CRC32C in hex', { algorithm: 'CRC32C', value: 'deadbeef' }, 'expectedChecksum.value', 'base64 of the 4-byte big-endian CRC32C'],
    [
      'an algorithm S3 cannot report for a whole multipart object',
      { algorithm: 'SHA1', value: 'x' },
      'expectedChecksum.algorithm',
      'must be one of SHA256, CRC32, CRC32C, CRC64NVME',
    ],
  ])('rejects %s', (_name, expectedChecksum, field, message) => {
    expect(problemsWith({ expectedChecksum })).toContainEqual({ field, message: expect.stringContaining(message) as string });
  });

  it('rejects a part checksum of another algorithm than the expected CRC, saying why', () => {
    expect(problemsWith({ expectedChecksum: { algorithm: 'CRC32C', value: '3q2+7w==' }, checksumAlgorithm: 'SHA256' })).toEqual([
      {
        field: 'checksumAlgorithm',
        message:
          'must be "CRC32C" (or left out) when expectedChecksum is a CRC32C: S3 computes a full-object CRC32C only from CRC32C part checksums',
      },
    ]);
  });
});

describe('the checksum configuration of the multipart upload', () => {
  const normalize = (patch: Partial<UploadRequest>) => normalizeUploadRequest({ ...valid, ...patch });

  it('streams composite checksums by default, full-object ones for CRC64NVME and for an expected CRC', () => {
    expect(multipartChecksums(normalize({}), 'stream')).toEqual({ algorithm: 'CRC32C', type: 'COMPOSITE' });
    expect(multipartChecksums(normalize({ checksumAlgorithm: 'CRC64NVME' }), 'stream')).toEqual({
      algorithm: 'CRC64NVME',
      type: 'FULL_OBJECT',
    });
    expect(multipartChecksums(normalize({ expectedChecksum: { algorithm: 'CRC32', value: '3q2+7w==' } }), 'stream')).toEqual({
      algorithm: 'CRC32',
      type: 'FULL_OBJECT',
      expectedFullObject: { algorithm: 'CRC32', value: '3q2+7w==' },
    });
    // A SHA-256 given in advance is checked by re-reading, not by S3.
    expect(multipartChecksums(normalize({ expectedChecksum: { algorithm: 'SHA256', value: 'a'.repeat(64) } }), 'stream')).toEqual({
      algorithm: 'CRC32C',
      type: 'COMPOSITE',
    });
  });

  it('gives server-side copies no additional checksum (the store refuses UploadPartCopy into such an upload)', () => {
    expect(
      multipartChecksums(normalize({ expectedChecksum: { algorithm: 'CRC64NVME', value: 'bA1Os6lBXLg=' } }), 'server-side-copy'),
    ).toEqual({});
  });
});
