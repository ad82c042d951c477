/**
 * Combining CRCs: the CRC of `A‖B` from crc(A), crc(B) and the length of B, without the bytes.
 *
 * Why it exists: a full-object CRC given in advance should be checked *before* the merge without
 * reading the source again. S3 lists each part's CRC (validated against the bytes on receipt), and
 * the CRC of the whole object is the combination of those, part after part — the same arithmetic
 * S3 uses for `ChecksumType: FULL_OBJECT`. No maintained JavaScript library combines CRC32C or
 * CRC64NVME (`@node-rs/crc32` and `@aws-sdk/checksums` compute, they do not combine), so this is the
 * textbook method of zlib's `crc32_combine` (multiply crc(A) by x^(8·|B|) modulo the polynomial, in
 * GF(2), then xor crc(B)), written once for any reflected CRC whose initial value and final xor are
 * all ones — which CRC32, CRC32C and CRC64NVME all are. BigInt keeps one code path for 32 and 64
 * bits; a combine costs O(width · log |B|) and runs once per part, so speed does not matter.
 * test/unit/crc-combine.test.ts checks it against the libraries' CRCs of whole buffers.
 */
import type { FullObjectCrcAlgorithm } from '../upload/request';

interface CrcSpec {
  width: bigint;
  /** The polynomial, bit-reflected. */
  reflectedPoly: bigint;
}

const SPECS: Record<FullObjectCrcAlgorithm, CrcSpec> = {
  CRC32: { width: 32n, reflectedPoly: 0xedb88320n },
  CRC32C: { width: 32n, reflectedPoly: 0x82f63b78n },
  CRC64NVME: { width: 64n, reflectedPoly: 0x9a6c9329ac4bc9b5n },
};

/** a·b mod p, polynomials in reflected bit order (the top bit is x⁰). */
function multModP(spec: CrcSpec, a: bigint, b: bigint): bigint {
  let m = 1n << (spec.width - 1n);
  let product = 0n;
  while (m !== 0n) {
    if (a & m) product ^= b;
    m >>= 1n;
    b = b & 1n ? (b >> 1n) ^ spec.reflectedPoly : b >> 1n;
  }
  return product;
}

/** x^(8·bytes) mod p, by squaring. */
function xPow8n(spec: CrcSpec, bytes: number): bigint {
  let result = 1n << (spec.width - 1n); // x⁰
  let square = multModP(spec, 1n << (spec.width - 2n), 1n << (spec.width - 2n)); // x²
  square = multModP(spec, square, square); // x⁴
  square = multModP(spec, square, square); // x⁸: one byte
  let n = BigInt(bytes);
  while (n > 0n) {
    if (n & 1n) result = multModP(spec, square, result);
    square = multModP(spec, square, square);
    n >>= 1n;
  }
  return result;
}

/** CRC of `A‖B` from crc(A), crc(B) and the byte length of B. CRCs as unsigned BigInts. */
export function combineCrc(algorithm: FullObjectCrcAlgorithm, crcA: bigint, crcB: bigint, lengthB: number): bigint {
  const spec = SPECS[algorithm];
  return multModP(spec, xPow8n(spec, lengthB), crcA) ^ crcB;
}

/** The CRC of the concatenation of parts, each given as S3 prints it (base64, big-endian) with its length. */
export function combineBase64Crcs(algorithm: FullObjectCrcAlgorithm, parts: { checksum: string; length: number }[]): string {
  const bytes = Number(SPECS[algorithm].width / 8n);
  let crc: bigint | undefined;
  for (const part of parts) {
    const raw = Buffer.from(part.checksum, 'base64');
    if (raw.length !== bytes) throw new RangeError(`a ${algorithm} is ${bytes} bytes, got ${raw.length} from "${part.checksum}"`);
    const value = BigInt(`0x${raw.toString('hex')}`);
    crc = crc === undefined ? value : combineCrc(algorithm, crc, value, part.length);
  }
  if (crc === undefined) throw new RangeError('no parts to combine');
  return Buffer.from(crc.toString(16).padStart(bytes * 2, '0'), 'hex').toString('base64');
}
