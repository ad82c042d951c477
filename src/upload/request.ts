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

/** Checksum algorithms S3 accepts per part (`x-amz-checksum-*`). */
export const CHECKSUM_ALGORITHMS = ['CRC32', 'CRC32C', 'SHA1', 'SHA256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

/**
 * Where the bytes come from; each kind has a reader on the worker (see activities/sources/).
 * - `file`: a path on the worker host, under the worker's allowed roots.
 * - `url`: an http(s) URL the worker downloads (ranged GETs when the server supports them).
 */
export type SourceDescriptor = { type: 'file'; path: string } | { type: 'url'; url: string };

/** One line for summaries and messages; a URL loses its query string (it may carry a token). */
export function describeSource(source: SourceDescriptor): string {
  if (source.type === 'file') return source.path;
  try {
    const url = new URL(source.url);
    return `${url.origin}${url.pathname}`;
  } catch {
    return 'an invalid URL';
  }
}

const isHttpUrlWithoutCredentials = (u: string) => {
  try {
    const url = new URL(u);
    return (url.protocol === 'http:' || url.protocol === 'https:') && !url.username && !url.password;
  } catch {
    return false;
  }
};

export interface UploadRequest {
  /** The application's id for this upload; the workflow id derives from it. Letters, digits, `.`, `_`, `-`; 1–128. */
  uploadId: string;
  /** Whose quota pays for it. Letters, digits, `.`, `_`, `-`; 1–63. */
  tenant: string;
  source: SourceDescriptor;
  destination: { bucket: string; key: string };
  /** The size the caller expects; the upload fails before any byte moves if the source differs. */
  declaredSize?: number;
  /** A whole-object checksum the caller knows in advance; verified before the object is merged. */
  expectedChecksum?: { algorithm: 'SHA256'; /** hex or base64 */ value: string };
  /** @default 8 MiB (raised automatically when the file would need more than 10,000 parts) */
  partSize?: number;
  /** Parts in flight at once; memory is about partSize × partConcurrency. @default 4 */
  partConcurrency?: number;
  /** Per-part checksum S3 verifies on receipt. @default 'CRC32C' */
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
}

/** {@link UploadRequest} with every default filled in: what the workflow runs on. */
export type UploadRequestWithDefaults = Required<
  Pick<UploadRequest, 'partSize' | 'partConcurrency' | 'checksumAlgorithm' | 'contentType' | 'failIfExists' | 'partsPerActivity' | 'metadata' | 'verify'>
> &
  Omit<UploadRequest, 'partSize' | 'partConcurrency' | 'checksumAlgorithm' | 'contentType' | 'failIfExists' | 'partsPerActivity' | 'metadata' | 'verify'>;

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
/** S3 limit for all user metadata together. */
export const MAX_METADATA_BYTES = 2048;

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');
 
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** S3 bucket naming rules (general purpose buckets). */
export function bucketNameProblem(bucket: string): string | undefined {
  if (bucket.length < 3 || bucket.length > 63) return `must be 3–63 characters long, got ${bucket.length}`;
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(bucket)) {
    return 'may contain only lowercase letters, digits, dots and hyphens, and must start and end with a letter or digit';
  }
  if (bucket.includes('..')) return 'must not contain two adjacent dots';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) return 'must not be formatted as an IP address';
  return undefined;
}

/** Object keys we accept: S3's 1,024-byte UTF-8 limit, no control characters, no `.`/`..` segments. */
export function objectKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'must not be empty';
  if (utf8Length(key) > 1024) return `must be at most 1024 bytes of UTF-8, got ${utf8Length(key)}`;
  if (CONTROL_CHARS.test(key)) return 'must not contain control characters';
  if (key.startsWith('/')) return 'must not start with "/"';
  if (key.split('/').some((segment) => segment === '.' || segment === '..')) return 'must not contain "." or ".." path segments';
  if (key.startsWith(STAGING_PREFIX)) return `must not start with "${STAGING_PREFIX}" (reserved for staged parts)`;
  return undefined;
}

