/**
 * The upload request: what application code asks for, and its validation.
 *
 * Validation lives here, in one place, and runs twice: in the client before a workflow starts (so
 * a typo fails fast, with no workflow at all), and in the worker's first activity (so a request
 * that reached Temporal some other way — the CLI, the Web UI's "start workflow", another SDK — is
 * checked too, before any byte moves). Every message says what was wrong and what is allowed.
 *
 * No secrets belong here: credentials and webhook secrets are worker configuration.
 */
import { z } from 'zod';
import { InvalidUploadRequestError, type RequestProblem } from './errors';
import { DEFAULT_PART_SIZE, partSizeProblem, S3_LIMITS } from './part-plan';
import {
  CHECKSUM_ALGORITHMS,
  expectedCrc,
  FULL_OBJECT_CRC_ALGORITHMS,
  type ChecksumAlgorithm,
  type ExpectedChecksum,
  type FullObjectCrcAlgorithm,
  type SourceDescriptor,
} from './request-types';

export {
  CHECKSUM_ALGORITHMS,
  FULL_OBJECT_CRC_ALGORITHMS,
  describeSource,
  expectedCrc,
  type ChecksumAlgorithm,
  type ExpectedChecksum,
  type FullObjectCrcAlgorithm,
  type S3ObjectSource,
  type SourceDescriptor,
} from './request-types';

const isHttpUrlWithoutCredentials = (u: string) => {
  try {
    const url = new URL(u);
    return (url.protocol === 'http:' || url.protocol === 'https:') && !url.username && !url.password;
  } catch {
    return false;
  }
};

/** What to upload (the source), where to (bucket, key), for whom (tenant, upload id), and how. */
export interface UploadRequest {
  /** The application's id for this upload; the workflow id derives from it. Letters, digits, `.`, `_`, `-`; 1–128. */
  uploadId: string;
  /** Whose quota pays for it. Letters, digits, `.`, `_`, `-`; 1–63. */
  tenant: string;
  source: SourceDescriptor;
  destination: { bucket: string; key: string };
  /** The size the caller expects; the upload fails before any byte moves if the source differs. */
  declaredSize?: number;
  /** A whole-object checksum the caller knows in advance; verified before the object is merged (see {@link ExpectedChecksum}). */
  expectedChecksum?: ExpectedChecksum;
  /** @default 8 MiB (raised automatically when the file would need more than 10,000 parts) */
  partSize?: number;
  /** Parts in flight at once; memory is about partSize × partConcurrency. @default 4 */
  partConcurrency?: number;
  /**
   * Per-part checksum S3 verifies on receipt. Must be the expected checksum's algorithm when that
   * is a CRC. Server-side copies (S3 sources in the worker's own store) carry none.
   * @default 'CRC32C', or the algorithm of a CRC given as `expectedChecksum`
   */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** @default 'application/octet-stream' */
  contentType?: string;
  /** User metadata (`x-amz-meta-*`). */
  metadata?: Record<string, string>;
  /** Receives `upload.completed` / `upload.failed` / `upload.cancelled` events. */
  webhookUrl?: string;
  /** Refuse to replace an existing object (conditional complete with `If-None-Match: *`). @default false */
  failIfExists?: boolean;
  /** Parts uploaded by one activity; bounds the history to a few events per batch. @default 512 */
  partsPerActivity?: number;
  /**
   * How verify proves S3 holds the source: `checksums` compares the part checksums S3 lists (and
   * validated on receipt) with those computed from the source during the upload; `reread` also
   * reads the whole source again and checks every part against it. An `expectedChecksum` implies
   * a re-read. @default 'checksums'
   */
  verify?: 'checksums' | 'reread';
  /**
   * What an upload that does not fit its tenant's quota does: `fail` (compensated at once, failure
   * type `QuotaExceeded`) or `wait` — it holds, holding nothing, and reserves again when the
   * tenant's ledger gives space back (a release) or every minute (a raised quota), until
   * `quotaWaitMs` has passed; then it is compensated with `QuotaWaitExpired`. @default 'fail'
   */
  onQuota?: 'fail' | 'wait';
  /** With `onQuota: 'wait'`: how long to wait for quota, in milliseconds (1 s to 30 days). @default 3600000 (one hour) */
  quotaWaitMs?: number;
}

/** {@link UploadRequest} with every default filled in: what the workflow runs on. */
export type UploadRequestWithDefaults = Required<
  Pick<
    UploadRequest,
    'partSize' | 'partConcurrency' | 'checksumAlgorithm' | 'contentType' | 'failIfExists' | 'partsPerActivity' | 'metadata' | 'verify'
  >
