/**
 * Bad input, caught before anything starts: each invalid request gets an error that names the
 * field, says what was wrong and what is allowed.
 */
import { describe, expect, it } from 'vitest';
import { InvalidUploadRequestError } from '../../src/upload/errors';
import { findRequestProblems, normalizeUploadRequest, type UploadRequest } from '../../src/upload/request';

const valid: UploadRequest = {
  uploadId: 'invoice-2026-11',
  tenant: 'acme',
  source: { type: 'file', path: '/data/in.bin' },
  destination: { bucket: 'uploads', key: 'invoices/2026/11.pdf' },
};

function problemsWith(patch: Record<string, unknown>) {
  return findRequestProblems({ ...valid, ...patch });
}

describe('upload request validation', () => {
  it('accepts a minimal request and fills in the documented defaults', () => {
    expect(normalizeUploadRequest(valid)).toMatchObject({
      partSize: 8 * 1024 * 1024,
      partConcurrency: 4,
      checksumAlgorithm: 'CRC32C',
      contentType: 'application/octet-stream',
      failIfExists: false,
      partsPerActivity: 512,
      metadata: {},
    });
  });

  it.each([
    ['part size below 5 MiB', { partSize: 1024 }, 'partSize', "part size 1024 bytes is outside S3's bounds: 5 MiB to 5 GiB"],
    ['part size above 5 GiB', { partSize: 6 * 1024 ** 3 }, 'partSize', "outside S3's bounds: 5 MiB to 5 GiB"],
    [
      'declared size over 5 TiB',
      { declaredSize: 5 * 1024 ** 4 + 1 },
      'declaredSize',
      "must be at most 5497558138880 bytes (5 TiB, S3's object limit)",
    ],
    ['negative declared size', { declaredSize: -1 }, 'declaredSize', 'must be ≥ 0'],
    ['fractional declared size', { declaredSize: 1.5 }, 'declaredSize', 'must be a whole number of bytes'],
    [
      'bucket with capitals',
      { destination: { bucket: 'Uploads', key: 'k' } },
      'destination.bucket',
      'may contain only lowercase letters, digits, dots and hyphens',
    ],
    ['bucket too short', { destination: { bucket: 'ab', key: 'k' } }, 'destination.bucket', 'must be 3–63 characters long, got 2'],
    [
      'bucket like an IP',
      { destination: { bucket: '10.0.0.1', key: 'k' } },
      'destination.bucket',
      'must not be formatted as an IP address',
    ],
    ['empty key', { destination: { bucket: 'uploads', key: '' } }, 'destination.key', 'must not be empty'],
    [
      'key over 1024 bytes',
      { destination: { bucket: 'uploads', key: 'é'.repeat(513) } },
      'destination.key',
      'must be at most 1024 bytes of UTF-8, got 1026',
    ],
    [
      'key with control characters',
      { destination: { bucket: 'uploads', key: 'a\nb' } },
      'destination.key',
      'must not contain control characters',
    ],
    ['key with ..', { destination: { bucket: 'uploads', key: 'a/../b' } }, 'destination.key', 'must not contain "." or ".." path segments'],
    [
      'key in the staging area',
      { destination: { bucket: 'uploads', key: '.upload-saga/x' } },
      'destination.key',
      'reserved for staged parts',
    ],
    ['relative source path', { source: { type: 'file', path: 'in.bin' } }, 'source.path', 'must be an absolute path'],
    ['unknown source type', { source: { type: 'ftp', path: '/x' } }, 'source.type', ''],
    [
      'source URL with credentials',
      { source: { type: 'url', url: 'https://user:pw@example.com/f.bin' } },
      'source.url',
      'without credentials (they would be stored in workflow history)',
    ],
    [
      'source URL not http',
      { source: { type: 'url', url: 'file:///etc/passwd' } },
      'source.url',
      'must be an absolute http:// or https:// URL',
    ],
    ['tenant with spaces', { tenant: 'a b' }, 'tenant', 'may contain only letters, digits, ".", "_" and "-"'],
    ['empty upload id', { uploadId: '' }, 'uploadId', 'must not be empty'],
    ['concurrency 0', { partConcurrency: 0 }, 'partConcurrency', 'must be at least 1'],
    ['concurrency 65', { partConcurrency: 65 }, 'partConcurrency', 'must be at most 64'],
    ['unknown checksum', { checksumAlgorithm: 'MD5' }, 'checksumAlgorithm', 'must be one of CRC32, CRC32C, SHA1, SHA256'],
    [
      'malformed expected checksum',
      { expectedChecksum: { algorithm: 'SHA256', value: 'abc' } },
      'expectedChecksum.value',
      'must be a SHA-256 digest: 64 hex characters or 44 base64 characters',
    ],
    ['malformed webhook URL', { webhookUrl: 'not a url' }, 'webhookUrl', 'must be an absolute http:// or https:// URL without credentials'],
    ['webhook URL with credentials', { webhookUrl: 'https://u:p@example.com/hook' }, 'webhookUrl', 'without credentials'],
    ['non-http webhook', { webhookUrl: 'ftp://example.com/hook' }, 'webhookUrl', 'http:// or https://'],
    ['content type not a MIME type', { contentType: 'pdf' }, 'contentType', 'must be a MIME type such as "video/mp4"'],
    ['metadata over 1831 bytes', { metadata: { big: 'x'.repeat(1832) } }, 'metadata', 'must total at most 1831 bytes'],
    ['non-ASCII metadata value', { metadata: { k: 'ü' } }, 'metadata.k', 'metadata values must be printable ASCII'],
    ['unknown field', { partsize: 5 }, 'request', 'unknown field(s) partsize'],
  ])('rejects %s', (_name, patch, field, message) => {
    const problems = problemsWith(patch);
    expect(problems.length).toBeGreaterThan(0);
    const problem = problems.find((p) => p.field === field);
    expect(problem, `problems were ${JSON.stringify(problems)}`).toBeDefined();
    expect(problem!.message).toContain(message);
  });

  it('takes a declared size of -0 as 0, as the workflow input will record it (fast-check found it)', () => {
    expect(Object.is(normalizeUploadRequest({ ...valid, declaredSize: -0 }).declaredSize, 0)).toBe(true);
  });

  it('lists every problem at once in one typed error', () => {
    const err = (() => {
      try {
        normalizeUploadRequest({ ...valid, tenant: '', partSize: 1 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidUploadRequestError);
    expect((err as InvalidUploadRequestError).problems.map((p) => p.field).sort()).toEqual(['partSize', 'tenant']);
    expect((err as Error).message).toMatch(/^invalid upload request: /);
  });

  it.each([null, undefined, 42, 'x', [], { uploadId: 5 }])('never throws on garbage like %j, it reports problems', (garbage) => {
    expect(findRequestProblems(garbage).length).toBeGreaterThan(0);
  });
});
