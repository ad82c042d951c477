/**
 * A running fingerprint over the checksums of a multipart upload's parts, in part order:
 * `next = base64(SHA-256(previous + "\n" + partNumber + ":" + checksum))`, starting from ''.
 *
 * Why: a gateway upload's parts arrive one PATCH at a time through gateways that keep no state,
 * and the workflow must not hold a per-part list (10,000 checksums would ride along every
 * continue-as-new). The gateway that sends part n extends the fingerprint it read from the
 * workflow; verify recomputes it from the checksums S3 lists (which S3 validated on receipt)
 * and compares one 44-character string. Any part replaced, lost or reordered changes it.
 */
import { createHash } from 'node:crypto';

/** The fingerprint after part `partNumber` with `checksum` (base64, as S3 lists it) follows `previous`. */
export function extendPartsFingerprint(previous: string, partNumber: number, checksum: string): string {
  return createHash('sha256').update(`${previous}\n${partNumber}:${checksum}`).digest('base64');
}

/** The fingerprint of parts 1..n with these checksums, in order. */
export function partsFingerprint(checksums: readonly string[]): string {
  return checksums.reduce((fingerprint, checksum, i) => extendPartsFingerprint(fingerprint, i + 1, checksum), '');
}