> &
  Omit<
    UploadRequest,
    'partSize' | 'partConcurrency' | 'checksumAlgorithm' | 'contentType' | 'failIfExists' | 'partsPerActivity' | 'metadata' | 'verify'
  >;

/** What an {@link UploadRequest} gets for each option it leaves out. */
export const UPLOAD_DEFAULTS = {
  partSize: DEFAULT_PART_SIZE,
  partConcurrency: 4,
  checksumAlgorithm: 'CRC32C' as ChecksumAlgorithm,
  contentType: 'application/octet-stream',
  failIfExists: false,
  partsPerActivity: 512,
  verify: 'checksums' as 'checksums' | 'reread',
};

/** The most parts in flight we allow; each holds a part in memory. */
export const MAX_PART_CONCURRENCY = 64;
/** Prefix reserved for the saga's own staged objects; uploads may not write under it. */
export const STAGING_PREFIX = '.upload-saga/';
/** The longest an upload may wait for quota (`quotaWaitMs`): 30 days. */
export const MAX_QUOTA_WAIT_MS = 30 * 24 * 3_600_000;
/** User-metadata keys under this prefix are the saga's own (see upload/object-stamp.ts); requests may not set them. */
export const SAGA_METADATA_PREFIX = 'upload-saga-';
/** The metadata key of the saga's stamp on the objects it stores (`x-amz-meta-upload-saga-upload`). */
export const STAMP_KEY = `${SAGA_METADATA_PREFIX}upload`;
/** S3's limit for all user metadata of an object together. */
export const S3_METADATA_LIMIT_BYTES = 2048;
/** What the stamp may take: its key and the longest upload workflow id (`upload:` + tenant 63 + `:` + upload id 128). */
const STAMP_RESERVED_BYTES = STAMP_KEY.length + 'upload:'.length + 63 + 1 + 128;
/** User metadata a request may carry: S3's limit less what the saga's stamp may take. */
export const MAX_METADATA_BYTES = S3_METADATA_LIMIT_BYTES - STAMP_RESERVED_BYTES;
/** Why metadata limits read as they do, for error messages. */
export const METADATA_LIMIT_REASON = `S3's limit of ${S3_METADATA_LIMIT_BYTES} less ${STAMP_RESERVED_BYTES} for the saga's own entry`;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Names of S3 source profiles (keys of UPLOAD_SAGA_S3_SOURCE_PROFILES). */
export const PROFILE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;
const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
/** An unpaired UTF-16 surrogate: a string that has no UTF-8 form (the S3 SDK throws "URI malformed" on it). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Characters XML 1.0 cannot carry: S3 lists keys in XML. */
const NOT_XML_CHARS = /[\ufffe\uffff]/;
/** The longest `/`-separated key segment MinIO stores (each segment is a file or directory name on its disks). */
export const MAX_KEY_SEGMENT_BYTES = 255;

/** Bucket name prefixes and suffixes S3 reserves (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html). */
const RESERVED_BUCKET_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'];
const RESERVED_BUCKET_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'];

/** S3 bucket naming rules (general purpose buckets). */
export function bucketNameProblem(bucket: string): string | undefined {
  if (bucket.length < 3 || bucket.length > 63) return `must be 3–63 characters long, got ${bucket.length}`;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(bucket)) {
    return 'may contain only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit';
  }
  if (bucket.includes('..')) return 'must not contain two adjacent dots';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) return 'must not be formatted as an IP address';
  const prefix = RESERVED_BUCKET_PREFIXES.find((p) => bucket.startsWith(p));
  if (prefix) return `must not start with "${prefix}" (reserved by S3)`;
  const suffix = RESERVED_BUCKET_SUFFIXES.find((p) => bucket.endsWith(p));
  if (suffix) return `must not end with "${suffix}" (reserved by S3)`;
  return undefined;
}

/**
 * Object keys we accept: S3's 1,024-byte UTF-8 limit, valid Unicode without control characters,
 * no `.`/`..` or empty segments, no trailing `/`, segments of at most 255 bytes (what MinIO stores).
 */
