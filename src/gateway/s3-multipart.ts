/**
 * S3 presigned multipart uploads as `@uppy/aws-s3` expects them from a Companion-style backend:
 * the browser asks the gateway to open, sign, list, complete or abort, and PUTs each part straight
 * to S3 with a short-lived presigned URL. Every upload is a client-upload saga (mode `presigned`).
 *
 * The routes, relative to the endpoint Uppy is given (`companionEndpoint` in @uppy/aws-s3 v6,
 * `endpoint` in v5; both append `/s3/...`), and what Uppy reads from each answer:
 *
 * | request | answer |
 * | --- | --- |
 * | `POST /s3/multipart` `{ filename, type, metadata }` | `{ uploadId, key }` |
 * | `GET /s3/multipart/:uploadId/:partNumber?key=` | `{ url, expires }` (presigned UploadPart) |
 * | `GET /s3/multipart/:uploadId?key=` | `[{ PartNumber, Size, ETag }]` (ListParts) |
 * | `POST /s3/multipart/:uploadId/complete?key=` `{ parts: [{ PartNumber, ETag }] }` | `{ location, key, bucket }` |
 * | `DELETE /s3/multipart/:uploadId?key=` | `{}` |
 * | `GET /s3/params?filename=&type=` (single PUT) | 400: use multipart (see below) |
 *
 * Why it is built this way:
 * - `uploadId` is OUR upload id, never S3's: every request is looked up as the caller's upload
 *   (`upload:<tenant>:<id>`), S3's multipart upload id comes from the workflow, and the object key
 *   is the one the workflow chose (always under `<tenant>/`), so a client cannot point a signature
 *   at another tenant's upload or key, whatever it sends in `key`.
 * - A presigned URL is valid for at most `presignExpiresInSeconds` (default 15 min) and never beyond
 *   the upload's own expiry; it is signed for the PUBLIC S3 endpoint (the one browsers reach), which
 *   may differ from the gateway's own (`publicS3Endpoint`). Only UploadPart is ever signed.
 * - `complete` hands the client's part list to the workflow, which checks it against ListParts
 *   before merging, and answers once the object exists (or 202 when that takes longer than
 *   `completeWaitMs`; the progress stream tells the outcome). `abort` cancels the saga: the
 *   multipart upload is aborted and the reservation released. An upload never completed expires
 *   and is compensated the same way.
 * - Uppy v6 sends no headers to a Companion endpoint, so a browser cannot present its bearer token
 *   there. `POST /uppy/sessions` (bearer) issues a short-lived session (default 1 h) whose token is
 *   part of the endpoint path: `companionEndpoint = <gateway>/uppy/session/<token>`. Only the
 *   token's SHA-256 is stored (in Redis with a TTL across replicas, else in memory). The same
 *   routes are also served under `/uppy` with the bearer header, for clients that can send one.
 * - Single-request uploads (Uppy's non-multipart path, an S3 POST policy) would bypass the saga:
 *   they are refused with a message saying to enable multipart (`shouldUseMultipart: true`; files
 *   under 5 MiB are then one-part uploads). A zero-byte file cannot be sent this way: use tus.
 */
import { createHash, randomBytes } from 'node:crypto';
import { UploadPartCommand, S3Client, type S3Client as S3ClientType } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { listAllParts } from '../activities/s3/list-parts';
import type { ClientPart, ClientUploadState } from '../upload/client-upload';
import { tenantSettings } from './config';
import { InvalidRequestError, RateLimitedError, UnauthorizedError, UploadConflictError, UploadGoneError } from './errors';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './rate-limit';
import type { GatewayPlugin } from './plugin-types';
import type { UploadsService } from './uploads-service';

/** S3's part numbers. */
const MIN_PART_NUMBER = 1;
const MAX_PART_NUMBER = 10_000;

/**
 * The meta field through which a client declares the upload's length (Uppy's create request has
 * no size): `uppy.setFileMeta(id, { 'upload-length': file.size })`. With it, space is reserved and
 * the tenant's limits checked before any byte moves (413 at create), and verify requires exactly
 * that many bytes; without it, both happen after verify.
 */
export const UPLOAD_LENGTH_META = 'upload-length';

/** Fields of Uppy's file meta that are not user metadata (sent as `filename` and `type` already, or the length). */
const UPPY_META_FIELDS = new Set(['name', 'type', 'relativePath', 'filename', 'filetype', UPLOAD_LENGTH_META]);

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

