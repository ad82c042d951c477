/**
 * Worker and client configuration from the environment, validated once at start.
 *
 * Every variable is declared in {@link CONFIG_VARIABLES} with its meaning and default — the table in
 * docs/reference/configuration.md and docker-compose.yml are checked against that list by tests, so they cannot drift.
 * A bad value stops the process at start with every problem listed, instead of failing the
 * first upload an hour later.
 */
import os from 'node:os';
import { z } from 'zod';
import type { QuotaLimits } from './quota/ledger';
import { parseAllowedHosts } from './net/address-policy';
import { parseEncryptionKeys, type EncryptionConfig } from './codec/keys';
import { GATEWAY_CONFIG_VARIABLES } from './gateway/config-variables';
import { TRACING_CONFIG_VARIABLES } from './telemetry/config-variables';
import { tracingConfigProblems } from './telemetry/config';
import type { ConfigVariable } from './config-variable';
import { parseS3SourceProfiles, type S3SourceProfile } from './s3-source-profiles';
import { LOG_FORMATS, LOG_LEVELS, type LoggingConfig } from './logging';
import type { S3StoreRules } from './s3/store-rules';
import { S3_LIMITS } from './upload/part-plan';

export type { ConfigVariable } from './config-variable';

/** Every environment variable the worker and CLI read. */
export const CONFIG_VARIABLES: ConfigVariable[] = [
  { name: 'TEMPORAL_ADDRESS', description: 'Temporal frontend host:port', default: '127.0.0.1:7233' },
  { name: 'TEMPORAL_NAMESPACE', description: 'Temporal namespace', default: 'default' },
  { name: 'TEMPORAL_TASK_QUEUE', description: 'Task queue of the upload worker', default: 'upload-saga' },
  { name: 'TEMPORAL_API_KEY', description: 'API key for Temporal Cloud (turns TLS on)', secret: true },
  {
    name: 'TEMPORAL_TLS',
    description: 'Use TLS to reach Temporal (true/false)',
    default: 'false (true with an API key or client certificate)',
  },
  { name: 'TEMPORAL_TLS_CERT_PATH', description: 'mTLS client certificate (PEM file)' },
  { name: 'TEMPORAL_TLS_KEY_PATH', description: 'mTLS client key (PEM file)', secret: true },
  { name: 'TEMPORAL_TLS_CA_PATH', description: 'CA bundle for the server certificate (PEM file)' },
  { name: 'TEMPORAL_TLS_SERVER_NAME', description: 'Server name to verify, if not the address host' },
  { name: 'S3_ENDPOINT', description: 'S3-compatible endpoint URL; unset for AWS S3', default: '(AWS S3)' },
  { name: 'S3_REGION', description: 'S3 region', default: 'us-east-1' },
  { name: 'S3_ACCESS_KEY_ID', description: 'S3 access key; unset to use the AWS default credential chain', secret: true },
  { name: 'S3_SECRET_ACCESS_KEY', description: 'S3 secret key', secret: true },
  { name: 'S3_FORCE_PATH_STYLE', description: 'Path-style bucket addressing (true/false)', default: 'true when S3_ENDPOINT is set' },
  {
    name: 'S3_IDLE_TIMEOUT_MS',
    description:
      'Abort an S3 request after this long without a byte moving on its connection (a stalled connection); the SDK then retries it',
    default: '60000',
  },
  {
    name: 'S3_MAX_PARTS',
    description: 'Most parts one multipart upload may have; a file that needs more gets larger parts',
    default: '10000',
  },
  {
    name: 'S3_EQUAL_PARTS',
    description: 'The store requires every part but the last to have the same size, as Cloudflare R2 does (true/false)',
    default: 'false',
  },
  {
    name: 'S3_ADDITIONAL_CHECKSUMS',
    description: 'The store verifies additional checksums (x-amz-checksum-*) on parts and objects (true/false); false: none are sent',
    default: 'true',
  },
  {
    name: 'S3_CHECKSUMMED_PART_COPY',
    description:
      'The store accepts UploadPartCopy into an upload created with an additional checksum (true/false), so server-side copies keep checksums',
    default: 'false',
  },
  {
    name: 'UPLOAD_SAGA_ALLOWED_ROOTS',
    description: 'Directories local-file sources may come from, separated by ":"',
    default: 'the working directory and the OS temp directory',
  },
  { name: 'UPLOAD_SAGA_QUOTA_DEFAULT', description: 'Bytes each tenant may store (e.g. 500GiB)', default: '1TiB' },
  { name: 'UPLOAD_SAGA_QUOTAS', description: 'Per-tenant quotas, e.g. "acme=10GiB,beta=2TiB"' },
  { name: 'UPLOAD_SAGA_WEBHOOK_SECRET', description: 'HMAC-SHA256 key for webhook signatures', secret: true },
  { name: 'UPLOAD_SAGA_WEBHOOK_TIMEOUT_MS', description: 'Timeout of one webhook request', default: '10000' },
  {
    name: 'TEMPORAL_UI_URL',
    description: 'Temporal Web UI base URL, for the links the CLI prints (CLI only)',
    default: 'http://localhost:8233',
  },
  {
    name: 'UPLOAD_SAGA_MAX_CONCURRENT_ACTIVITIES',
    description: 'Activities one worker runs at once (each upload-parts holds partSize × partConcurrency)',
    default: '8',
  },
  {
    name: 'UPLOAD_SAGA_S3_SOURCE_PROFILES',
    description:
      'Other S3 stores S3-object sources may name as `profile`, JSON: {"archive":{"endpoint":"https://…","region":"…","accessKeyId":"…","secretAccessKey":"…","forcePathStyle":true}}',
    default: "(none: S3 sources only from the worker's own store)",
    secret: true,
  },
  {
    name: 'UPLOAD_SAGA_URL_ALLOWED_HOSTS',
    description:
      'Non-public hosts URL sources may reach anyway: IPs, CIDR ranges or host names, each optionally with :port, comma-separated (e.g. "10.0.0.0/8,files.internal:8443")',
    default: '(none: public addresses only)',
  },
  {
    name: 'UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS',
    description: 'Non-public hosts webhooks may reach anyway, in the same form',
    default: '(none: public addresses only)',
  },
  {
    name: 'UPLOAD_SAGA_TENANT_KEY_PREFIX',
    description: 'Object keys must start with this prefix, "{tenant}" replaced by the upload\'s tenant (e.g. "tenants/{tenant}/")',
    default: '(any key)',
  },
  {
    name: 'UPLOAD_SAGA_ENCRYPTION_KEY',
    description: 'AES-256 key (32 bytes, base64) that encrypts every workflow payload; set the same key on workers and clients',
    default: '(payloads not encrypted)',
    secret: true,
  },
  {
    name: 'UPLOAD_SAGA_ENCRYPTION_KEY_ID',
    description: 'Id stored with each payload that key encrypts',
    default: "key-<first 8 hex digits of the key's SHA-256>",
  },
  {
    name: 'UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS',
    description: 'Keys that only decrypt, after a rotation: "id:base64,id:base64"',
    secret: true,
  },
  {
    name: 'UPLOAD_SAGA_CODEC_SERVER_TOKEN',
    description: 'Bearer token `upload-saga codec-server` requires (≥ 16 characters)',
    default: '(no authentication; loopback only)',
    secret: true,
  },
  {
    name: 'LOG_LEVEL',
    description: 'Least severe log level written by the worker, the gateway and the CLI: trace, debug, info, warn, error, fatal or silent',
    default: 'info',
  },
  {
    name: 'LOG_FORMAT',
    description: 'Log lines as JSON objects (json) or short human-readable lines (pretty); written to stderr',
    default: 'pretty on a TTY, json otherwise',
  },
  {
    name: 'UPLOAD_SAGA_HEALTH_PORT',
    description: "Port of the worker's health endpoints (/livez, /readyz); unset: none",
    default: '(off)',
  },
  {
    name: 'UPLOAD_SAGA_HEALTH_BUCKET',
    description: "Bucket whose HeadBucket tells the worker's /readyz that S3 is reachable",
    default: 'uploads',
  },
  {
    name: 'UPLOAD_SAGA_HEALTH_HOST',
    description: "Interface the worker's health endpoints listen on",
    default: '0.0.0.0',
  },
  // Tracing (src/telemetry/config.ts reads them).
  ...TRACING_CONFIG_VARIABLES,
  {
    name: 'UPLOAD_SAGA_METRICS_PORT',
    description: "Port of the worker's Prometheus endpoint (/metrics: the application's metrics and the Temporal SDK's); unset: none",
    default: '(off)',
  },
  {
    name: 'UPLOAD_SAGA_METRICS_HOST',
    description: 'Interface the Prometheus endpoints of the worker and the gateway listen on',
    default: '0.0.0.0',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_METRICS_PORT',
    description: "Port of the gateway's Prometheus endpoint (/metrics), apart from its public port; unset: none",
    default: '(off)',
  },
  {
    name: 'UPLOAD_SAGA_METRICS_TENANT_LABEL',
    description: 'Label per-upload metrics with the tenant (true/false); one series per tenant, so only with few tenants',
    default: 'false',
  },
  {
    name: 'UPLOAD_SAGA_BREAKER_ENABLED',
    description: 'Circuit breakers per S3 endpoint and per webhook host in each worker (true/false)',
    default: 'true',
  },
  {
    name: 'UPLOAD_SAGA_BREAKER_FAILURE_THRESHOLD',
    description: 'Failures in a row meaning the target is down (network errors, 5xx, throttling; never 4xx) that open its breaker',
    default: '5',
  },
  {
    name: 'UPLOAD_SAGA_BREAKER_HALF_OPEN_AFTER_MS',
    description: 'How long an open breaker fails calls at once before it lets one probe through',
    default: '10000',
  },
  {
    name: 'UPLOAD_SAGA_PROGRESS_REDIS_URL',
    description:
      "Redis the worker publishes live upload progress on and `upload-saga upload` follows it from (the gateway's UPLOAD_SAGA_GATEWAY_REDIS_URL); unset: none published, the CLI polls",
    secret: true,
  },
  // The HTTP gateway's own variables (src/gateway/config.ts reads them).
  ...GATEWAY_CONFIG_VARIABLES,
];

