/**
 * Worker and client configuration from the environment, validated once at start.
 *
 * Every variable is declared in {@link CONFIG_VARIABLES} with its meaning and default — the README
 * table and docker-compose.yml are checked against that list by tests, so they cannot drift.
 * A bad value stops the process at start with every problem listed, instead of failing the
 * first upload an hour later.
 */
import os from 'node:os';
import { z } from 'zod';
import type { QuotaLimits } from './quota/ledger';

export interface ConfigVariable {
  name: string;
  description: string;
  default?: string;
  secret?: boolean;
}

/** Every environment variable the worker and CLI read. */
export const CONFIG_VARIABLES: ConfigVariable[] = [
  { name: 'TEMPORAL_ADDRESS', description: 'Temporal frontend host:port', default: '127.0.0.1:7233' },
  { name: 'TEMPORAL_NAMESPACE', description: 'Temporal namespace', default: 'default' },
  { name: 'TEMPORAL_TASK_QUEUE', description: 'Task queue of the upload worker', default: 'upload-saga' },
  { name: 'TEMPORAL_API_KEY', description: 'API key for Temporal Cloud (turns TLS on)', secret: true },
  { name: 'TEMPORAL_TLS', description: 'Use TLS to reach Temporal (true/false)', default: 'false (true with an API key or client certificate)' },
  { name: 'TEMPORAL_TLS_CERT_PATH', description: 'mTLS client certificate (PEM file)' },
  { name: 'TEMPORAL_TLS_KEY_PATH', description: 'mTLS client key (PEM file)', secret: true },
  { name: 'TEMPORAL_TLS_CA_PATH', description: 'CA bundle for the server certificate (PEM file)' },
  { name: 'TEMPORAL_TLS_SERVER_NAME', description: 'Server name to verify, if not the address host' },
  { name: 'S3_ENDPOINT', description: 'S3-compatible endpoint URL; unset for AWS S3', default: '(AWS S3)' },
  { name: 'S3_REGION', description: 'S3 region', default: 'us-east-1' },
  { name: 'S3_ACCESS_KEY_ID', description: 'S3 access key; unset to use the AWS default credential chain', secret: true },
  { name: 'S3_SECRET_ACCESS_KEY', description: 'S3 secret key', secret: true },
  { name: 'S3_FORCE_PATH_STYLE', description: 'Path-style bucket addressing (true/false)', default: 'true when S3_ENDPOINT is set' },
  { name: 'UPLOAD_SAGA_ALLOWED_ROOTS', description: 'Directories local-file sources may come from, separated by ":"', default: 'the working directory and the OS temp directory' },
  { name: 'UPLOAD_SAGA_QUOTA_DEFAULT', description: 'Bytes each tenant may store (e.g. 500GiB)', default: '1TiB' },
  { name: 'UPLOAD_SAGA_QUOTAS', description: 'Per-tenant quotas, e.g. "acme=10GiB,beta=2TiB"' },
  { name: 'UPLOAD_SAGA_WEBHOOK_SECRET', description: 'HMAC-SHA256 key for webhook signatures', secret: true },
  { name: 'UPLOAD_SAGA_WEBHOOK_TIMEOUT_MS', description: 'Timeout of one webhook request', default: '10000' },
  { name: 'TEMPORAL_UI_URL', description: 'Temporal Web UI base URL, for the links the CLI prints (CLI only)', default: 'http://localhost:8233' },
  { name: 'UPLOAD_SAGA_MAX_CONCURRENT_ACTIVITIES', description: 'Activities one worker runs at once (each upload-parts holds partSize × partConcurrency)', default: '8' },
];

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

const UNITS: Record<string, number> = { B: 1, KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3, TIB: 1024 ** 4, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12 };

/** "10GiB" → 10737418240. Binary (KiB…TiB) and decimal (KB…TB) units; a bare number is bytes. */
export function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!match) return undefined;
  const unit = UNITS[(match[2] || 'B').toUpperCase()];
  if (unit === undefined) return undefined;
  const value = Math.round(Number(match[1]) * unit);
  return Number.isSafeInteger(value) ? value : undefined;
}

