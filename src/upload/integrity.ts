/**
 * How an upload proves its integrity: which additional checksum the multipart upload is created
 * with, of which type, and what is checked at the merge. Pure, so the workflow decides it
 * deterministically from the request and the inspection, and activities only carry it out.
 *
 * The rules come from what S3 (and the MinIO tested here) accept:
 * - parts the worker sends (`stream`) carry the request's `checksumAlgorithm`; S3 verifies each on
 *   receipt. CRC64NVME, or a CRC given in advance as `expectedChecksum`, makes the upload's checksum
 *   `FULL_OBJECT` (a CRC of the whole object that S3 combines from the part CRCs) — the only kind a
 *   caller can know in advance; otherwise it is `COMPOSITE` (a checksum of the part checksums).
 * - parts the store copies (`server-side-copy`) carry none unless the store accepts UploadPartCopy
 *   into a checksummed upload (`S3_CHECKSUMMED_PART_COPY`; AWS S3 and versitygw do, MinIO refuses
 *   it): then the store computes each copied part's checksum and the upload's checksum is as for
 *   streamed parts. Without, verify compares the part ETags (the store's MD5 of each copied range).
 * - a store without additional checksums (`S3_ADDITIONAL_CHECKSUMS=false`) gets none at all, and
 *   verify compares part ETags for every transfer.
 */
import type { UploadRequestWithDefaults } from './request';
// Not from './request': that module brings zod into the workflow bundle (see request-types.ts).
import { expectedCrc, type ChecksumAlgorithm, type FullObjectCrcAlgorithm } from './request-types';

/** How upload-parts moves a source's bytes: read and sent by the worker, or copied by the store. */
export type TransferMode = 'stream' | 'server-side-copy';

/** S3's two kinds of checksum of a multipart object. */
export type MultipartChecksumType = 'COMPOSITE' | 'FULL_OBJECT';

/**
 * What the destination store does with additional checksums, as the worker that inspected the
 * source was configured (recorded in the inspection, so the workflow decides from history).
 */
export interface StoreChecksums {
  /** The store verifies additional checksums at all (`S3_ADDITIONAL_CHECKSUMS`). */
  additional: boolean;
  /** UploadPartCopy into an upload created with an additional checksum is accepted (`S3_CHECKSUMMED_PART_COPY`). */
  onCopies: boolean;
}

/** What inspections recorded before the store's rules were configurable assumed: checksums, none on copies. */
export const ASSUMED_STORE_CHECKSUMS: StoreChecksums = { additional: true, onCopies: false };

/** The checksum configuration of one multipart upload. */
export interface MultipartChecksums {
  /** The additional checksum every part carries; absent for server-side copies. */
  algorithm?: ChecksumAlgorithm;
  /** Absent with no algorithm. */
  type?: MultipartChecksumType;
  /** A full-object CRC the caller gave in advance: checked by verify, sent with CompleteMultipartUpload, read back after it. */
  expectedFullObject?: { algorithm: FullObjectCrcAlgorithm; value: string };
}

/** The checksum configuration for `request` moved by `transfer` into a store that does `store`. */
export function multipartChecksums(
  request: Pick<UploadRequestWithDefaults, 'checksumAlgorithm' | 'expectedChecksum'>,
  transfer: TransferMode,
  store: StoreChecksums = ASSUMED_STORE_CHECKSUMS,
): MultipartChecksums {
  if (!store.additional) return {};
  if (transfer === 'server-side-copy' && !store.onCopies) return {};
  const crc = expectedCrc(request.expectedChecksum);
  // Validation guarantees checksumAlgorithm === crc.algorithm when a CRC is expected.
  if (crc) return { algorithm: crc.algorithm, type: 'FULL_OBJECT', expectedFullObject: crc };
  return { algorithm: request.checksumAlgorithm, type: request.checksumAlgorithm === 'CRC64NVME' ? 'FULL_OBJECT' : 'COMPOSITE' };
}
