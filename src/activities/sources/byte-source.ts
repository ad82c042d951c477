/**
 * The source port: everything the upload activities need from where the bytes come from. One
 * small interface, so a new kind of source (HTTP, another bucket, a tus staging area) is one new
 * class and one line in the resolver, with no change to the activities.
 */
import type { SourceDescriptor } from '../../upload/request';

/** A snapshot of a source's identity; if it differs later, the source changed under the upload. */
export interface SourceStat {
  size: number;
  /** Opaque; equal versions mean unchanged content (e.g. mtime + size + inode, or an ETag). */
  version: string;
}

export interface ByteSource {
  /** For messages: "file /data/a.bin". Never contains secrets. */
  readonly description: string;
  stat(): Promise<SourceStat>;
  /**
   * Exactly `length` bytes from `offset`. A short read means the source shrank: it throws a
   * `SourceChanged` failure rather than returning fewer bytes.
   */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Opens sources by descriptor, enforcing the worker's policy (e.g. allowed roots). */
export interface SourceResolver {
  open(source: SourceDescriptor): Promise<ByteSource>;
}
