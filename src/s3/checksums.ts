/**
 * Per-part checksums in the form S3's `x-amz-checksum-*` headers and `Checksum*` fields use:
 * base64 of the big-endian digest. CRC32 and CRC32C come from `@node-rs/crc32` (native, several
 * GB/s — a pure-JS CRC would be the bottleneck of the upload); CRC64NVME from the AWS SDK's own
 * implementation (`@aws-sdk/checksums`, what the S3 client itself uses: the native CRT one when
 * `@aws-sdk/crc64-nvme-crt` is installed, otherwise JavaScript at about 270 MiB/s on one core);
 * SHA-1 and SHA-256 from node:crypto.
 */
import { createHash } from 'node:crypto';
import { Crc64Nvme } from '@aws-sdk/checksums/crc';
import { crc32, crc32c } from '@node-rs/crc32';
import type { ChecksumAlgorithm } from '../upload/request';

function crcToBase64(value: number): string {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(value >>> 0);
  return buf.toString('base64');
}

/** A checksum fed chunk by chunk (a whole source read part after part). */
export interface IncrementalChecksum {
  update(data: Uint8Array): void;
  /** base64, as S3 prints it. */
  digest(): Promise<string>;
}

/** A fresh incremental checksum of `algorithm`. */
export function createChecksum(algorithm: ChecksumAlgorithm): IncrementalChecksum {
  switch (algorithm) {
    case 'CRC32':
    case 'CRC32C': {
      const fn = algorithm === 'CRC32' ? crc32 : crc32c;
      let state = 0;
      return {
        update: (data) => void (state = fn(data, state)),
        digest: () => Promise.resolve(crcToBase64(state)),
      };
    }
    case 'CRC64NVME': {
      const crc = new Crc64Nvme();
      return { update: (data) => crc.update(data), digest: async () => Buffer.from(await crc.digest()).toString('base64') };
    }
    case 'SHA1':
    case 'SHA256': {
      const hash = createHash(algorithm === 'SHA1' ? 'sha1' : 'sha256');
      return { update: (data) => void hash.update(data), digest: () => Promise.resolve(hash.digest('base64')) };
    }
  }
}

/** The base64 checksum of `data` with `algorithm`. */
export function partChecksum(algorithm: ChecksumAlgorithm, data: Uint8Array): Promise<string> {
  const checksum = createChecksum(algorithm);
  checksum.update(data);
  return checksum.digest();
}

/** The SDK field that carries a checksum of this algorithm (`ChecksumCRC32C`, …). */
export type ChecksumField = `Checksum${ChecksumAlgorithm}`;

/** The SDK field that carries a checksum of this algorithm (`ChecksumCRC32C`, …). */
export function checksumField(algorithm: ChecksumAlgorithm): ChecksumField {
  return `Checksum${algorithm}`;
}

/** A part ETag without its quotes, for comparing and fingerprinting. */
export function bareETag(etag: string | undefined): string | undefined {
  return etag?.replace(/"/g, '');
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
 * bytes of history per batch instead of one checksum per part. Server-side copies carry no
 * additional checksum: their fingerprint is over the part ETags the copies returned (the store's
 * MD5 of each copied range), which verify compares with the ETags ListParts shows.
 */
export function checksumFingerprint(checksums: Map<number, string>, firstPart: number, lastPart: number): string {
  const hash = createHash('sha256');
  for (let n = firstPart; n <= lastPart; n++) hash.update(`${n}:${checksums.get(n) ?? 'missing'}\n`);
  return hash.digest('base64');
}