/** Invalid configuration: `problems` lists every problem found, each naming its variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

const UNITS: Record<string, number> = {
  B: 1,
  KIB: 1024,
  MIB: 1024 ** 2,
  GIB: 1024 ** 3,
  TIB: 1024 ** 4,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
};

/** "10GiB" → 10737418240. Binary (KiB…TiB) and decimal (KB…TB) units; a bare number is bytes. */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!match) return undefined;
  const unit = UNITS[(match[2] || 'B').toUpperCase()];
  if (unit === undefined) return undefined;
  const value = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** A true/false environment variable (`true`/`false`, `1`/`0`, `yes`/`no`). */
export const envFlag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const byteSize = z.string().transform((text, ctx) => {
  const value = parseByteSize(text);
  if (value === undefined) ctx.addIssue({ code: 'custom', message: `"${text}" is not a size; use e.g. 500GiB, 10TB or a number of bytes` });
  return value ?? 0;
});

/** A whole number from an environment variable, with a message that says the allowed range. */
const wholeNumber = (min: number, max: number, unit?: string) => {
  const allowed = `must be a whole number from ${min} to ${max}${unit ? ` (${unit})` : ''}`;
  return z.coerce.number({ error: allowed }).int(allowed).min(min, allowed).max(max, allowed);
};

