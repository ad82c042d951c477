/**
 * The ETag S3 gives a completed multipart object: MD5 of the concatenated binary MD5s of the
 * parts, then "-<part count>". Knowing it before completing lets a retried merge recognise its
 * own finished object (HeadObject) instead of guessing.
 */
import { createHash } from 'node:crypto';

export function multipartETag(partETags: string[]): string {
  const md5 = createHash('md5');
  for (const etag of partETags) md5.update(Buffer.from(etag.replace(/"/g, ''), 'hex'));
  return `"${md5.digest('hex')}-${partETags.length}"`;
}

export function sameETag(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && a.replace(/"/g, '') === b.replace(/"/g, '');
}
