/**
 * Configuration of the HTTP gateway, from the environment, validated once at start.
 *
 * Why it is built this way: the gateway is configured like the worker (src/config.ts reads the
 * Temporal and S3 variables both share; this module reads only the gateway's own, all named
 * `UPLOAD_SAGA_GATEWAY_*` and listed in {@link GATEWAY_CONFIG_VARIABLES}, which src/config.ts
 * includes in CONFIG_VARIABLES so the README table is checked against them). Bearer tokens are
 * never configured in clear: the environment holds their SHA-256, so a leaked environment dump
 * does not leak a credential. A bad value stops the gateway at start with every problem listed.
 */
import { DEFAULT_PAUSE_EXPIRY, MAX_PAUSE_LIMIT_MS, PAUSE_EXPIRY_VALUES, type PauseExpiry } from '../upload/pause';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ConfigError, envFlag, parseByteSize } from '../config';
import { MiB, S3_LIMITS } from '../upload/part-plan';
import { bucketNameProblem } from '../upload/request';

export { GATEWAY_CONFIG_VARIABLES } from './config-variables';

/** One tenant's limits and settings. */
export interface TenantSettings {
  /** Largest upload in bytes (413 above). */
  maxUploadBytes: number;
  /** Requests per second (429 above). */
  requestsPerSecond: number;
  /** Request bodies (tus PATCH, creation-with-upload POST) the tenant may send at once, across replicas (429 above). */
  maxBodyStreams: number;
  /** Receives `upload.completed` / `upload.failed` / `upload.cancelled`. */
  webhookUrl?: string;
}

/** JWS algorithms an identity provider's tokens may use: asymmetric only (an HMAC "key" from a JWKS would be public). */
export const JWT_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
/** One of {@link JWT_ALGORITHMS}. */
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** JWT bearer tokens of an identity provider, verified against its JWKS (see jwt-auth.ts). */
export interface JwtAuthSettings {
  /** Where the provider publishes its keys; fetched again when a token names an unknown `kid`. */
  jwksUrl: string;
  /** The `iss` every token must carry. */
  issuer: string;
  /** Accepted `aud` values: a token must name at least one. */
  audience: string[];
  /** The claim naming the tenant (a top-level claim; its name may contain dots or be a URL). @default 'tenant' */
  tenantClaim: string;
  /** @default ['RS256', 'ES256', 'EdDSA'] */
  algorithms: JwtAlgorithm[];
  /** Tenants the gateway serves by JWT; others get 403. @default undefined: any well-formed tenant name */
  tenants?: string[];
  /** Tolerated clock difference for `exp` and `nbf`, in seconds. @default 30 */
  clockToleranceSeconds: number;
  /**
   * Shortest time between two fetches of the JWKS, in ms: a token naming an unknown `kid` makes the
   * gateway fetch the set again (key rotation) at most this often. Not an environment variable.
   * @default 30000
   */
  jwksCooldownMs?: number;
}

