/**
 * What the configured S3 store accepts where S3-compatible stores differ (S3_MAX_PARTS,
 * S3_EQUAL_PARTS, S3_ADDITIONAL_CHECKSUMS, S3_CHECKSUMMED_PART_COPY): configured, never guessed
 * from an endpoint's name. docs/reference/store-capabilities.md says which store needs which
 * setting; test/s3-store-capabilities.test.ts probes the two stores the tests run.
 */
import { S3_LIMITS, type MultipartLimits } from '../upload/part-plan';

/** The store's rules the saga follows. */
export interface S3StoreRules {
  /** Most parts one multipart upload may have. @default 10,000 (S3's limit) */
  maxParts: number;
  /**
   * Every part but the last must have the same size (Cloudflare R2). The worker always cuts equal
   * parts, the gateway's tus path with `UPLOAD_SAGA_GATEWAY_TUS_EQUAL_PARTS`; with this set, an
   * upload whose parts differ (presigned, or tus with folded remainders) is refused before
   * CompleteMultipartUpload. @default false
   */
  equalParts: boolean;
  /**
   * The store verifies additional checksums (`x-amz-checksum-*`) on parts and objects. When false,
   * uploads carry none and verify compares part ETags (the store's MD5 of each part). @default true
   */
  additionalChecksums: boolean;
  /**
   * UploadPartCopy into a multipart upload created with an additional checksum is accepted (AWS S3,
   * versitygw; MinIO refuses it): server-side copies then keep their checksums. @default false
   */
  checksummedPartCopy: boolean;
}

/** The rules of AWS S3 as far as the saga relies on them, except `checksummedPartCopy`, off to suit MinIO. */
export const DEFAULT_S3_STORE_RULES: S3StoreRules = {
  maxParts: S3_LIMITS.maxParts,
  equalParts: false,
  additionalChecksums: true,
  checksummedPartCopy: false,
};

/** S3's multipart limits with the store's part-count limit. */
export function multipartLimitsOf(rules: Pick<S3StoreRules, 'maxParts'>): MultipartLimits {
  return { ...S3_LIMITS, maxParts: rules.maxParts };
}

/**
 * Why parts of these sizes (in part-number order) break the rules, if they do: more parts than
 * allowed, or, with `equalParts`, a part but the last whose size differs from the first's.
 */
export function partSizesProblem(sizes: readonly number[], rules: Pick<S3StoreRules, 'maxParts' | 'equalParts'>): string | undefined {
  if (sizes.length > rules.maxParts) return `${sizes.length} parts exceed the store's limit of ${rules.maxParts} parts (S3_MAX_PARTS)`;
  if (!rules.equalParts) return undefined;
  const first = sizes[0];
  const odd = sizes.findIndex((size, i) => i < sizes.length - 1 && size !== first);
  if (odd === -1) return undefined;
  return `part ${odd + 1} has ${sizes[odd]} bytes where part 1 has ${first}: the store requires every part but the last to have the same size (S3_EQUAL_PARTS)`;
}