/** A session issued to a browser: the tenant it acts for, until when. */
export interface BrowserSession {
  /** The secret that goes into the endpoint path. Shown once, stored only as its SHA-256. */
  token: string;
  tenant: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** Where sessions live: shared by all replicas (Redis) or one process (memory). */
export interface SessionStore {
  issue(tenant: string, ttlMs: number): Promise<BrowserSession>;
  /** The tenant of a valid, unexpired session token, else undefined. */
  resolve(token: string): Promise<string | undefined>;
  close(): Promise<void>;
}

const SESSION_TOKEN = /^[A-Za-z0-9_-]{43}$/;
const hashOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');
const newToken = () => randomBytes(32).toString('base64url');

/** Sessions in this process: right for one replica. */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, { tenant: string; expiresAt: number }>();
  async issue(tenant: string, ttlMs: number): Promise<BrowserSession> {
    const token = newToken();
    const expiresAt = Date.now() + ttlMs;
    const now = Date.now();
    for (const [hash, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(hash);
    this.sessions.set(hashOf(token), { tenant, expiresAt });
    return { token, tenant, expiresAt };
  }
  async resolve(token: string): Promise<string | undefined> {
    if (!SESSION_TOKEN.test(token)) return undefined;
    const session = this.sessions.get(hashOf(token));
    return session && session.expiresAt > Date.now() ? session.tenant : undefined;
  }
  async close(): Promise<void> {
    this.sessions.clear();
  }
}

/** Sessions in Redis (`<prefix>session:<sha256>` → tenant, with a TTL): valid on every replica. */
export class RedisSessionStore implements SessionStore {
  constructor(
    /** The gateway's connection; not closed by the store. */
    private readonly redis: Redis,
    /** @default 'upload-saga:' */
    private readonly prefix = 'upload-saga:',
  ) {}
  async issue(tenant: string, ttlMs: number): Promise<BrowserSession> {
    const token = newToken();
    await this.redis.set(`${this.prefix}session:${hashOf(token)}`, tenant, 'PX', ttlMs);
    return { token, tenant, expiresAt: Date.now() + ttlMs };
  }
  async resolve(token: string): Promise<string | undefined> {
    if (!SESSION_TOKEN.test(token)) return undefined;
    return (await this.redis.get(`${this.prefix}session:${hashOf(token)}`)) ?? undefined;
  }
  async close(): Promise<void> {
    // the connection is the gateway's
  }
}

// ---------------------------------------------------------------------------------------------
// Presigning
// ---------------------------------------------------------------------------------------------

/** A part number as Uppy sends it, checked: a whole number 1–10,000. */
export function parsePartNumber(text: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < MIN_PART_NUMBER || n > MAX_PART_NUMBER) {
    throw new InvalidRequestError(`part number must be a whole number from ${MIN_PART_NUMBER} to ${MAX_PART_NUMBER}, got "${text}"`);
  }
  return n;
}

/**
 * Uppy's file meta as S3 user metadata: Uppy's own fields dropped, numbers and booleans as text,
 * empty values dropped. Anything else that S3 cannot store is refused by the uploads service (400).
 */
export function userMetadataOf(meta: unknown): Record<string, string> {
  if (meta === undefined || meta === null) return {};
  if (typeof meta !== 'object' || Array.isArray(meta)) throw new InvalidRequestError('metadata must be an object of name → text');
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(meta as Record<string, unknown>)) {
    if (UPPY_META_FIELDS.has(name) || value === null || value === undefined || value === '') continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[name] = String(value);
    else throw new InvalidRequestError(`metadata "${name}" must be text, a number or a boolean`);
  }
  return out;
}

/** The length declared in the meta's {@link UPLOAD_LENGTH_META}, if any. */
export function declaredLengthOf(meta: unknown): number | undefined {
  const value = (meta as Record<string, unknown> | null | undefined)?.[UPLOAD_LENGTH_META];
  if (value === undefined || value === null || value === '') return undefined;
  const length = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw new InvalidRequestError(
      `metadata "${UPLOAD_LENGTH_META}" must be the file's size as a whole number of bytes, got ${JSON.stringify(value)}`,
    );
  }
  return length;
}