/** The gateway's configuration, defaults filled in (see {@link loadGatewayConfig}). */
export interface GatewayConfig {
  /** @default '127.0.0.1' */
  host: string;
  /** @default 8080 */
  port: number;
  /** Tenant by SHA-256 (hex) of its bearer token. @default empty: no tenant (every request 401) */
  tokenHashes: Map<string, string>;
  /** JWT bearer tokens of an identity provider. @default undefined: none accepted */
  jwt?: JwtAuthSettings;
  /**
   * The secret upload tokens are signed with (`mintUploadToken` (upload-token.ts)), at least 32 characters.
   * @default undefined: upload tokens are refused (401)
   */
  uploadTokenSecret?: string;
  /** @default 'uploads' */
  bucket: string;
  /** Limits of tenants without an entry of their own. @default { maxUploadBytes: 5 GiB, requestsPerSecond: 50, maxBodyStreams: 8 } */
  defaults: TenantSettings;
  /** Per-tenant overrides, merged over {@link GatewayConfig.defaults} by {@link tenantSettings}. @default {} */
  tenants: Record<string, Partial<TenantSettings>>;
  /** Lifetime of an unfinished upload, in milliseconds. @default 24 h */
  uploadExpiryMs: number;
  /**
   * Whether a paused upload's expiry clock runs on (`runs`: it expires while paused) or stops
   * (`stops`: the paused time is added to its expiry at resume) when the pause request does not
   * say: for pauses through the gateway's route, and recorded in each upload at its creation for
   * pauses sent elsewhere (the CLI, `UploadHandle.pause`).
   * @default 'runs'
   */
  pauseExpiry?: PauseExpiry;
  /**
   * The longest a pause with the expiry clock stopped lasts, in milliseconds: past it the upload
   * expires and is compensated like one whose expiry clock ran out. Recorded in each upload at its
   * creation, so pauses sent elsewhere (the CLI, `UploadHandle.pause`) are bounded too.
   * @default DEFAULT_MAX_PAUSE_MS (7 d)
   */
  maxPauseMs?: number;
  /** Size of every tus part but the last, in bytes. @default 5 MiB */
  partSize: number;
  /**
   * Parts one tus PATCH sends to S3 at once; a PATCH holds at most (tusPartsInFlight + 1) ×
   * (partSize + 5 MiB) of body in memory (part buffers have room for a folded remainder).
   * @default DEFAULT_TUS_PARTS_IN_FLIGHT (4)
   */
  tusPartsInFlight: number;
  /**
   * Cut every tus part but the last to exactly `partSize`, staging a PATCH's remainder for the next
   * one, for stores that require equal parts (Cloudflare R2, with the worker's S3_EQUAL_PARTS).
   * Without it a PATCH folds a remainder under 5 MiB into its last part (runs under the patch
   * `gateway-tail-parts`).
   * @default false
   */
  tusEqualParts: boolean;
  /**
   * Answer a tus creation once the saga reserved space and opened the multipart upload: a tenant
   * over its quota is refused at the POST (413), and the multipart upload exists in S3 when the 201
   * answers. Without it the POST answers once Temporal started the saga (tens of ms
   * sooner), and a quota refusal answers the first PATCH or HEAD.
   * @default false
   */
  tusCreateWhenOpen: boolean;
  /** Request bodies one replica receives at once, all tenants together (503 above); see body-streams.ts. @default 16 */
  maxBodyStreams: number;
  /** A request body that sends nothing for this long is ended like a dropped connection, in ms. @default 30 s */
  bodyIdleTimeoutMs: number;
  /** @default undefined: locks and rate limits are per process (one replica) */
  redisUrl?: string;
  /** The S3 endpoint browsers reach (presigned URLs are signed for it). @default the worker's S3_ENDPOINT */
  s3PublicEndpoint?: string;
}