export function objectKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'must not be empty';
  if (LONE_SURROGATE.test(key)) return 'must be valid Unicode (it contains an unpaired surrogate, which has no UTF-8 form)';
  if (utf8Length(key) > 1024) return `must be at most 1024 bytes of UTF-8, got ${utf8Length(key)}`;
  if (CONTROL_CHARS.test(key)) return 'must not contain control characters';
  if (NOT_XML_CHARS.test(key)) return 'must not contain U+FFFE or U+FFFF (S3 lists keys in XML, which cannot carry them)';
  if (key.startsWith('/')) return 'must not start with "/"';
  if (key.endsWith('/')) return 'must not end with "/" (that names a folder, not an object)';
  if (key.includes('//')) return 'must not contain empty path segments ("//")';
  if (key.split('/').some((segment) => segment === '.' || segment === '..')) return 'must not contain "." or ".." path segments';
  const long = key.split('/').find((segment) => utf8Length(segment) > MAX_KEY_SEGMENT_BYTES);
  if (long !== undefined)
    return `each "/"-separated segment must be at most ${MAX_KEY_SEGMENT_BYTES} bytes, got one of ${utf8Length(long)} (MinIO stores segments as file names)`;
  if (key.startsWith(STAGING_PREFIX)) return `must not start with "${STAGING_PREFIX}" (reserved for staged parts)`;
  return undefined;
}

const hexOrBase64Sha256 = (value: string) => /^[0-9a-fA-F]{64}$/.test(value) || /^[A-Za-z0-9+/]{43}=$/.test(value);
/** base64 of a 4-byte CRC32/CRC32C (8 characters) or an 8-byte CRC64NVME (12 characters). */
const BASE64_CRC: Record<FullObjectCrcAlgorithm, { pattern: RegExp; what: string }> = {
  CRC32: { pattern: /^[A-Za-z0-9+/]{6}==$/, what: 'base64 of the 4-byte big-endian CRC32, 8 characters such as "3q2+7w=="' },
  CRC32C: { pattern: /^[A-Za-z0-9+/]{6}==$/, what: 'base64 of the 4-byte big-endian CRC32C, 8 characters such as "3q2+7w=="' },
  CRC64NVME: { pattern: /^[A-Za-z0-9+/]{11}=$/, what: 'base64 of the 8-byte big-endian CRC64NVME, 12 characters such as "bA1Os6lBXLg="' },
};
/** S3 version ids: opaque, printable, at most 1024 bytes. */
const VERSION_ID_PATTERN = /^[\x21-\x7e]{1,1024}$/;