/** The client's `{ PartNumber, ETag }` list as the workflow takes it, in part order. */
export function clientPartsOf(body: unknown): ClientPart[] {
  const parts = (body as { parts?: unknown } | undefined)?.parts;
  if (!Array.isArray(parts) || parts.length === 0)
    throw new InvalidRequestError('the body must be { "parts": [{ "PartNumber": 1, "ETag": "…" }, …] } with at least one part');
  return parts
    .map((part: unknown, index) => {
      const p = (part ?? {}) as { PartNumber?: unknown; ETag?: unknown };
      const partNumber = typeof p.PartNumber === 'string' ? Number(p.PartNumber) : p.PartNumber;
      if (typeof partNumber !== 'number' || !Number.isInteger(partNumber) || partNumber < MIN_PART_NUMBER || partNumber > MAX_PART_NUMBER) {
        throw new InvalidRequestError(`parts[${index}].PartNumber must be a whole number from ${MIN_PART_NUMBER} to ${MAX_PART_NUMBER}`);
      }
      if (typeof p.ETag !== 'string' || p.ETag.length === 0)
        throw new InvalidRequestError(`parts[${index}].ETag must be the ETag S3 answered for part ${partNumber}`);
      return { partNumber, etag: p.ETag };
    })
    .sort((a, b) => a.partNumber - b.partNumber);
}