const envSchema = z.object({
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port')
    .default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('upload-saga'),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: envFlag.optional(),
  TEMPORAL_TLS_CERT_PATH: z.string().optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().optional(),
  TEMPORAL_TLS_CA_PATH: z.string().optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
  S3_ENDPOINT: z.url({ error: 'must be a URL such as http://127.0.0.1:9000' }).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_FORCE_PATH_STYLE: envFlag.optional(),
  S3_IDLE_TIMEOUT_MS: wholeNumber(1_000, 3_600_000, 'milliseconds').default(60_000),
  S3_MAX_PARTS: wholeNumber(1, S3_LIMITS.maxParts).default(S3_LIMITS.maxParts),
  S3_EQUAL_PARTS: envFlag.default(false),
  S3_ADDITIONAL_CHECKSUMS: envFlag.default(true),
  S3_CHECKSUMMED_PART_COPY: envFlag.default(false),
  UPLOAD_SAGA_ALLOWED_ROOTS: z
    .string()
    .refine(
      (v) =>
        v
          .split(':')
          .filter(Boolean)
          .every((root) => root.startsWith('/')),
      'must be absolute directories separated by ":" (e.g. /data:/srv/in)',
    )
    .optional(),
  UPLOAD_SAGA_QUOTA_DEFAULT: byteSize.default(1024 ** 4),
  UPLOAD_SAGA_QUOTAS: z.string().optional(),
  UPLOAD_SAGA_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  UPLOAD_SAGA_WEBHOOK_TIMEOUT_MS: wholeNumber(100, 300_000, 'milliseconds').default(10_000),
  UPLOAD_SAGA_MAX_CONCURRENT_ACTIVITIES: wholeNumber(1, 1000).default(8),
  // Validated by parseS3SourceProfiles (src/s3-source-profiles.ts), which never echoes a value.
  UPLOAD_SAGA_S3_SOURCE_PROFILES: z.string().optional(),
  UPLOAD_SAGA_URL_ALLOWED_HOSTS: z.string().optional(),
  UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS: z.string().optional(),
  UPLOAD_SAGA_TENANT_KEY_PREFIX: z
    .string()
    .refine((v) => v.includes('{tenant}'), 'must contain "{tenant}" (e.g. "{tenant}/"), or be unset')
    .refine((v) => !/[\u0000-\u001f\u007f]/.test(v) && !v.startsWith('/'), 'must not start with "/" or contain control characters')
    .optional(),
  // Validated by parseEncryptionKeys (src/codec/keys.ts), which never echoes a key.
  UPLOAD_SAGA_ENCRYPTION_KEY: z.string().optional(),
  UPLOAD_SAGA_ENCRYPTION_KEY_ID: z.string().optional(),
  UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS: z.string().optional(),
  UPLOAD_SAGA_CODEC_SERVER_TOKEN: z.string().min(16, 'must be at least 16 characters (e.g. `openssl rand -hex 24`)').optional(),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  LOG_FORMAT: z.enum(LOG_FORMATS, { error: `must be one of ${LOG_FORMATS.join(', ')}` }).optional(),
  UPLOAD_SAGA_HEALTH_PORT: wholeNumber(0, 65535).optional(),
  UPLOAD_SAGA_HEALTH_HOST: z.string().min(1).default('0.0.0.0'),
  UPLOAD_SAGA_HEALTH_BUCKET: z.string().min(1).default('uploads'),
  UPLOAD_SAGA_METRICS_PORT: wholeNumber(0, 65535).optional(),
  UPLOAD_SAGA_METRICS_HOST: z.string().min(1).default('0.0.0.0'),
  UPLOAD_SAGA_GATEWAY_METRICS_PORT: wholeNumber(0, 65535).optional(),
  UPLOAD_SAGA_METRICS_TENANT_LABEL: envFlag.default(false),
  UPLOAD_SAGA_BREAKER_ENABLED: envFlag.default(true),
  UPLOAD_SAGA_BREAKER_FAILURE_THRESHOLD: wholeNumber(1, 1000).default(5),
  UPLOAD_SAGA_BREAKER_HALF_OPEN_AFTER_MS: wholeNumber(100, 3_600_000, 'milliseconds').default(10_000),
  UPLOAD_SAGA_PROGRESS_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
});