const bucketField = z.string({ error: 'is required (a string)' }).superRefine((b, ctx) => {
  const problem = bucketNameProblem(b);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const keyField = z.string({ error: 'is required (a string)' }).superRefine((k, ctx) => {
  const problem = objectKeyProblem(k);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const requestSchema = z
  .object(
    {
      uploadId: z
        .string({ error: 'is required (a string)' })
        .min(1, { message: 'must not be empty', abort: true })
        .max(128, { message: 'must be at most 128 characters', abort: true })
        .regex(ID_PATTERN, 'may contain only letters, digits, ".", "_" and "-", starting with a letter or digit'),
      tenant: z
        .string({ error: 'is required (a string)' })
        .min(1, { message: 'must not be empty', abort: true })
        .max(63, { message: 'must be at most 63 characters', abort: true })
        .regex(ID_PATTERN, 'may contain only letters, digits, ".", "_" and "-", starting with a letter or digit'),
      source: z.discriminatedUnion(
        'type',
        [
          z
            .object({
              type: z.literal('file'),
              path: z
                .string({ error: 'is required (an absolute file path on the worker host)' })
                .refine((p) => p.startsWith('/'), { message: 'must be an absolute path', abort: true })
                .refine((p) => !CONTROL_CHARS.test(p) && !LONE_SURROGATE.test(p), {
                  message: 'must not contain control characters or unpaired surrogates',
                  abort: true,
                })
                .refine((p) => utf8Length(p) <= 4096, 'must be at most 4096 bytes'),
            })
            .strict(),
          z
            .object({
              type: z.literal('url'),
              url: z
                .string({ error: 'is required (an http:// or https:// URL)' })
                .max(2048, 'must be at most 2048 characters')
                .refine(
                  isHttpUrlWithoutCredentials,
                  'must be an absolute http:// or https:// URL without credentials (they would be stored in workflow history)',
                ),
            })
            .strict(),
          z
            .object({
              type: z.literal('s3'),
              bucket: bucketField,
              key: keyField,
              versionId: z
                .string({ error: 'must be a string' })
                .regex(VERSION_ID_PATTERN, 'must be 1–1024 printable ASCII characters without spaces')
                .optional(),
              profile: z
                .string({ error: 'must be a string (the name of a source profile configured on the worker)' })
                .regex(
                  PROFILE_PATTERN,
                  'must be a profile name configured on the worker (letters, digits, "_" and "-", 1–63, starting with a letter or digit); credentials never go in the request',
                )
                .optional(),
            })
            .strict(),
        ],
        { error: 'must be { type: "file", path: "/absolute/path" }, { type: "url", url: "https://…" } or { type: "s3", bucket, key }' },
      ),
      destination: z.object({ bucket: bucketField, key: keyField }, { error: 'is required ({ bucket, key })' }).strict(),
      declaredSize: z
        .number({ error: 'must be a number of bytes' })
        .int('must be a whole number of bytes')
        .min(0, 'must be ≥ 0')
        .max(S3_LIMITS.maxObjectSize, `must be at most ${S3_LIMITS.maxObjectSize} bytes (5 TiB, S3's object limit)`)
        .optional(),
      expectedChecksum: z
        .object(
          {
            algorithm: z.enum(['SHA256', ...FULL_OBJECT_CRC_ALGORITHMS], {
              error: `must be one of SHA256, ${FULL_OBJECT_CRC_ALGORITHMS.join(', ')}`,
            }),
            value: z.string({ error: 'is required (a string)' }),
          },
          { error: 'must be { algorithm, value }' },
        )
        .strict()
        .superRefine(({ algorithm, value }, ctx) => {
          if (algorithm === 'SHA256') {
            if (!hexOrBase64Sha256(value))
              ctx.addIssue({
                code: 'custom',
                path: ['value'],
                message: 'must be a SHA-256 digest: 64 hex characters or 44 base64 characters',
              });
          } else if (!BASE64_CRC[algorithm].pattern.test(value)) {
            ctx.addIssue({ code: 'custom', path: ['value'], message: `must be ${BASE64_CRC[algorithm].what}` });
          }
        })
        .optional(),
      partSize: z
        .number({ error: 'must be a number of bytes' })
        .superRefine((n, ctx) => {
          const problem = partSizeProblem(n);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        })
        .optional(),
      partConcurrency: z
        .number({ error: 'must be a number' })
        .int('must be a whole number')
        .min(1, 'must be at least 1')
        .max(MAX_PART_CONCURRENCY, `must be at most ${MAX_PART_CONCURRENCY}`)
        .optional(),
      checksumAlgorithm: z.enum(CHECKSUM_ALGORITHMS, { error: `must be one of ${CHECKSUM_ALGORITHMS.join(', ')}` }).optional(),
      contentType: z
        .string({ error: 'must be a string (a MIME type such as "video/mp4")' })
        .regex(/^[\w.+-]+\/[\w.+-]+(\s*;[\x20-\x7e]*)?$/, 'must be a MIME type such as "video/mp4" (parameters in printable ASCII)')
        .max(255, 'must be at most 255 characters')
        .optional(),
      metadata: z
        .record(
          z.string().regex(/^[A-Za-z0-9-]+$/, 'metadata keys may contain only letters, digits and "-"'),
          z
            .string({ error: 'metadata values must be strings' })
            .refine((v) => !CONTROL_CHARS.test(v) && /^[\x20-\x7e]*$/.test(v), 'metadata values must be printable ASCII'),
          {
            error: (issue) =>
              issue.code === 'invalid_key'
                ? 'metadata keys may contain only letters, digits and "-"'
                : issue.code === 'invalid_type'
                  ? 'must be an object of string keys and values'
                  : undefined,
          },
        )
        .refine(
          (m) => Object.entries(m).reduce((n, [k, v]) => n + utf8Length(k) + utf8Length(v), 0) <= MAX_METADATA_BYTES,
          `must total at most ${MAX_METADATA_BYTES} bytes (${METADATA_LIMIT_REASON})`,
        )
        .refine(
          (m) => !Object.keys(m).some((k) => k.toLowerCase().startsWith(SAGA_METADATA_PREFIX)),
          `metadata keys starting with "${SAGA_METADATA_PREFIX}" are reserved for the saga's own entries`,
        )
        .refine(
          (m) => new Set(Object.keys(m).map((k) => k.toLowerCase())).size === Object.keys(m).length,
          'metadata keys must differ in more than letter case (S3 stores them lower-cased)',
        )
        .optional(),
      webhookUrl: z
        .string({ error: 'must be a string (an http:// or https:// URL)' })
        .max(2048, { message: 'must be at most 2048 characters', abort: true })
        .refine(isHttpUrlWithoutCredentials, 'must be an absolute http:// or https:// URL without credentials')
        .optional(),
      failIfExists: z.boolean({ error: 'must be true or false' }).optional(),
      partsPerActivity: z
        .number({ error: 'must be a number' })
        .int('must be a whole number')
        .min(1, 'must be at least 1')
        .max(10_000, 'must be at most 10000')
        .optional(),
      verify: z.enum(['checksums', 'reread'], { error: 'must be "checksums" or "reread"' }).optional(),
      onQuota: z.enum(['fail', 'wait'], { error: 'must be "fail" or "wait"' }).optional(),
      quotaWaitMs: z
        .number({ error: 'must be a number of milliseconds' })
        .int('must be a whole number of milliseconds')
        .min(1_000, 'must be at least 1000 (one second)')
        .max(MAX_QUOTA_WAIT_MS, `must be at most ${MAX_QUOTA_WAIT_MS} (30 days)`)
        .optional(),
    },
    { error: 'must be an object: { uploadId, tenant, source, destination, … }' },
  )
  .strict()
  .superRefine((request, ctx) => {
    if (request.quotaWaitMs !== undefined && request.onQuota !== 'wait') {
      ctx.addIssue({ code: 'custom', path: ['quotaWaitMs'], message: 'applies only with onQuota "wait"' });
    }
    // S3 builds a full-object CRC only from part checksums of the same CRC.
    const crc =
      request.expectedChecksum && request.expectedChecksum.algorithm !== 'SHA256' ? request.expectedChecksum.algorithm : undefined;
    if (crc && request.checksumAlgorithm !== undefined && request.checksumAlgorithm !== crc) {
      ctx.addIssue({
        code: 'custom',
        path: ['checksumAlgorithm'],
        message: `must be "${crc}" (or left out) when expectedChecksum is a ${crc}: S3 computes a full-object ${crc} only from ${crc} part checksums`,
      });
    }
  });

/** Problems with a request, or an empty list. Never throws, whatever `input` is. */
export function findRequestProblems(input: unknown): RequestProblem[] {
  const parsed = requestSchema.safeParse(input);
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => ({
    field: issue.path.length ? issue.path.join('.') : 'request',
    message: issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.join(', ')}` : issue.message,
  }));
}

/**
 * Validates a request and fills in the defaults.
 * @throws InvalidUploadRequestError listing every problem found.
 */
export function normalizeUploadRequest(input: unknown): UploadRequestWithDefaults {
  const problems = findRequestProblems(input);
  if (problems.length) throw new InvalidUploadRequestError(problems);
  const request = input as UploadRequest;
  return {
    ...request,
    // -0 passes as ≥ 0: it is 0 bytes, which is what the workflow input records (JSON writes 0).
    ...(Object.is(request.declaredSize, -0) ? { declaredSize: 0 } : {}),
    partSize: request.partSize ?? UPLOAD_DEFAULTS.partSize,
    partConcurrency: request.partConcurrency ?? UPLOAD_DEFAULTS.partConcurrency,
    checksumAlgorithm: request.checksumAlgorithm ?? expectedCrc(request.expectedChecksum)?.algorithm ?? UPLOAD_DEFAULTS.checksumAlgorithm,
    contentType: request.contentType ?? UPLOAD_DEFAULTS.contentType,
    failIfExists: request.failIfExists ?? UPLOAD_DEFAULTS.failIfExists,
    partsPerActivity: request.partsPerActivity ?? UPLOAD_DEFAULTS.partsPerActivity,
    metadata: request.metadata ?? {},
    verify: request.verify ?? UPLOAD_DEFAULTS.verify,
  };
}

/**
 * Problems with a tenant and/or upload id given on their own (to find, cancel or list uploads),
 * by the same rules as in a request; an empty list when fine. Never throws.
 */
export function findUploadIdProblems(ids: { tenant?: unknown; uploadId?: unknown }): RequestProblem[] {
  const problems: RequestProblem[] = [];
  const check = (field: 'tenant' | 'uploadId', value: unknown, max: number) => {
    if (value === undefined) return;
    if (typeof value !== 'string' || value.length === 0 || value.length > max || !ID_PATTERN.test(value)) {
      problems.push({ field, message: `must be 1–${max} letters, digits, ".", "_" or "-", starting with a letter or digit` });
    }
  };
  check('tenant', ids.tenant, 63);
  check('uploadId', ids.uploadId, 128);
  return problems;
}

/** The workflow id of an upload: readable in the Web UI, and the same for the same upload. */
export function uploadWorkflowId(tenant: string, uploadId: string): string {
  return `upload:${tenant}:${uploadId}`;
}

/** The tenant and upload id named by an {@link uploadWorkflowId}; `undefined` for any other id. */
export function parseUploadWorkflowId(workflowId: string): { tenant: string; uploadId: string } | undefined {
  const match = /^upload:([^:]+):(.+)$/.exec(workflowId);
  return match ? { tenant: match[1]!, uploadId: match[2]! } : undefined;
}