const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const byteSize = z.string().transform((text, ctx) => {
  const value = parseByteSize(text);
  if (value === undefined) ctx.addIssue({ code: 'custom', message: `"${text}" is not a size; use e.g. 500GiB, 10TB or a number of bytes` });
  return value ?? 0;
});

const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port').default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('upload-saga'),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: flag.optional(),
  TEMPORAL_TLS_CERT_PATH: z.string().optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().optional(),
  TEMPORAL_TLS_CA_PATH: z.string().optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
  S3_ENDPOINT: z.url({ error: 'must be a URL such as http://127.0.0.1:9000' }).optional(),
  S3_REGION: z.string().min(1).default('us-east-1'),
  S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
  S3_FORCE_PATH_STYLE: flag.optional(),
  UPLOAD_SAGA_ALLOWED_ROOTS: z.string().optional(),
  UPLOAD_SAGA_QUOTA_DEFAULT: byteSize.default(1024 ** 4),
  UPLOAD_SAGA_QUOTAS: z.string().optional(),
  UPLOAD_SAGA_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  UPLOAD_SAGA_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(10_000),
  UPLOAD_SAGA_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).max(1000).default(8),
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
}

export interface WorkerConfig {
  temporal: TemporalConnectionConfig;
  s3: S3Config;
  allowedRoots: string[];
  quota: QuotaLimits;
  webhook: { secret?: string; timeoutMs: number };
  maxConcurrentActivities: number;
}

function parseQuotas(text: string | undefined, problems: string[]): Record<string, number> {
  const quotas: Record<string, number> = {};
  for (const entry of (text ?? '').split(',').map((e) => e.trim()).filter(Boolean)) {
    const [tenant, size] = entry.split('=');
    const bytes = size === undefined ? undefined : parseByteSize(size);
    if (!tenant || bytes === undefined) problems.push(`UPLOAD_SAGA_QUOTAS: "${entry}" is not tenant=size (e.g. acme=10GiB)`);
    else quotas[tenant.trim()] = bytes;
  }
  return quotas;
}

/**
 * Reads and validates the configuration.
 * @throws ConfigError listing every problem.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const parsed = envSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== '')));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (Boolean(e.S3_ACCESS_KEY_ID) !== Boolean(e.S3_SECRET_ACCESS_KEY)) {
    problems.push('S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set together (or both unset for the AWS default chain)');
  }
  if (Boolean(e.TEMPORAL_TLS_CERT_PATH) !== Boolean(e.TEMPORAL_TLS_KEY_PATH)) {
    problems.push('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together');
  }
  const perTenant = parseQuotas(e.UPLOAD_SAGA_QUOTAS, problems);
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
      ...(e.S3_ACCESS_KEY_ID && e.S3_SECRET_ACCESS_KEY ? { credentials: { accessKeyId: e.S3_ACCESS_KEY_ID, secretAccessKey: e.S3_SECRET_ACCESS_KEY } } : {}),
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? Boolean(e.S3_ENDPOINT),
    },
    allowedRoots: e.UPLOAD_SAGA_ALLOWED_ROOTS ? e.UPLOAD_SAGA_ALLOWED_ROOTS.split(':').filter(Boolean) : [process.cwd(), os.tmpdir()],
    quota: { defaultBytes: e.UPLOAD_SAGA_QUOTA_DEFAULT, perTenant },
    webhook: { ...(e.UPLOAD_SAGA_WEBHOOK_SECRET ? { secret: e.UPLOAD_SAGA_WEBHOOK_SECRET } : {}), timeoutMs: e.UPLOAD_SAGA_WEBHOOK_TIMEOUT_MS },
    maxConcurrentActivities: e.UPLOAD_SAGA_MAX_CONCURRENT_ACTIVITIES,
  };
}