const hexOrBase64Sha256 = (value: string) => /^[0-9a-fA-F]{64}$/.test(value) || /^[A-Za-z0-9+/]{43}=$/.test(value);

const requestSchema = z
  .object({
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
        z.object({
          type: z.literal('file'),
          path: z.string({ error: 'is required (an absolute file path on the worker host)' }).refine((p) => p.startsWith('/'), 'must be an absolute path'),
        }),
        z.object({
          type: z.literal('url'),
          url: z
            .string({ error: 'is required (an http:// or https:// URL)' })
            .max(2048, 'must be at most 2048 characters')
            .refine(isHttpUrlWithoutCredentials, 'must be an absolute http:// or https:// URL without credentials (they would be stored in workflow history)'),
        }),
      ],
      { error: 'must be { type: "file", path: "/absolute/path" } or { type: "url", url: "https://…" }' },
    ),
    destination: z.object(
      {
        bucket: z.string({ error: 'is required (a string)' }).superRefine((b, ctx) => {
          const problem = bucketNameProblem(b);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
        key: z.string({ error: 'is required (a string)' }).superRefine((k, ctx) => {
          const problem = objectKeyProblem(k);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      },
      { error: 'is required ({ bucket, key })' },
    ),
    declaredSize: z
      .number({ error: 'must be a number of bytes' })
      .int('must be a whole number of bytes')
      .min(0, 'must be ≥ 0')
      .max(S3_LIMITS.maxObjectSize, `must be at most ${S3_LIMITS.maxObjectSize} bytes (5 TiB, S3's object limit)`)
      .optional(),
    expectedChecksum: z
      .object({
        algorithm: z.literal('SHA256', { error: 'must be "SHA256"' }),
        value: z.string().refine(hexOrBase64Sha256, 'must be a SHA-256 digest: 64 hex characters or 44 base64 characters'),
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
      .string()
      .regex(/^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/, 'must be a MIME type such as "video/mp4"')
      .max(255, 'must be at most 255 characters')
      .optional(),
    metadata: z
      .record(
        z.string().regex(/^[A-Za-z0-9-]+$/, 'metadata keys may contain only letters, digits and "-"'),
        z.string().refine((v) => !CONTROL_CHARS.test(v) && /^[\x20-\x7e]*$/.test(v), 'metadata values must be printable ASCII'),
      )
      .refine(
        (m) => Object.entries(m).reduce((n, [k, v]) => n + utf8Length(k) + utf8Length(v), 0) <= MAX_METADATA_BYTES,
        `must total at most ${MAX_METADATA_BYTES} bytes (S3's limit for user metadata)`,
      )
      .optional(),
    webhookUrl: z.string().refine(isHttpUrlWithoutCredentials, 'must be an absolute http:// or https:// URL without credentials').optional(),
    failIfExists: z.boolean({ error: 'must be true or false' }).optional(),
    partsPerActivity: z.number().int('must be a whole number').min(1, 'must be at least 1').max(10_000, 'must be at most 10000').optional(),
    verify: z.enum(['checksums', 'reread'], { error: 'must be "checksums" or "reread"' }).optional(),
  })
  .strict();

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
    partSize: request.partSize ?? UPLOAD_DEFAULTS.partSize,
    partConcurrency: request.partConcurrency ?? UPLOAD_DEFAULTS.partConcurrency,
    checksumAlgorithm: request.checksumAlgorithm ?? UPLOAD_DEFAULTS.checksumAlgorithm,
    contentType: request.contentType ?? UPLOAD_DEFAULTS.contentType,
    failIfExists: request.failIfExists ?? UPLOAD_DEFAULTS.failIfExists,
    partsPerActivity: request.partsPerActivity ?? UPLOAD_DEFAULTS.partsPerActivity,
    metadata: request.metadata ?? {},
    verify: request.verify ?? UPLOAD_DEFAULTS.verify,
  };
}

/** The workflow id of an upload: readable in the Web UI, and the same for the same upload. */
export function uploadWorkflowId(tenant: string, uploadId: string): string {
  return `upload:${tenant}:${uploadId}`;
}
