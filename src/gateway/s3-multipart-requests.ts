/**
 * What the S3 multipart endpoints read from Uppy's requests and give back, as pure functions:
 * part numbers, file meta (user metadata, the declared length), the client's part list, the
 * object's location. Every malformed value is an {@link InvalidRequestError} (400).
 */
import type { GatewayPart } from '../upload/gateway-upload';
import { InvalidRequestError } from './errors';
import { UPLOAD_PART_SIZE_META } from './s3-part-binding';

/** S3's part numbers. */
const MIN_PART_NUMBER = 1;
const MAX_PART_NUMBER = 10_000;

/**
 * The meta field through which a client declares the upload's length (Uppy's create request has
 * no size): `uppy.setFileMeta(id, { 'upload-length': file.size })`. With it, space is reserved and
 * the tenant's limits checked before any byte moves (413 at create), and verify requires exactly
 * that many bytes; without it, both happen after verify.
 */
export const UPLOAD_LENGTH_META = 'upload-length';

/** Fields of Uppy's file meta that are not user metadata (sent as `filename` and `type` already, the length, the part size). */
const UPPY_META_FIELDS = new Set(['name', 'type', 'relativePath', 'filename', 'filetype', UPLOAD_LENGTH_META, UPLOAD_PART_SIZE_META]);

/** A part number as Uppy sends it, checked: a whole number 1–10,000. */
export function parsePartNumber(text: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < MIN_PART_NUMBER || n > MAX_PART_NUMBER) {
    throw new InvalidRequestError(`part number must be a whole number from ${MIN_PART_NUMBER} to ${MAX_PART_NUMBER}, got "${text}"`);
  }
  return n;
}

/**
 * Uppy's file meta as S3 user metadata: Uppy's own fields dropped, numbers and booleans as text,
 * empty values dropped. Anything else that S3 cannot store is refused by the uploads service (400).
 */
export function userMetadataOf(meta: unknown): Record<string, string> {
  if (meta === undefined || meta === null) return {};
  if (typeof meta !== 'object' || Array.isArray(meta)) throw new InvalidRequestError('metadata must be an object of name → text');
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(meta as Record<string, unknown>)) {
    if (UPPY_META_FIELDS.has(name) || value === null || value === undefined || value === '') continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[name] = String(value);
    else throw new InvalidRequestError(`metadata "${name}" must be text, a number or a boolean`);
  }
  return out;
}

/** The length declared in the meta's {@link UPLOAD_LENGTH_META}, if any. */
export function declaredLengthOf(meta: unknown): number | undefined {
  const value = (meta as Record<string, unknown> | null | undefined)?.[UPLOAD_LENGTH_META];
  if (value === undefined || value === null || value === '') return undefined;
  const length = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw new InvalidRequestError(
      `metadata "${UPLOAD_LENGTH_META}" must be the file's size as a whole number of bytes, got ${JSON.stringify(value)}`,
    );
  }
  return length;
}

/**
 * The file meta of a `GET /s3/params` query: @uppy/aws-s3 v6 sends each field as `metadata[<name>]=<value>`.
 */
export function queryMetadataOf(query: Record<string, unknown>): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(query)) {
    const field = /^metadata\[(.+)\]$/.exec(name)?.[1];
    if (field !== undefined) meta[field] = Array.isArray(value) ? value[value.length - 1] : value;
  }
  return meta;
}

/** A finished part as the client reports it (`POST …/:partNumber/done`): the ETag S3 answered and its size. */
export function partClaimOf(body: unknown): { etag: string; size: number } {
  const claim = (body ?? {}) as { ETag?: unknown; size?: unknown };
  const malformed = (what: string) =>
    new InvalidRequestError(`the body must be { "ETag": "<the ETag S3 answered for the part>", "size": <its bytes> }: ${what}`);
  if (typeof claim.ETag !== 'string' || claim.ETag.length === 0 || claim.ETag.length > 128)
    throw malformed(`ETag must be text, got ${JSON.stringify(claim.ETag) ?? 'nothing'}`);
  if (typeof claim.size !== 'number' || !Number.isSafeInteger(claim.size) || claim.size < 0)
    throw malformed(`size must be a whole number of bytes, got ${JSON.stringify(claim.size) ?? 'nothing'}`);
  return { etag: claim.ETag, size: claim.size };
}

/** The client's `{ PartNumber, ETag }` list as the workflow takes it, in part order. */
export function gatewayPartsOf(body: unknown): GatewayPart[] {
  const parts = (body as { parts?: unknown } | undefined)?.parts;
  if (!Array.isArray(parts) || parts.length === 0)
    throw new InvalidRequestError('the body must be { "parts": [{ "PartNumber": 1, "ETag": "…" }, …] } with at least one part');
  return parts
    .map((part: unknown, index) => {
      const p = (part ?? {}) as { PartNumber?: unknown; ETag?: unknown };
      const partNumber = typeof p.PartNumber === 'string' ? Number(p.PartNumber) : p.PartNumber;
      if (typeof partNumber !== 'number' || !Number.isInteger(partNumber) || partNumber < MIN_PART_NUMBER || partNumber > MAX_PART_NUMBER) {
        throw new InvalidRequestError(`parts[${index}].PartNumber must be a whole number from ${MIN_PART_NUMBER} to ${MAX_PART_NUMBER}`);
      }
      if (typeof p.ETag !== 'string' || p.ETag.length === 0)
        throw new InvalidRequestError(`parts[${index}].ETag must be the ETag S3 answered for part ${partNumber}`);
      return { partNumber, etag: p.ETag };
    })
    .sort((a, b) => a.partNumber - b.partNumber);
}

/** The object's URL as a path-style address on the public endpoint (informational: Uppy shows it). */
export function objectLocation(endpoint: string | undefined, region: string, bucket: string, key: string): string {
  const encodedKey = key.split('/').map(encodeURIComponent).join('/');
  return endpoint
    ? `${endpoint.replace(/\/+$/, '')}/${bucket}/${encodedKey}`
    : `https://${bucket}.s3.${region}.amazonaws.com/${encodedKey}`;
}
