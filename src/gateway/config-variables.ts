/**
 * The gateway's environment variables, by name, meaning and default: a module of its own that
 * imports nothing but a type from src/config-variable.ts, so that src/config.ts can list them in
 * CONFIG_VARIABLES (which the README table and the CLI's --help are checked against) without an
 * import cycle.
 */
import type { ConfigVariable } from '../config-variable';

/** The gateway's environment variables (included in `CONFIG_VARIABLES`). */
export const GATEWAY_CONFIG_VARIABLES: ConfigVariable[] = [
  { name: 'UPLOAD_SAGA_GATEWAY_HOST', description: 'Interface the HTTP gateway listens on', default: '127.0.0.1' },
  { name: 'UPLOAD_SAGA_GATEWAY_PORT', description: 'Port of the HTTP gateway (0: any free port)', default: '8080' },
  {
    name: 'UPLOAD_SAGA_GATEWAY_TOKENS',
    description: 'Bearer tokens by tenant, as SHA-256 hex of the token: "acme=<sha256>,beta=<sha256>" (a tenant may have several)',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_JWT_JWKS_URL',
    description:
      'JWKS URL of an identity provider whose JWTs the gateway accepts as bearer tokens (fetched again when a token names an unknown key); unset: no JWTs',
  },
  { name: 'UPLOAD_SAGA_GATEWAY_JWT_ISSUER', description: 'The iss every JWT must carry (required with the JWKS URL)' },
  { name: 'UPLOAD_SAGA_GATEWAY_JWT_AUDIENCE', description: 'Accepted aud values, comma-separated (required with the JWKS URL)' },
  { name: 'UPLOAD_SAGA_GATEWAY_JWT_TENANT_CLAIM', description: 'The JWT claim naming the tenant (a top-level claim)', default: 'tenant' },
  {
    name: 'UPLOAD_SAGA_GATEWAY_JWT_ALGORITHMS',
    description: 'JWS algorithms JWTs may use, comma-separated (asymmetric only: RSA, RSA-PSS, ECDSA, EdDSA)',
    default: 'RS256,ES256,EdDSA',
  },
  { name: 'UPLOAD_SAGA_GATEWAY_JWT_TENANTS', description: 'Tenants served by JWT, comma-separated (others get 403); unset: any tenant' },
  { name: 'UPLOAD_SAGA_GATEWAY_JWT_CLOCK_TOLERANCE', description: 'Seconds of clock difference tolerated for exp and nbf', default: '30' },
  {
    name: 'UPLOAD_SAGA_GATEWAY_UPLOAD_TOKEN_SECRET',
    description: 'Secret (32+ characters) that upload tokens from mintUploadToken are signed with; unset: upload tokens are refused',
    secret: true,
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_BUCKET',
    description: 'Bucket gateway uploads go to (each tenant under its own "<tenant>/" prefix)',
    default: 'uploads',
  },
  { name: 'UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZE', description: 'Largest upload a tenant may send (413 above)', default: '5GiB' },
  { name: 'UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZES', description: 'Per-tenant maximum upload sizes, e.g. "acme=50GiB,beta=100MiB"' },
  { name: 'UPLOAD_SAGA_GATEWAY_RATE_LIMIT', description: 'Requests per second a tenant may make (429 above)', default: '50' },
  { name: 'UPLOAD_SAGA_GATEWAY_RATE_LIMITS', description: 'Per-tenant request rates, e.g. "acme=200,beta=10"' },
  {
    name: 'UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY',
    description: 'How long an unfinished upload lives before it is compensated (e.g. 30m, 24h, 7d)',
    default: '24h',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_PAUSE_EXPIRY',
    description:
      'Whether a paused upload expires while paused ("runs") or gets the paused time added to its expiry at resume ("stops"), when the pause does not say',
    default: 'runs',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_MAX_PAUSE',
    description:
      "Longest an upload's pauses with the expiry clock stopped last in all (1s–365d): past it the upload expires and is compensated as expired",
    default: '7d',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_PART_SIZE',
    description: 'Part size of tus uploads (a PATCH holds at most parts in flight + 1 parts in memory)',
    default: '5MiB',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT',
    description: 'Parts one tus PATCH sends to S3 at once, 1–16 (memory per PATCH: at most (this + 1) × (part size + 5 MiB))',
    default: '4',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_TUS_EQUAL_PARTS',
    description:
      "Cut every tus part but the last to exactly the part size, staging what a PATCH leaves for the next, for stores that require equal parts (with the worker's S3_EQUAL_PARTS); otherwise a PATCH folds a remainder under 5 MiB into its last part",
    default: 'false',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_TUS_CREATE_WHEN_OPEN',
    description:
      'Answer a tus creation once the saga reserved space and opened the multipart upload, so that a tenant over its quota is refused at the POST (413); otherwise it answers once the saga started, and a quota refusal answers the first PATCH or HEAD',
    default: 'false',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_BODY_STREAMS',
    description:
      'Request bodies (tus PATCH, creation-with-upload POST) one gateway replica receives at once, all tenants together (503 with Retry-After above); bounds its memory',
    default: '16',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS',
    description: 'Request bodies a tenant may send at once, across replicas when Redis is configured (429 with Retry-After above)',
    default: '8',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS_OVERRIDES',
    description: 'Per-tenant caps on request bodies at once, e.g. "acme=64,beta=2"',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT',
    description:
      'A request body that sends nothing for this long is ended like a dropped connection: what arrived is kept, the client resumes with HEAD (1s–1h)',
    default: '30s',
  },
  {
    name: 'UPLOAD_SAGA_GATEWAY_REDIS_URL',
    description: 'Redis for cross-replica upload locks, rate limits and progress fan-out; unset: one replica only',
    secret: true,
  },
  { name: 'UPLOAD_SAGA_GATEWAY_WEBHOOKS', description: 'Per-tenant webhook URLs for upload events, e.g. "acme=https://example.com/hooks"' },
  {
    name: 'UPLOAD_SAGA_GATEWAY_S3_PUBLIC_ENDPOINT',
    description:
      'S3 endpoint browsers reach, which presigned part URLs are signed for (when it differs from S3_ENDPOINT, e.g. behind a proxy)',
    default: 'S3_ENDPOINT',
  },
];
