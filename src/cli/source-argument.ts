/**
 * The `<source>` argument of `upload`: an http(s) URL the worker downloads, an `s3://bucket/key`
 * object in the worker's own store (copied server-side), or a file path.
 *
 * Why it is decided by the text alone: the file is read on the worker's host, not here, so the
 * CLI cannot ask the file system; `http://` and `https://` are never the start of a path anyone
 * means. A path is made absolute against the CLI's working directory (requests need absolute
 * paths), so `upload ./big.iso` means what it says when CLI and worker share a host.
 */
import path from 'node:path';
import type { SourceDescriptor } from '../upload/request';

/** `https://…` / `http://…` → a URL source; `s3://bucket/key` → an S3 object; anything else → a file source with an absolute path. */
export function sourceFromArgument(argument: string): SourceDescriptor {
  if (/^https?:\/\//i.test(argument)) return { type: 'url', url: argument };
  const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(argument);
  if (s3) return { type: 's3', bucket: s3[1]!, key: s3[2]! };
  return { type: 'file', path: path.resolve(argument) };
}

/** The name a person would call the source: the file name, or the last segment of the URL's path. */
export function sourceName(source: SourceDescriptor): string {
  if (source.type === 'file') return path.basename(source.path);
  if (source.type === 's3') return path.posix.basename(source.key) || source.bucket;
  try {
    return path.posix.basename(new URL(source.url).pathname) || new URL(source.url).hostname;
  } catch {
    return 'upload';
  }
}