/** SHA-256 hex of a bearer token: what `UPLOAD_SAGA_GATEWAY_TOKENS` holds. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "30m" → 1800000. Units ms, s, m, h, d; a bare number is milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!match) return undefined;
  const value = Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!);
  return Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

/** What a tenant name may be: letters, digits, ".", "_", "-", 1–63 characters, starting with a letter or digit. */
export const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Splits "a=1,b=2" into pairs; reports entries that are not name=value with a valid tenant name. */
function tenantPairs(variable: string, text: string | undefined, problems: string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (const entry of (text ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const at = entry.indexOf('=');
    const tenant = at > 0 ? entry.slice(0, at).trim() : '';
    const value = at > 0 ? entry.slice(at + 1).trim() : '';
    if (!TENANT_PATTERN.test(tenant) || !value) {
      problems.push(`${variable}: "${entry}" is not tenant=value (tenant: letters, digits, ".", "_", "-", 1–63 characters)`);
      continue;
    }
    pairs.push([tenant, value]);
  }
  return pairs;
}

/** Parts one tus PATCH sends to S3 at once unless configured otherwise (chosen from the bench, see docs/explanation/performance.md). */
export const DEFAULT_TUS_PARTS_IN_FLIGHT = 4;
/** The most parts one tus PATCH may send at once: memory per PATCH grows with it. */
export const MAX_TUS_PARTS_IN_FLIGHT = 16;
/** What a cap on request bodies received at once may be. */
const BODY_STREAM_COUNT = 'must be a whole number of request bodies from 1 to 100000';
const bodyStreamCount = (fallback: number) =>
  z.coerce
    .number({ error: BODY_STREAM_COUNT })
    .int({ error: BODY_STREAM_COUNT })
    .min(1, { error: BODY_STREAM_COUNT })
    .max(100_000, { error: BODY_STREAM_COUNT })
    .default(fallback);

const envSchema = z.object({
  UPLOAD_SAGA_GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  UPLOAD_SAGA_GATEWAY_PORT: z.coerce.number({ error: 'must be a port number' }).int().min(0).max(65535).default(8080),
  UPLOAD_SAGA_GATEWAY_TOKENS: z.string().optional(),
  UPLOAD_SAGA_GATEWAY_BUCKET: z.string().default('uploads'),
  UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZE: z.string().default('5GiB'),
  UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZES: z.string().optional(),
  UPLOAD_SAGA_GATEWAY_RATE_LIMIT: z.coerce
    .number({ error: 'must be a number of requests per second' })
    .int()
    .min(1)
    .max(1_000_000)
    .default(50),
  UPLOAD_SAGA_GATEWAY_RATE_LIMITS: z.string().optional(),
  UPLOAD_SAGA_GATEWAY_BODY_STREAMS: bodyStreamCount(16),
  UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS: bodyStreamCount(8),
  UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS_OVERRIDES: z.string().optional(),
  UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT: z.string().default('30s'),
  UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY: z.string().default('24h'),
  UPLOAD_SAGA_GATEWAY_PAUSE_EXPIRY: z
    .enum(PAUSE_EXPIRY_VALUES as [PauseExpiry, ...PauseExpiry[]], {
      error: 'must be "runs" (a paused upload still expires) or "stops" (the paused time is added to its expiry)',
    })
    .default(DEFAULT_PAUSE_EXPIRY),
  UPLOAD_SAGA_GATEWAY_MAX_PAUSE: z.string().default('7d'),
  UPLOAD_SAGA_GATEWAY_PART_SIZE: z.string().default('5MiB'),
  UPLOAD_SAGA_GATEWAY_TUS_EQUAL_PARTS: envFlag.default(false),
  UPLOAD_SAGA_GATEWAY_TUS_CREATE_WHEN_OPEN: envFlag.default(false),
  UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT: z.coerce
    .number({ error: `must be a whole number of parts from 1 to ${MAX_TUS_PARTS_IN_FLIGHT}` })
    .int({ error: `must be a whole number of parts from 1 to ${MAX_TUS_PARTS_IN_FLIGHT}` })
    .min(1, { error: `must be a whole number of parts from 1 to ${MAX_TUS_PARTS_IN_FLIGHT}` })
    .max(MAX_TUS_PARTS_IN_FLIGHT, { error: `must be a whole number of parts from 1 to ${MAX_TUS_PARTS_IN_FLIGHT}` })
    .default(DEFAULT_TUS_PARTS_IN_FLIGHT),
  UPLOAD_SAGA_GATEWAY_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  UPLOAD_SAGA_GATEWAY_WEBHOOKS: z.string().optional(),
  UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL: z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' }).optional(),
  UPLOAD_SAGA_GATEWAY_JWT_ISSUER: z.string().optional(),
  UPLOAD_SAGA_GATEWAY_JWT_AUDIENCE: z.string().optional(),
  UPLOAD_SAGA_GATEWAY_JWT_TENANT_CLAIM: z.string().default('tenant'),
  UPLOAD_SAGA_GATEWAY_JWT_ALGORITHMS: z.string().default('RS256,ES256,EdDSA'),
  UPLOAD_SAGA_GATEWAY_JWT_TENANTS: z.string().optional(),
  UPLOAD_SAGA_GATEWAY_JWT_CLOCK_TOLERANCE: z.coerce
    .number({ error: 'must be a whole number of seconds from 0 to 300' })
    .int({ error: 'must be a whole number of seconds from 0 to 300' })
    .min(0, { error: 'must be a whole number of seconds from 0 to 300' })
    .max(300, { error: 'must be a whole number of seconds from 0 to 300' })
    .default(30),
  UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET: z
    .string()
    .min(32, { error: 'must be at least 32 characters (e.g. openssl rand -base64 32)' })
    .optional(),
});

/** Comma-separated values, trimmed, empty ones dropped. */
const list = (text: string | undefined) =>
  (text ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/** The JWT settings, or undefined when no JWKS URL is set; problems for incomplete or invalid ones. */
function jwtSettings(e: z.infer<typeof envSchema>, problems: string[]): JwtAuthSettings | undefined {
  const issuer = e.UPLOAD_SAGA_GATEWAY_JWT_ISSUER?.trim();
  const audience = list(e.UPLOAD_SAGA_GATEWAY_JWT_AUDIENCE);
  if (!e.UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL) {
    if (issuer || audience.length)
      problems.push(
        'UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL: must be set when UPLOAD_SAGA_GATEWAY_JWT_ISSUER or _AUDIENCE is (tokens are verified against it)',
      );
    return undefined;
  }
  if (!issuer)
    problems.push('UPLOAD_SAGA_GATEWAY_JWT_ISSUER: must be set with UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL (the iss every token must carry)');
  if (!audience.length)
    problems.push(
      'UPLOAD_SAGA_GATEWAY_JWT_AUDIENCE: must be set with UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL (the aud tokens for this gateway carry)',
    );
  const algorithms: JwtAlgorithm[] = [];
  for (const name of list(e.UPLOAD_SAGA_GATEWAY_JWT_ALGORITHMS)) {
    if ((JWT_ALGORITHMS as readonly string[]).includes(name)) algorithms.push(name as JwtAlgorithm);
    else
      problems.push(
        `UPLOAD_SAGA_GATEWAY_JWT_ALGORITHMS: "${name}" is not one of ${JWT_ALGORITHMS.join(', ')} (asymmetric algorithms only)`,
      );
  }
  if (!algorithms.length && !list(e.UPLOAD_SAGA_GATEWAY_JWT_ALGORITHMS).length)
    problems.push(`UPLOAD_SAGA_GATEWAY_JWT_ALGORITHMS: must name at least one of ${JWT_ALGORITHMS.join(', ')}`);
  const tenantClaim = e.UPLOAD_SAGA_GATEWAY_JWT_TENANT_CLAIM.trim();
  if (!tenantClaim) problems.push('UPLOAD_SAGA_GATEWAY_JWT_TENANT_CLAIM: must name a claim');
  const tenants = e.UPLOAD_SAGA_GATEWAY_JWT_TENANTS === undefined ? undefined : list(e.UPLOAD_SAGA_GATEWAY_JWT_TENANTS);
  for (const tenant of tenants ?? [])
    if (!TENANT_PATTERN.test(tenant))
      problems.push(`UPLOAD_SAGA_GATEWAY_JWT_TENANTS: "${tenant}" is not a tenant name (letters, digits, ".", "_", "-", 1–63 characters)`);
  return {
    jwksUrl: e.UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL,
    issuer: issuer ?? '',
    audience,
    tenantClaim,
    algorithms,
    ...(tenants ? { tenants } : {}),
    clockToleranceSeconds: e.UPLOAD_SAGA_GATEWAY_JWT_CLOCK_TOLERANCE,
  };
}

/** The largest tus part we accept: a PATCH holds about one part in memory. */
export const MAX_GATEWAY_PART_SIZE = 64 * MiB;

/**
 * Reads and validates the gateway's variables.
 * @throws ConfigError listing every problem.
 */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== '')));
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const e = parsed.data;
  const problems: string[] = [];

  const size = (variable: string, text: string): number => {
    const bytes = parseByteSize(text);
    if (bytes === undefined || bytes < 0) problems.push(`${variable}: "${text}" is not a size; use e.g. 5GiB, 100MB or a number of bytes`);
    else if (bytes > S3_LIMITS.maxObjectSize) problems.push(`${variable}: ${text} exceeds S3's object limit of 5 TiB`);
    return bytes ?? 0;
  };

  const bucketProblem = bucketNameProblem(e.UPLOAD_SAGA_GATEWAY_BUCKET);
  if (bucketProblem) problems.push(`UPLOAD_SAGA_GATEWAY_BUCKET: ${bucketProblem}`);

  const tokenHashes = new Map<string, string>();
  for (const [tenant, hash] of tenantPairs('UPLOAD_SAGA_GATEWAY_TOKENS', e.UPLOAD_SAGA_GATEWAY_TOKENS, problems)) {
    if (!/^[0-9a-fA-F]{64}$/.test(hash)) {
      problems.push(
        `UPLOAD_SAGA_GATEWAY_TOKENS: the entry of tenant "${tenant}" is not a SHA-256 in hex (64 characters); hash the token, never configure it in clear`,
      );
    } else {
      tokenHashes.set(hash.toLowerCase(), tenant);
    }
  }

  const tenants: Record<string, Partial<TenantSettings>> = {};
  const tenant = (name: string) => (tenants[name] ??= {});
  for (const [name, text] of tenantPairs('UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZES', e.UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZES, problems)) {
    tenant(name).maxUploadBytes = size(`UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZES (${name})`, text);
  }
  for (const [name, text] of tenantPairs('UPLOAD_SAGA_GATEWAY_RATE_LIMITS', e.UPLOAD_SAGA_GATEWAY_RATE_LIMITS, problems)) {
    const rate = Number(text);
    if (!Number.isInteger(rate) || rate < 1)
      problems.push(`UPLOAD_SAGA_GATEWAY_RATE_LIMITS: "${name}=${text}" must be a whole number of requests per second ≥ 1`);
    else tenant(name).requestsPerSecond = rate;
  }
  for (const [name, text] of tenantPairs(
    'UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS_OVERRIDES',
    e.UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS_OVERRIDES,
    problems,
  )) {
    const streams = Number(text);
    if (!Number.isInteger(streams) || streams < 1 || streams > 100_000)
      problems.push(`UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS_OVERRIDES: "${name}=${text}" ${BODY_STREAM_COUNT}`);
    else tenant(name).maxBodyStreams = streams;
  }
  for (const [name, url] of tenantPairs('UPLOAD_SAGA_GATEWAY_WEBHOOKS', e.UPLOAD_SAGA_GATEWAY_WEBHOOKS, problems)) {
    let ok = false;
    try {
      const parsedUrl = new URL(url);
      ok = (parsedUrl.protocol === 'http:' || parsedUrl.protocol === 'https:') && !parsedUrl.username && !parsedUrl.password;
    } catch {
      ok = false;
    }
    if (!ok)
      problems.push(
        `UPLOAD_SAGA_GATEWAY_WEBHOOKS: the URL of tenant "${name}" must be an absolute http:// or https:// URL without credentials`,
      );
    else tenant(name).webhookUrl = url;
  }

  const uploadExpiryMs = parseDuration(e.UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY);
  if (uploadExpiryMs === undefined)
    problems.push(`UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY: "${e.UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY}" is not a duration; use e.g. 30m, 24h or 7d`);
  const bodyIdleTimeoutMs = parseDuration(e.UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT);
  if (bodyIdleTimeoutMs === undefined || bodyIdleTimeoutMs < 1000 || bodyIdleTimeoutMs > 3_600_000)
    problems.push(
      `UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT: "${e.UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT}" is not a duration from 1s to 1h; use e.g. 30s or 2m`,
    );
  const maxPauseMs = parseDuration(e.UPLOAD_SAGA_GATEWAY_MAX_PAUSE);
  if (maxPauseMs === undefined || maxPauseMs < 1000 || maxPauseMs > MAX_PAUSE_LIMIT_MS)
    problems.push(
      `UPLOAD_SAGA_GATEWAY_MAX_PAUSE: "${e.UPLOAD_SAGA_GATEWAY_MAX_PAUSE}" is not a duration from 1s to 365d; use e.g. 12h or 7d`,
    );
  const partSize = size('UPLOAD_SAGA_GATEWAY_PART_SIZE', e.UPLOAD_SAGA_GATEWAY_PART_SIZE);
  if (partSize && (partSize < S3_LIMITS.minPartSize || partSize > MAX_GATEWAY_PART_SIZE)) {
    problems.push(
      `UPLOAD_SAGA_GATEWAY_PART_SIZE: must be 5 MiB–64 MiB (S3's minimum part size; each PATCH holds up to parts in flight + 1 parts in memory), got ${e.UPLOAD_SAGA_GATEWAY_PART_SIZE}`,
    );
  }
  const maxUploadBytes = size('UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZE', e.UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZE);
  const jwt = jwtSettings(e, problems);
  if (problems.length) throw new ConfigError(problems);

  return {
    host: e.UPLOAD_SAGA_GATEWAY_HOST,
    port: e.UPLOAD_SAGA_GATEWAY_PORT,
    tokenHashes,
    ...(jwt ? { jwt } : {}),
    ...(e.UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET ? { uploadTokenSecret: e.UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET } : {}),
    bucket: e.UPLOAD_SAGA_GATEWAY_BUCKET,
    defaults: {
      maxUploadBytes,
      requestsPerSecond: e.UPLOAD_SAGA_GATEWAY_RATE_LIMIT,
      maxBodyStreams: e.UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS,
    },
    tenants,
    uploadExpiryMs: uploadExpiryMs!,
    pauseExpiry: e.UPLOAD_SAGA_GATEWAY_PAUSE_EXPIRY,
    maxPauseMs: maxPauseMs!,
    partSize,
    tusPartsInFlight: e.UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT,
    tusEqualParts: e.UPLOAD_SAGA_GATEWAY_TUS_EQUAL_PARTS,
    tusCreateWhenOpen: e.UPLOAD_SAGA_GATEWAY_TUS_CREATE_WHEN_OPEN,
    maxBodyStreams: e.UPLOAD_SAGA_GATEWAY_BODY_STREAMS,
    bodyIdleTimeoutMs: bodyIdleTimeoutMs!,
    ...(e.UPLOAD_SAGA_GATEWAY_REDIS_URL ? { redisUrl: e.UPLOAD_SAGA_GATEWAY_REDIS_URL } : {}),
    ...(e.UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT ? { s3PublicEndpoint: e.UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT.replace(/\/+$/, '') } : {}),
  };
}

/** The settings of `tenant`: its overrides over the defaults. */
export function tenantSettings(config: Pick<GatewayConfig, 'defaults' | 'tenants'>, tenant: string): TenantSettings {
  return { ...config.defaults, ...config.tenants[tenant] };
}
