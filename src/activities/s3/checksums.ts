/**
 * Per-part checksums in the form S3's `x-amz-checksum-*` headers and `Checksum*` fields use:
 * base64 of the big-endian digest. CRC32 and CRC32C come from `@node-rs/crc32` (native, several
 * GB/s — a pure-JS CRC would be the bottleneck of the upload); SHA-1 and SHA-256 from node:crypto.
 */
import { createHash } from 'node:crypto';
import { crc32, crc32c } from '@node-rs/crc32';
import type { ChecksumAlgorithm } from '../../upload/request';

function crcToBase64(value: number): string {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(value >>> 0);
  return buf.toString('base64');
}

/** The base64 checksum of `data` with `algorithm`. */
export function partChecksum(algorithm: ChecksumAlgorithm, data: Buffer): string {
  switch (algorithm) {
    case 'CRC32':
      return crcToBase64(crc32(data));
    case 'CRC32C':
      return crcToBase64(crc32c(data));
    case 'SHA1':
      return createHash('sha1').update(data).digest('base64');
    case 'SHA256':
      return createHash('sha256').update(data).digest('base64');
  }
}

/** The SDK field that carries a checksum of this algorithm (`ChecksumCRC32C`, …). */
export function checksumField(algorithm: ChecksumAlgorithm): 'ChecksumCRC32' | 'ChecksumCRC32C' | 'ChecksumSHA1' | 'ChecksumSHA256' {
  return `Checksum${algorithm}`;
}

/** Normalizes a SHA-256 given as hex or base64 to hex. */
export function sha256Hex(value: string): string {
  return /^[0-9a-fA-F]{64}$/.test(value) ? value.toLowerCase() : Buffer.from(value, 'base64').toString('hex');
}

/**
 * A fingerprint of the per-part checksums of a batch: SHA-256 over "<part>:<checksum>\n" for each
 * part in order. upload-parts returns it (computed from the source bytes it read, or from what S3
 * listed for parts an earlier attempt sent); verify recomputes it from ListParts. Equal
 * fingerprints prove S3 holds, part for part, the checksums computed from the source — with 44
 * bytes of history per batch instead of one checksum per part.
 */
export function checksumFingerprint(checksums: Map<number, string>, firstPart: number, lastPart: number): string {
  const hash = createHash('sha256');
  for (let n = firstPart; n <= lastPart; n++) hash.update(`${n}:${checksums.get(n) ?? 'missing'}\n`);
  return hash.digest('base64');
}
