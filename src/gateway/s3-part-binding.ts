/**
 * What a presigned part URL binds, as pure functions: the part's exact size (signed as
 * `Content-Length`) and, when the client supplies one, its checksum (signed as the
 * `x-amz-checksum-<algorithm>` header), so S3 itself refuses at the PUT a part of another size or
 * other bytes.
 *
 * Why it is built this way:
 * - The size is the client's `size` parameter when given, else derived from the declared length
 *   and the part size. The default part size is the rule @uppy/aws-s3 v6 cuts files by,
 *   max(5 MiB, ceil(length / 10,000)), so an unmodified Uppy that declares `upload-length` gets
 *   size-bound URLs without sending anything else; a client that cuts otherwise declares its part
 *   size at creation (`upload-part-size`).
 * - The checksum parameter reads like tus's `Upload-Checksum` (`"sha256 <base64>"`), the form
 *   clients of this gateway already know; the digest's length is checked here, so a malformed one is
 *   a 400 from the gateway rather than an opaque refusal from S3.
 * - Every malformed value is an {@link InvalidRequestError} (400) before anything is signed.
 */
import type { ChecksumAlgorithm } from '../upload/request';
import { partCountOf } from '../upload/gateway-upload';
import { GiB, S3_LIMITS } from '../upload/part-plan';
import { InvalidRequestError } from './errors';

/**
 * The meta field through which a client declares its part size when it is not Uppy's default
 * (`getChunkSize` in @uppy/aws-s3): every part but the last has exactly this many bytes.
 */
export const UPLOAD_PART_SIZE_META = 'upload-part-size';

/** The checksum algorithms a part URL can bind, by the names the `checksum` parameter uses. */
const PART_CHECKSUM_ALGORITHMS = {
  sha256: { algorithm: 'SHA256', digestBytes: 32 },
  sha1: { algorithm: 'SHA1', digestBytes: 20 },
  crc32: { algorithm: 'CRC32', digestBytes: 4 },
  crc32c: { algorithm: 'CRC32C', digestBytes: 4 },
} as const satisfies Record<string, { algorithm: ChecksumAlgorithm; digestBytes: number }>;

/** A part's checksum as the client declared it: S3's algorithm and the base64 digest. */
export interface PartChecksum {
  algorithm: (typeof PART_CHECKSUM_ALGORITHMS)[keyof typeof PART_CHECKSUM_ALGORITHMS]['algorithm'];
  value: string;
}

/** What one part URL binds; a missing field is not bound. */
export interface PartBinding {
  size?: number;
  checksum?: PartChecksum;
}

/** The part size @uppy/aws-s3 v6 uses for a file of `length` bytes (without `getChunkSize`). */
export function uppyPartSize(length: number): number {
  return Math.max(S3_LIMITS.minPartSize, Math.ceil(length / S3_LIMITS.maxParts));
}

/**
 * The part size of a new presigned upload: the declared one (checked against S3's limits and the
 * declared length), else Uppy's rule for the declared length, else S3's minimum.
 * @throws InvalidRequestError for a part size outside 5 MiB–5 GiB or one that needs over 10,000 parts
 */
export function presignedPartSize(length: number | undefined, declared: number | undefined): number {
  if (declared === undefined) return length === undefined ? S3_LIMITS.minPartSize : uppyPartSize(length);
  if (declared < S3_LIMITS.minPartSize || declared > S3_LIMITS.maxPartSize) {
    throw new InvalidRequestError(
      `metadata "${UPLOAD_PART_SIZE_META}" must be from ${S3_LIMITS.minPartSize} (5 MiB) to ${S3_LIMITS.maxPartSize} (5 GiB) bytes, got ${declared}`,
    );
  }
  if (length !== undefined && Math.ceil(length / declared) > S3_LIMITS.maxParts) {
    throw new InvalidRequestError(
      `metadata "${UPLOAD_PART_SIZE_META}" ${declared} cuts ${length} bytes into more than ${S3_LIMITS.maxParts} parts; use at least ${uppyPartSize(length)}`,
    );
  }
  return declared;
}

