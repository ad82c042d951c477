/**
 * The source port: everything the upload activities need from where the bytes come from. One
 * small interface, so a new kind of source (HTTP, another bucket, a tus staging area) is one new
 * class and one line in the resolver, with no change to the activities.
 *
 * One optional capability, {@link ServerSideCopy}: a source that lives in the very store the
 * upload writes to can have its parts copied there by the store (UploadPartCopy), so no byte
 * passes through the worker. It is a typed member rather than a flag or a string, so a source
 * either offers the operation or does not, and the compiler checks every use.
 */
import type { TransferMode } from '../../upload/integrity';
import type { SourceDescriptor } from '../../upload/request';
import type { ChecksumField } from '../../s3/checksums';

export type { TransferMode };

/** A snapshot of a source's identity; if it differs later, the source changed under the upload. */
export interface SourceStat {
  size: number;
  /** Opaque; equal versions mean unchanged content (e.g. inode + size + mtime + ctime, or an ETag). Compare with {@link sourceVersionMatches}. */
  version: string;
}

/** A local-file version as workers wrote it before the change time was part of it: `inode:size:mtimeMs`. */
const LOCAL_VERSION_WITHOUT_CTIME = /^\d+:\d+:\d+(\.\d+)?$/;

/**
 * Whether a source is still the version recorded when the upload was inspected. Versions are
 * compared as strings, with one allowance: local-file versions gained the change time
 * (`:ctime=…`) while uploads were running, and a version recorded without it still matches a
 * current one that only adds it (such an upload keeps the older, weaker check).
 */
export function sourceVersionMatches(recorded: string, current: string): boolean {
  if (current === recorded) return true;
  return (
    LOCAL_VERSION_WITHOUT_CTIME.test(recorded) &&
    current.startsWith(`${recorded}:ctime=`) &&
    !current.slice(recorded.length + 1).includes(':')
  );
}

/** An opened source: its size and version, and its bytes by range. */
export interface ByteSource {
  /** For messages: "file /data/a.bin". Never contains secrets. */
  readonly description: string;
  /** Size and version of the source now. */
  stat(): Promise<SourceStat>;
  /**
   * Size and version taken when the source was opened, when the opener took them anyway: a caller
   * that needs them just after opening uses them instead of another {@link ByteSource.stat}.
   */
  readonly statAtOpen?: SourceStat;
  /**
   * Exactly `length` bytes from `offset`. A short read means the source shrank: it throws a
   * `SourceChanged` failure rather than returning fewer bytes.
   *
   * `into`, when given (at least `length` bytes), is memory the caller owns and reuses: a source
   * may read into it and return a view of its first `length` bytes, or ignore it and return a
   * buffer of its own. Either way the caller must not write to `into` while it uses the result.
   */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** Releases what the source holds open. */
  close(): Promise<void>;
  /**
   * Present when the source lives in the store the upload writes to (same endpoint, same
   * credentials): its ranges can be copied into a multipart upload there without passing through
   * the worker. Absent: parts are read with {@link ByteSource.read} and sent.
   */
  readonly serverSideCopy?: ServerSideCopy;
}

/** Where one copied part goes: a part of a multipart upload in the destination store. */
export interface PartCopyTarget {
  bucket: string;
  key: string;
  /** S3's id of the multipart upload. */
  multipartUploadId: string;
  partNumber: number;
}

/** What the store reports of a copied part. */
export interface CopiedPart {
  etag: string;
  /** The part's additional checksum (`ChecksumCRC32C`, …), present when the multipart upload has one. */
  checksums: Partial<Record<ChecksumField, string>>;
}

/** "I can be copied server-side into this store": the capability of a {@link ByteSource}. */
export interface ServerSideCopy {
  /**
   * Copies bytes `offset … offset + length − 1` of the source into `target`, conditional on the
   * source still being the version seen when it was opened (a changed source fails with
   * `SourceChanged`). Returns the part's ETag as the store reports it, and the part's additional
   * checksum when the upload has one (the store computes it).
   */
  copyPart(target: PartCopyTarget, range: { offset: number; length: number }, signal?: AbortSignal): Promise<CopiedPart>;
}

/** The transfer mode a source allows. */
export function transferModeOf(source: ByteSource): TransferMode {
  return source.serverSideCopy ? 'server-side-copy' : 'stream';
}

/** Opens sources by descriptor, enforcing the worker's policy (e.g. allowed roots). */
export interface SourceResolver {
  /** Opens `source`; throws a permanent failure when it is not allowed or not found. */
  open(source: SourceDescriptor): Promise<ByteSource>;
}