/** The object's URL as a path-style address on the public endpoint (informational: Uppy shows it). */
export function objectLocation(endpoint: string | undefined, region: string, bucket: string, key: string): string {
  const encodedKey = key.split('/').map(encodeURIComponent).join('/');
  return endpoint
    ? `${endpoint.replace(/\/+$/, '')}/${bucket}/${encodedKey}`
    : `https://${bucket}.s3.${region}.amazonaws.com/${encodedKey}`;
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/** Options of {@link s3MultipartPlugin}; every field has a default. */
export interface S3MultipartPluginOptions {
  /**
   * The S3 endpoint browsers reach, which the part URLs are signed for.
   * @default the gateway's `s3PublicEndpoint` setting, else the endpoint of the gateway's own S3 client
   */
  publicS3Endpoint?: string;
  /**
   * Longest validity of a presigned part URL, in seconds (never beyond the upload's expiry).
   * @default 900 (15 minutes)
   */
  presignExpiresInSeconds?: number;
  /**
   * Lifetime of a browser session (`POST /uppy/sessions`), in ms.
   * @default 3_600_000 (1 hour)
   */
  sessionTtlMs?: number;
  /**
   * How long `complete` waits for verify and merge before answering 202.
   * @default 60_000
   */
  completeWaitMs?: number;
  /**
   * Where sessions live.
   * @default a {@link RedisSessionStore} on the gateway's Redis, else a {@link MemorySessionStore}
   */
  sessions?: SessionStore;
}

/** What the routes need, resolved. */
interface S3MultipartRouteOptions {
  uploads: Pick<UploadsService, 'create' | 'get' | 'complete' | 'cancel'>;
  s3: S3ClientType;
  presigner: S3ClientType;
  publicS3Endpoint: string | undefined;
  region: string;
  sessions: SessionStore;
  /** Applies the tenant's request rate to session-authenticated requests (the bearer hook does it for the rest). */
  rateLimit: (tenant: string) => Promise<void>;
  presignExpiresInSeconds: number;
  sessionTtlMs: number;
  completeWaitMs: number;
}

interface UploadParams {
  uploadId: string;
}

/** The upload, which must be a presigned one; the `key` the client sent, if any, must be its key. */
async function presignedUpload(
  options: S3MultipartRouteOptions,
  tenant: string,
  uploadId: string,
  key: unknown,
): Promise<ClientUploadState> {
  const state = await options.uploads.get(tenant, uploadId);
  if (key !== undefined && key !== state.key)
    throw new InvalidRequestError(`key ${JSON.stringify(key)} is not the key of upload ${uploadId} (${state.key})`);
  if (state.mode !== 'presigned')
    throw new UploadConflictError(`upload ${uploadId} is a tus upload; its bytes go through the tus endpoint`);
  return state;
}

/** S3's multipart upload id of an upload still receiving parts. */
function receivingMultipartId(state: ClientUploadState): string {
  if (state.outcome !== 'running' || state.phase !== 'receive-parts' || !state.multipartUploadId) {
    throw new UploadConflictError(
      `upload ${state.uploadId} does not receive parts any more (phase ${state.phase}, outcome ${state.outcome})`,
    );
  }
  if (Date.now() >= state.expiresAt)
    throw new UploadGoneError(state.uploadId, 'expired', `it expired at ${new Date(state.expiresAt).toISOString()}`);
  return state.multipartUploadId;
}

/**
 * The Uppy-compatible endpoints as a gateway plugin: `POST /uppy/sessions`, and the `/s3/...`
 * routes both under `/uppy` (bearer token, the gateway's hook) and under `/uppy/session/:session`
 * (the session in the path, for @uppy/aws-s3 v6's `companionEndpoint`).
 */
export function s3MultipartPlugin(pluginOptions: S3MultipartPluginOptions = {}): GatewayPlugin {
  return async (app, { uploads, s3, redis, config }) => {
    const publicS3Endpoint = pluginOptions.publicS3Endpoint ?? config.s3PublicEndpoint;
    const presigner = await createPresignerFor(s3, publicS3Endpoint);
    const sessions = pluginOptions.sessions ?? (redis ? new RedisSessionStore(redis) : new MemorySessionStore());
    const limiter: RateLimiter = redis ? new RedisRateLimiter(redis) : new MemoryRateLimiter();
    app.addHook('onClose', async () => {
      if (presigner !== s3) presigner.destroy();
    });
    registerS3MultipartRoutes(app, {
      uploads,
      s3,
      presigner,
      publicS3Endpoint: publicS3Endpoint ?? (await endpointOf(s3)),
      region: await s3.config.region(),
      sessions,
      rateLimit: async (tenant) => {
        const { requestsPerSecond } = tenantSettings(config, tenant);
        const decision = await limiter.take(tenant, requestsPerSecond);
        if (!decision.allowed) throw new RateLimitedError(decision.retryAfterSeconds, requestsPerSecond);
      },
      presignExpiresInSeconds: pluginOptions.presignExpiresInSeconds ?? 900,
      sessionTtlMs: pluginOptions.sessionTtlMs ?? 3_600_000,
      completeWaitMs: pluginOptions.completeWaitMs ?? 60_000,
    });
  };
}

/** The URL of an S3 client's configured endpoint, if it has one. */
async function endpointOf(s3: S3ClientType): Promise<string | undefined> {
  const endpoint = await s3.config.endpoint?.();
  if (!endpoint) return undefined;
  return `${endpoint.protocol}//${endpoint.hostname}${endpoint.port ? `:${endpoint.port}` : ''}${endpoint.path === '/' ? '' : endpoint.path}`;
}

/**
 * The client that signs part URLs: the gateway's own when browsers reach the same endpoint, else
 * one with the same region and credentials signing for `publicEndpoint`. Neither adds a checksum
 * to the signature (a browser PUT carries none; parts are verified by ListParts and ETag).
 */
async function createPresignerFor(s3: S3ClientType, publicEndpoint: string | undefined): Promise<S3ClientType> {
  if (!publicEndpoint || publicEndpoint === (await endpointOf(s3))) {
    if ((await s3.config.requestChecksumCalculation()) === 'WHEN_REQUIRED') return s3;
  }
  return new S3Client({
    region: await s3.config.region(),
    ...(publicEndpoint ? { endpoint: publicEndpoint } : {}),
    credentials: s3.config.credentials,
    forcePathStyle: s3.config.forcePathStyle ?? false,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function registerS3MultipartRoutes(app: FastifyInstance, options: S3MultipartRouteOptions): void {
  app.post('/uppy/sessions', async (request, reply) => {
    const session = await options.sessions.issue(request.tenant, options.sessionTtlMs);
    return reply
      .code(201)
      .send({ companionEndpoint: `${app.prefix}/uppy/session/${session.token}`, expiresAt: new Date(session.expiresAt).toISOString() });
  });

  const routes = (prefix: string, sessionAuth: boolean) => {
    // Session routes are public to the bearer hook: the session in the path authenticates them.
    const routeConfig = { config: { public: sessionAuth } };
    const tenantOf = async (request: FastifyRequest): Promise<string> => {
      if (!sessionAuth) return request.tenant;
      const token = (request.params as { session?: string }).session ?? '';
      const tenant = await options.sessions.resolve(token);
      if (!tenant) throw new UnauthorizedError('the upload session is unknown or expired; ask POST /uppy/sessions for a new one');
      await options.rateLimit(tenant);
      request.tenant = tenant;
      return tenant;
    };

    app.get(`${prefix}/s3/params`, routeConfig, async (request) => {
      await tenantOf(request);
      throw new InvalidRequestError(
        'single-request uploads are not offered: every upload is a multipart saga. Set shouldUseMultipart: true in @uppy/aws-s3 (a file under 5 MiB is then one part); send empty files with tus',
      );
    });

    app.post<{ Body: { filename?: unknown; type?: unknown; metadata?: unknown } | undefined }>(
      `${prefix}/s3/multipart`,
      routeConfig,
      async (request) => {
        const tenant = await tenantOf(request);
        const body = request.body ?? {};
        if (body.filename !== undefined && typeof body.filename !== 'string') throw new InvalidRequestError('filename must be text');
        if (body.type !== undefined && typeof body.type !== 'string') throw new InvalidRequestError('type must be a MIME type as text');
        const length = declaredLengthOf(body.metadata);
        const state = await options.uploads.create({
          tenant,
          mode: 'presigned',
          ...(length !== undefined ? { length } : {}),
          ...(body.filename ? { filename: body.filename } : {}),
          ...(body.type ? { contentType: body.type } : {}),
          metadata: userMetadataOf(body.metadata),
        });
        return { uploadId: state.uploadId, key: state.key, bucket: state.bucket, expiresAt: new Date(state.expiresAt).toISOString() };
      },
    );

    app.get<{ Params: UploadParams & { partNumber: string }; Querystring: { key?: string } }>(
      `${prefix}/s3/multipart/:uploadId/:partNumber`,
      routeConfig,
      async (request) => {
        const tenant = await tenantOf(request);
        const partNumber = parsePartNumber(request.params.partNumber);
        const state = await presignedUpload(options, tenant, request.params.uploadId, request.query.key);
        const multipartUploadId = receivingMultipartId(state);
        const remaining = Math.floor((state.expiresAt - Date.now()) / 1000);
        const expiresIn = Math.max(1, Math.min(options.presignExpiresInSeconds, remaining));
        const url = await getSignedUrl(
          options.presigner,
          new UploadPartCommand({ Bucket: state.bucket, Key: state.key, UploadId: multipartUploadId, PartNumber: partNumber }),
          { expiresIn },
        );
        return { url, expires: expiresIn };
      },
    );

    app.get<{ Params: UploadParams; Querystring: { key?: string } }>(`${prefix}/s3/multipart/:uploadId`, routeConfig, async (request) => {
      const tenant = await tenantOf(request);
      const state = await presignedUpload(options, tenant, request.params.uploadId, request.query.key);
      const multipartUploadId = receivingMultipartId(state);
      const parts = await listAllParts(options.s3, { bucket: state.bucket, key: state.key, uploadId: multipartUploadId });
      return parts.map((part) => ({ PartNumber: part.PartNumber, Size: part.Size, ETag: part.ETag }));
    });

    app.post<{ Params: UploadParams; Querystring: { key?: string }; Body: unknown }>(
      `${prefix}/s3/multipart/:uploadId/complete`,
      routeConfig,
      async (request, reply) => {
        const tenant = await tenantOf(request);
        const parts = clientPartsOf(request.body);
        const { uploadId } = request.params;
        await presignedUpload(options, tenant, uploadId, request.query.key);
        const state = await options.uploads.complete(tenant, uploadId, parts, { waitMs: options.completeWaitMs });
        const location = objectLocation(options.publicS3Endpoint, options.region, state.bucket, state.key);
        if (!state.result) return reply.code(202).send({ location, key: state.key, bucket: state.bucket, pending: true });
        return { location, key: state.key, bucket: state.bucket, etag: state.result.etag, size: state.result.size };
      },
    );

    app.delete<{ Params: UploadParams; Querystring: { key?: string } }>(
      `${prefix}/s3/multipart/:uploadId`,
      routeConfig,
      async (request) => {
        const tenant = await tenantOf(request);
        const { uploadId } = request.params;
        await presignedUpload(options, tenant, uploadId, request.query.key);
        const state = await options.uploads.cancel(tenant, uploadId);
        return { outcome: state.outcome };
      },
    );
  };

  routes('/uppy', false);
  routes('/uppy/session/:session', true);
}