/** A whole number of bytes from a query parameter or a meta field; undefined when absent. */
function byteCount(name: string, value: unknown, max: number): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const n = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new InvalidRequestError(`${name} must be a whole number of bytes from 0 to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** The part size declared in the meta's {@link UPLOAD_PART_SIZE_META}, if any (limits are checked by {@link presignedPartSize}). */
export function declaredPartSizeOf(meta: unknown): number | undefined {
  return byteCount(
    `metadata "${UPLOAD_PART_SIZE_META}"`,
    (meta as Record<string, unknown> | null | undefined)?.[UPLOAD_PART_SIZE_META],
    5 * GiB,
  );
}

/**
 * A `checksum` parameter, `"<algorithm> <base64 digest>"` (algorithms sha256, sha1, crc32, crc32c).
 * @throws InvalidRequestError for another form, algorithm or digest length
 */
export function parsePartChecksum(text: unknown): PartChecksum | undefined {
  if (text === undefined) return undefined;
  const match = typeof text === 'string' ? /^([A-Za-z0-9]+) ([A-Za-z0-9+/]+={0,2})$/.exec(text) : null;
  if (!match) {
    throw new InvalidRequestError(
      `checksum must be "<algorithm> <base64 digest>" (URL-encoded), e.g. "sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", got ${JSON.stringify(text)}`,
    );
  }
  const name = match[1]!.toLowerCase();
  const known = Object.hasOwn(PART_CHECKSUM_ALGORITHMS, name)
    ? PART_CHECKSUM_ALGORITHMS[name as keyof typeof PART_CHECKSUM_ALGORITHMS]
    : undefined;
  if (!known) {
    throw new InvalidRequestError(
      `checksum algorithm "${match[1]}" is not supported; use one of ${Object.keys(PART_CHECKSUM_ALGORITHMS).join(', ')}`,
    );
  }
  const digest = match[2]!;
  if (digest.length % 4 !== 0 || Buffer.from(digest, 'base64').length !== known.digestBytes) {
    throw new InvalidRequestError(`a ${name} checksum is the base64 of ${known.digestBytes} bytes, got "${digest}"`);
  }
  return { algorithm: known.algorithm, value: digest };
}

/** The header S3 reads a part's checksum from (`x-amz-checksum-sha256`, …). */
export function checksumHeaderOf(algorithm: PartChecksum['algorithm']): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

/** What the sign request asks to bind: the `size` and `checksum` query parameters, unchecked. */
export interface PartBindingRequest {
  size?: unknown;
  checksum?: unknown;
}

/**
 * What the URL of part `partNumber` binds. With a declared length the part must exist
 * (1…{@link partCountOf}) and a `size` given must be the part's; without one, a `size` given is
 * bound as it is (at most 5 GiB).
 * @throws InvalidRequestError for a part beyond the declared length, a `size` that is not the part's, a malformed parameter
 */
export function partBinding(upload: { length?: number; partSize: number }, partNumber: number, request: PartBindingRequest): PartBinding {
  const asked = byteCount('size', request.size, S3_LIMITS.maxPartSize);
  const checksum = parsePartChecksum(request.checksum);
  let size = asked;
  if (upload.length !== undefined) {
    const count = partCountOf(upload.length, upload.partSize);
    if (partNumber > count) {
      throw new InvalidRequestError(
        `part ${partNumber} is beyond the upload's declared length: ${upload.length} bytes in parts of ${upload.partSize} are ${count} part${count === 1 ? '' : 's'}`,
      );
    }
    const planned = partNumber < count ? upload.partSize : upload.length - (count - 1) * upload.partSize;
    if (asked !== undefined && asked !== planned) {
      throw new InvalidRequestError(
        `part ${partNumber} of this upload is ${planned} bytes (declared length ${upload.length}, part size ${upload.partSize}), not ${asked}`,
      );
    }
    size = planned;
  }
  return { ...(size !== undefined ? { size } : {}), ...(checksum ? { checksum } : {}) };
}
