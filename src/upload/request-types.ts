/**
 * The request's vocabulary without its validation: checksum algorithms, sources, and how they are
 * described. Kept apart from request.ts (zod) because workflow code imports it, and the workflow
 * sandbox initialises every module the workflows import again for each workflow run: zod's own
 * initialisation and the request schema cost ≈ 25 ms of worker CPU per upload (measured with
 * `--cpu-prof`), more than the rest of a small upload's workflow code. request.ts re-exports all
 * of it, so other code imports from there as before.
 */

/**
 * Checksum algorithms S3 accepts per part (`x-amz-checksum-*`). CRC64NVME parts always make a
 * full-object checksum (S3 cannot build a composite one from them).
 */
export const CHECKSUM_ALGORITHMS = ['CRC32', 'CRC32C', 'SHA1', 'SHA256', 'CRC64NVME'] as const;
/** A checksum S3 computes and verifies for every part. */
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/** The CRCs S3 can report as a checksum of the whole object (`ChecksumType: FULL_OBJECT`), multipart or not. */
export const FULL_OBJECT_CRC_ALGORITHMS = ['CRC32', 'CRC32C', 'CRC64NVME'] as const;
/** A checksum that S3 can combine into one over the whole object. */
export type FullObjectCrcAlgorithm = (typeof FULL_OBJECT_CRC_ALGORITHMS)[number];

/**
 * A checksum of the whole source that the caller knows in advance.
 * - `SHA256`: hex or base64; verified by reading the source again before the merge.
 * - `CRC32` / `CRC32C` / `CRC64NVME`: base64 of the big-endian CRC, as S3 prints it. The parts are
 *   sent with that CRC, S3 combines them into a full-object checksum, verify compares the combination
 *   before the merge, CompleteMultipartUpload carries the value (S3 refuses a mismatch before the
 *   object exists), and the merged object's checksum is read back before success is reported.
 */
export type ExpectedChecksum =
  { algorithm: 'SHA256'; /** hex or base64 */ value: string } | { algorithm: FullObjectCrcAlgorithm; /** base64 */ value: string };

/** A CRC given in advance, if `expected` is one (the SHA-256 form is checked by re-reading). */
export function expectedCrc(expected: ExpectedChecksum | undefined): { algorithm: FullObjectCrcAlgorithm; value: string } | undefined {
  return expected && expected.algorithm !== 'SHA256' ? expected : undefined;
}

/**
 * An object in S3. Without `profile` it lives in the worker's own store: parts are copied
 * server-side (UploadPartCopy), no byte passes through the worker. With `profile`, it lives behind
 * another endpoint or other credentials that the worker has configured under that name
 * (`UPLOAD_SAGA_S3_SOURCE_PROFILES`): the worker reads it with ranged GETs. Credentials never
 * appear in the request: it would be stored in workflow history.
 */
export interface S3ObjectSource {
  type: 's3';
  bucket: string;
  key: string;
  /** A specific version of the object. @default the current version at inspection */
  versionId?: string;
  /** A source profile configured on the worker. @default the worker's own store */
  profile?: string;
}

/**
 * Where the bytes come from; each kind has a reader on the worker (see activities/sources/).
 * - `file`: a path on the worker host, under the worker's allowed roots.
 * - `url`: an http(s) URL the worker downloads (ranged GETs when the server supports them).
 * - `s3`: an S3 object (see {@link S3ObjectSource}).
 */
export type SourceDescriptor = { type: 'file'; path: string } | { type: 'url'; url: string } | S3ObjectSource;

/** One line for summaries and messages; a URL loses its query string (it may carry a token). */
export function describeSource(source: SourceDescriptor): string {
  if (source.type === 'file') return source.path;
  if (source.type === 's3') return `s3://${source.bucket}/${source.key}`;
  try {
    const url = new URL(source.url);
    return `${url.origin}${url.pathname}`;
  } catch {
    return 'an invalid URL';
  }
}