export interface TemporalConnectionConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  apiKey?: string;
  tls?: { clientCertPath?: string; clientKeyPath?: string; caPath?: string; serverName?: string } | false;
}

export interface S3Config {
  endpoint?: string;
  region: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  forcePathStyle: boolean;
  /** Abort a request after this long without a byte moving on its connection. @default 60_000 */
  idleTimeoutMs?: number;
  /** Where this store differs from others (S3_MAX_PARTS, S3_EQUAL_PARTS, …). @default DEFAULT_S3_STORE_RULES */
  rules?: S3StoreRules;
}

/** A worker's configuration (see {@link loadConfig}): Temporal, S3, sources, quota, encryption, webhook. */
export interface WorkerConfig {
  temporal: TemporalConnectionConfig;
  s3: S3Config;
  allowedRoots: string[];
  quota: QuotaLimits;
  /** `allowedHosts`: non-public destinations webhooks may reach (see src/net/address-policy.ts). */
  webhook: { secret?: string; timeoutMs: number; allowedHosts: string[] };
  maxConcurrentActivities: number;
  /** URL sources: `allowedHosts` are the non-public destinations they may reach anyway. */
  urlSources: { allowedHosts: string[] };
  /** Other S3 stores S3-object sources may come from, by profile name (holds credentials: worker only). */
  s3SourceProfiles: Record<string, S3SourceProfile>;
  /** When set, every object key must start with it, `{tenant}` replaced by the upload's tenant. */
  tenantKeyPrefix?: string;
  /** Payload encryption keys; undefined when `UPLOAD_SAGA_ENCRYPTION_KEY` is unset (no encryption). */
  encryption?: EncryptionConfig;
  /** The codec server's settings (`upload-saga codec-server`). */
  codecServer: { token?: string };
  /** `LOG_LEVEL`, `LOG_FORMAT` (format undefined: pretty on a TTY, JSON otherwise). */
  logging: LoggingConfig;
  /** The worker's health endpoints (`UPLOAD_SAGA_HEALTH_PORT`); undefined: none. */
  health?: { host: string; port: number; bucket: string };
  /**
   * Prometheus endpoints: the worker's (`port`) and the gateway's (`gatewayPort`), each off when
   * undefined; `tenantLabel` adds the tenant to per-upload metrics.
   */
  metrics: { host: string; port?: number; gatewayPort?: number; tenantLabel: boolean };
  /** Circuit breakers per S3 endpoint and webhook host (`UPLOAD_SAGA_BREAKER_*`). */
  breaker: { enabled: boolean; failureThreshold: number; halfOpenAfterMs: number };
  /** Live progress over Redis pub/sub (`UPLOAD_SAGA_PROGRESS_REDIS_URL`); undefined: none. */
  progress?: { redisUrl: string };
}

const TENANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function parseQuotas(text: string | undefined, problems: string[]): Record<string, number> {
  // No prototype: a tenant named "constructor" or "toString" must not find Object's members.
  const quotas: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const entry of (text ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const [tenant, size, ...rest] = entry.split('=').map((part) => part.trim());
    const bytes = size === undefined || rest.length ? undefined : parseByteSize(size);
    if (!tenant || !TENANT_PATTERN.test(tenant) || bytes === undefined)
      problems.push(`UPLOAD_SAGA_QUOTAS: "${entry}" is not tenant=size (e.g. acme=10GiB)`);
    else quotas[tenant] = bytes;
  }
  return quotas;
}

function parseHostList(variable: string, text: string | undefined, problems: string[]): string[] {
  const parsed = parseAllowedHosts(text);
  problems.push(...parsed.problems.map((p) => `${variable}: ${p}`));
  return parsed.entries.map((e) => e.text);
}

/**
 * Reads and validates the configuration.
 * @throws ConfigError listing every problem.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== '')) as Record<string, string>;
  const keys = parseEncryptionKeys({
    key: present.UPLOAD_SAGA_ENCRYPTION_KEY,
    keyId: present.UPLOAD_SAGA_ENCRYPTION_KEY_ID,
    previousKeys: present.UPLOAD_SAGA_ENCRYPTION_PREVIOUS_KEYS,
  });
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError([...parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`), ...keys.problems]);
  }
  const e = parsed.data;
  const problems: string[] = [...keys.problems];
  if (Boolean(e.S3_ACCESS_KEY_ID) !== Boolean(e.S3_SECRET_ACCESS_KEY)) {
    problems.push('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together (or both unset for the AWS default chain)');
  }
  if (Boolean(e.TEMPORAL_TLS_CERT_PATH) !== Boolean(e.TEMPORAL_TLS_KEY_PATH)) {
    problems.push('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together');
  }
  if (!e.S3_ADDITIONAL_CHECKSUMS && e.S3_CHECKSUMMED_PART_COPY) {
    problems.push('S3_CHECKSUMMED_PART_COPY=true needs additional checksums: it cannot be set with S3_ADDITIONAL_CHECKSUMS=false');
  }
  const perTenant = parseQuotas(e.UPLOAD_SAGA_QUOTAS, problems);
  const urlAllowedHosts = parseHostList('UPLOAD_SAGA_URL_ALLOWED_HOSTS', e.UPLOAD_SAGA_URL_ALLOWED_HOSTS, problems);
  const webhookAllowedHosts = parseHostList('UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS', e.UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS, problems);
  const sourceProfiles = parseS3SourceProfiles(e.UPLOAD_SAGA_S3_SOURCE_PROFILES);
  problems.push(...sourceProfiles.problems);
  problems.push(...tracingConfigProblems(present));
  if (problems.length) throw new ConfigError(problems);

  const tlsWanted = e.TEMPORAL_TLS ?? Boolean(e.TEMPORAL_API_KEY || e.TEMPORAL_TLS_CERT_PATH);
  return {
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      ...(e.TEMPORAL_API_KEY ? { apiKey: e.TEMPORAL_API_KEY } : {}),
      tls: tlsWanted
        ? {
            ...(e.TEMPORAL_TLS_CERT_PATH ? { clientCertPath: e.TEMPORAL_TLS_CERT_PATH, clientKeyPath: e.TEMPORAL_TLS_KEY_PATH } : {}),
            ...(e.TEMPORAL_TLS_CA_PATH ? { caPath: e.TEMPORAL_TLS_CA_PATH } : {}),
            ...(e.TEMPORAL_TLS_SERVER_NAME ? { serverName: e.TEMPORAL_TLS_SERVER_NAME } : {}),
          }
        : false,
    },
    s3: {
      ...(e.S3_ENDPOINT ? { endpoint: e.S3_ENDPOINT } : {}),
      region: e.S3_REGION,
      ...(e.S3_ACCESS_KEY_ID && e.S3_SECRET_ACCESS_KEY
        ? { credentials: { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY } }
        : {}),
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? Boolean(e.S3_ENDPOINT),
      idleTimeoutMs: e.S3_IDLE_TIMEOUT_MS,
      rules: {
        maxParts: e.S3_MAX_PARTS,
        equalParts: e.S3_EQUAL_PARTS,
        additionalChecksums: e.S3_ADDITIONAL_CHECKSUMS,
        checksummedPartCopy: e.S3_CHECKSUMMED_PART_COPY,
      },
    },
    allowedRoots: e.UPLOAD_SAGA_ALLOWED_ROOTS ? e.UPLOAD_SAGA_ALLOWED_ROOTS.split(':').filter(Boolean) : [process.cwd(), os.tmpdir()],
    quota: { defaultBytes: e.UPLOAD_SAGA_QUOTA_DEFAULT, perTenant },
    webhook: {
      ...(e.UPLOAD_SAGA_WEBHOOK_SECRET ? { secret: e.UPLOAD_SAGA_WEBHOOK_SECRET } : {}),
      timeoutMs: e.UPLOAD_SAGA_WEBHOOK_TIMEOUT_MS,
      allowedHosts: webhookAllowedHosts,
    },
    maxConcurrentActivities: e.UPLOAD_SAGA_MAX_CONCURRENT_ACTIVITIES,
    urlSources: { allowedHosts: urlAllowedHosts },
    s3SourceProfiles: sourceProfiles.profiles,
    ...(e.UPLOAD_SAGA_TENANT_KEY_PREFIX ? { tenantKeyPrefix: e.UPLOAD_SAGA_TENANT_KEY_PREFIX } : {}),
    ...(keys.encryption ? { encryption: keys.encryption } : {}),
    codecServer: { ...(e.UPLOAD_SAGA_CODEC_SERVER_TOKEN ? { token: e.UPLOAD_SAGA_CODEC_SERVER_TOKEN } : {}) },
    logging: { level: e.LOG_LEVEL, ...(e.LOG_FORMAT ? { format: e.LOG_FORMAT } : {}) },
    metrics: {
      host: e.UPLOAD_SAGA_METRICS_HOST,
      ...(e.UPLOAD_SAGA_METRICS_PORT !== undefined ? { port: e.UPLOAD_SAGA_METRICS_PORT } : {}),
      ...(e.UPLOAD_SAGA_GATEWAY_METRICS_PORT !== undefined ? { gatewayPort: e.UPLOAD_SAGA_GATEWAY_METRICS_PORT } : {}),
      tenantLabel: e.UPLOAD_SAGA_METRICS_TENANT_LABEL,
    },
    ...(e.UPLOAD_SAGA_HEALTH_PORT !== undefined
      ? { health: { host: e.UPLOAD_SAGA_HEALTH_HOST, port: e.UPLOAD_SAGA_HEALTH_PORT, bucket: e.UPLOAD_SAGA_HEALTH_BUCKET } }
      : {}),
    breaker: {
      enabled: e.UPLOAD_SAGA_BREAKER_ENABLED,
      failureThreshold: e.UPLOAD_SAGA_BREAKER_FAILURE_THRESHOLD,
      halfOpenAfterMs: e.UPLOAD_SAGA_BREAKER_HALF_OPEN_AFTER_MS,
    },
    ...(e.UPLOAD_SAGA_PROGRESS_REDIS_URL ? { progress: { redisUrl: e.UPLOAD_SAGA_PROGRESS_REDIS_URL } } : {}),
  };
}
