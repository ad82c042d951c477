/**
 * The tus checksum extension, which @tus/server does not implement: parsing `Upload-Checksum`
 * and verifying a request body against it while it streams.
 *
 * Invariant: a body whose checksum does not match records nothing (460), so the offset stays
 * where it was.
 */
import { createHash } from 'node:crypto';
import { crc32 } from '@node-rs/crc32';
import { GatewayError, InvalidRequestError } from './errors';

/** Algorithms of the checksum extension, as `Tus-Checksum-Algorithm` lists them. */
export const TUS_CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'crc32', 'sha256'] as const;
export type TusChecksumAlgorithm = (typeof TUS_CHECKSUM_ALGORITHMS)[number];

/** An `Upload-Checksum: <algorithm> <base64>` header. */
export interface UploadChecksum {
  algorithm: TusChecksumAlgorithm;
  digest: string;
}

/** 460 Checksum Mismatch (tus checksum extension). */
export class ChecksumMismatchError extends GatewayError {
  override readonly name = 'ChecksumMismatchError';
  constructor(algorithm: string) {
    super(
      460,
      'ChecksumMismatch',
      `Checksum Mismatch: the ${algorithm} of the request body differs from Upload-Checksum; nothing was recorded`,
    );
  }
}

/**
 * Parses an Upload-Checksum header.
 * @throws InvalidRequestError (400) for a malformed header or an algorithm not supported
 */
export function parseUploadChecksum(header: string): UploadChecksum {
  const match = /^\s*([A-Za-z0-9-]+) ([A-Za-z0-9+/]+={0,2})\s*$/.exec(header);
  if (!match)
    throw new InvalidRequestError('Upload-Checksum must be "<algorithm> <base64 digest>", e.g. "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="');
  const algorithm = match[1]!.toLowerCase();
  if (!(TUS_CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new InvalidRequestError(
      `Upload-Checksum algorithm "${match[1]}" is not supported; use one of ${TUS_CHECKSUM_ALGORITHMS.join(', ')}`,
    );
  }
  return { algorithm: algorithm as TusChecksumAlgorithm, digest: match[2]! };
}

/** Verifies a request body against its Upload-Checksum, chunk by chunk. */
export class BodyChecksum {
  private crc = 0;
  private readonly hash;
  constructor(private readonly expected: UploadChecksum) {
    this.hash = expected.algorithm === 'crc32' ? undefined : createHash(expected.algorithm);
  }
  update(chunk: Buffer): void {
    if (this.hash) this.hash.update(chunk);
    else this.crc = crc32(chunk, this.crc);
  }
  matches(): boolean {
    let actual: string;
    if (this.hash) actual = this.hash.digest('base64');
    else {
      const buf = Buffer.alloc(4);
      buf.writeUInt32BE(this.crc >>> 0);
      actual = buf.toString('base64');
    }
    return actual === this.expected.digest;
  }
}
