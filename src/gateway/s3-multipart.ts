/**
 * S3 presigned multipart uploads as `@uppy/aws-s3` expects them from a Companion-style backend:
 * the browser asks the gateway to open, sign, list, complete or abort, and PUTs each part straight
 * to S3 with a short-lived presigned URL. Every upload is a gateway-upload saga (mode `presigned`).
 *
 * The routes, relative to the endpoint Uppy is given (`companionEndpoint` in @uppy/aws-s3 v6,
 * `endpoint` in v5; both append `/s3/...`), and what Uppy reads from each answer:
 *
 * | request | answer |
 * | --- | --- |
 * | `POST /s3/multipart` `{ filename, type, metadata }` | `{ uploadId, key, partSize }` |
 * | `GET /s3/multipart/:uploadId/:partNumber?key=[&size=][&checksum=]` | `{ url, expires, headers }` (presigned UploadPart) |
 * | `POST /s3/multipart/:uploadId/:partNumber/done?key=` `{ ETag, size }` | `{ partsCompleted, bytesReceived }` |
 * | `GET /s3/multipart/:uploadId?key=` | `[{ PartNumber, Size, ETag }]` (ListParts) |
 * | `POST /s3/multipart/:uploadId/complete?key=` `{ parts: [{ PartNumber, ETag }] }` | `{ location, key, bucket }` |
 * | `DELETE /s3/multipart/:uploadId?key=` | `{}` |
 * | `GET /s3/params?filename=&type=` (Uppy's single request, used for empty files) | `{ url, fields }` (see below) |
 *
 * Why it is built this way:
 * - `uploadId` is OUR upload id, never S3's: every request is looked up as the caller's upload
 *   (`upload:<tenant>:<id>`), S3's multipart upload id comes from the workflow, and the object key
 *   is the one the workflow chose (always under `<tenant>/`), so a client cannot point a signature
 *   at another tenant's upload or key, whatever it sends in `key`.
 * - A presigned URL is valid for at most `presignExpiresInSeconds` (default 15 min) and never beyond
 *   the upload's own expiry; it is signed for the PUBLIC S3 endpoint (the one browsers reach), which
 *   may differ from the gateway's own (`publicS3Endpoint`). Only UploadPart is ever signed, and it
 *   binds the part's size and checksum where known (s3-part-binding.ts), so S3 refuses at the PUT
 *   a part that is not the declared one.
 * - A client reports each finished part (`…/done`); the claim is checked against ListParts before
 *   the workflow records it, and the new state goes to the progress streams at once.
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
 * - Single-request uploads (Uppy's non-multipart path, an S3 POST policy) would bypass the saga.
 *   Uppy takes that path for empty files even with `shouldUseMultipart: true`, so `GET /s3/params`
 *   answers with the saga of an empty object and a form URL of the gateway's own
 *   (s3-multipart-empty.ts); a file declared larger is refused, saying to enable multipart.
 *
 * One job per file: s3-multipart-sessions.ts (browser sessions), s3-multipart-requests.ts (reading
 * Uppy's requests), s3-part-binding.ts (what a part URL binds), s3-multipart-empty.ts (the
 * empty-file form); this module holds the plugin and its routes.
 */
import { randomBytes } from 'node:crypto';
import { UploadPartCommand, S3Client, type S3Client as S3ClientType } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checksumField } from '../s3/checksums';
import { listAllParts, listedPart } from '../s3/list-parts';
import { sameETag } from '../s3/multipart-etag';
import type { GatewayUploadState } from '../upload/gateway-upload';
import { tenantSettings } from './config';
import {
  assertNotPaused,
  ForbiddenError,
  InvalidRequestError,
  RateLimitedError,
  UnauthorizedError,
  UploadConflictError,
  UploadGoneError,
  UploadTooLargeError,
} from './errors';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './rate-limit';
import type { GatewayPlugin } from './plugin-types';
import {
  declaredLengthOf,
  gatewayPartsOf,
  objectLocation,
  partClaimOf,
  parsePartNumber,
  queryMetadataOf,
  UPLOAD_LENGTH_META,
  userMetadataOf,
} from './s3-multipart-requests';
import { registerEmptyFileRoute } from './s3-multipart-empty';
import { checksumHeaderOf, declaredPartSizeOf, partBinding, presignedPartSize, type PartBinding } from './s3-part-binding';
import { MemorySessionStore, RedisSessionStore, type SessionStore } from './s3-multipart-sessions';
import { MemoryUploadTokenBindings, type UploadTokenBindings } from './upload-token-bindings';
import type { UploadsService } from './uploads-service';

export * from './s3-multipart-requests';
export * from './s3-multipart-sessions';
export * from './s3-part-binding';

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
  uploads: Pick<UploadsService, 'create' | 'get' | 'complete' | 'cancel' | 'recordPart'>;
  s3: S3ClientType;
  presigner: S3ClientType;
  publicS3Endpoint: string | undefined;
  region: string;
  sessions: SessionStore;
  /** Where an upload token's one upload is bound at creation. */
  uploadTokens: UploadTokenBindings;
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
): Promise<GatewayUploadState> {
  const state = await options.uploads.get(tenant, uploadId);
  if (key !== undefined && key !== state.key)
    throw new InvalidRequestError(`key ${JSON.stringify(key)} is not the key of upload ${uploadId} (${state.key})`);
  if (state.mode !== 'presigned')
    throw new UploadConflictError(`upload ${uploadId} is a tus upload; its bytes go through the tus endpoint`);
  return state;
}

/** S3's multipart upload id of an upload still receiving parts. */
function receivingMultipartId(state: GatewayUploadState): string {
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
  return async (app, { uploads, s3, redis, config, uploadTokens }) => {
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
      uploadTokens: uploadTokens ?? new MemoryUploadTokenBindings(),
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
 * one with the same region and credentials signing for `publicEndpoint`. Neither computes a
 * checksum of its own: the only one signed is the client's (`checksum`), see {@link signPart}.
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

/**
 * Creates a presigned upload from Uppy's create fields (`filename`, `type`, file meta), holding an
 * upload token to its one upload and size. `length` overrides the declared length (the empty-file path).
 */
async function createPresignedUpload(
  options: S3MultipartRouteOptions,
  request: FastifyRequest,
  tenant: string,
  fields: { filename?: unknown; type?: unknown; metadata?: unknown },
  length?: number,
): Promise<GatewayUploadState> {
  if (fields.filename !== undefined && typeof fields.filename !== 'string') throw new InvalidRequestError('filename must be text');
  if (fields.type !== undefined && typeof fields.type !== 'string') throw new InvalidRequestError('type must be a MIME type as text');
  const declaredLength = length ?? declaredLengthOf(fields.metadata);
  const partSize = presignedPartSize(declaredLength, declaredPartSizeOf(fields.metadata));
  const metadata = userMetadataOf(fields.metadata);
  // An upload token creates one upload, of at most its size (verify holds the object to the declared length).
  const scope = request.uploadToken;
  const uploadId = randomBytes(16).toString('hex');
  if (scope) {
    if (scope.maxBytes !== undefined && declaredLength === undefined)
      throw new ForbiddenError(
        `this upload token allows at most ${scope.maxBytes} bytes: declare the file's size in metadata "${UPLOAD_LENGTH_META}"`,
      );
    if (scope.maxBytes !== undefined && declaredLength !== undefined && declaredLength > scope.maxBytes)
      throw new UploadTooLargeError(`${declaredLength} bytes is more than this upload token allows (${scope.maxBytes} bytes)`);
    const bound = await options.uploadTokens.bind(scope.tokenId, uploadId, scope.expiresAt);
    if (bound !== uploadId) throw new ForbiddenError(`this upload token already created upload ${bound}; mint one token per upload`);
  }
  return options.uploads
    .create({
      tenant,
      uploadId,
      mode: 'presigned',
      ...(declaredLength !== undefined ? { length: declaredLength } : {}),
      partSize,
      ...(fields.filename ? { filename: fields.filename } : {}),
      ...(fields.type ? { contentType: fields.type } : {}),
      ...(scope?.key !== undefined ? { key: scope.key } : {}),
      metadata,
    })
    .catch(async (err: unknown) => {
      // Nothing was created: the token may create its one upload again.
      if (scope) await options.uploadTokens.release(scope.tokenId, uploadId).catch(() => undefined);
      throw err;
    });
}

/**
 * The URL of one UploadPart, binding what `binding` says: `Content-Length` and the checksum header
 * are signed (the checksum kept out of the query, so the PUT must carry it), and the headers the
 * client must send with the PUT (besides `Content-Length`, which a browser sets itself).
 */
async function signPart(
  presigner: S3ClientType,
  state: GatewayUploadState,
  multipartUploadId: string,
  partNumber: number,
  binding: PartBinding,
  expiresIn: number,
): Promise<{ url: string; headers: Record<string, string> }> {
  const checksumHeader = binding.checksum ? checksumHeaderOf(binding.checksum.algorithm) : undefined;
  const url = await getSignedUrl(
    presigner,
    new UploadPartCommand({
      Bucket: state.bucket,
      Key: state.key,
      UploadId: multipartUploadId,
      PartNumber: partNumber,
      ...(binding.size !== undefined ? { ContentLength: binding.size } : {}),
      ...(binding.checksum ? { [checksumField(binding.checksum.algorithm)]: binding.checksum.value } : {}),
    }),
    {
      expiresIn,
      signableHeaders: new Set([...(binding.size !== undefined ? ['content-length'] : []), ...(checksumHeader ? [checksumHeader] : [])]),
      ...(checksumHeader ? { unhoistableHeaders: new Set([checksumHeader]) } : {}),
    },
  );
  return { url, headers: checksumHeader && binding.checksum ? { [checksumHeader]: binding.checksum.value } : {} };
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
    // Bearer routes accept upload tokens for the one upload they create (see upload-token.ts).
    const routeConfig = { config: { public: sessionAuth, uploadToken: { uploadIdParam: 'uploadId' } } };
    const creationConfig = { config: { public: sessionAuth, uploadToken: { uploadIdParam: null } } };
    const tenantOf = async (request: FastifyRequest): Promise<string> => {
      if (!sessionAuth) return request.tenant;
      const token = (request.params as { session?: string }).session ?? '';
      const tenant = await options.sessions.resolve(token);
      if (!tenant) throw new UnauthorizedError('the upload session is unknown or expired; ask POST /uppy/sessions for a new one');
      await options.rateLimit(tenant);
      request.tenant = tenant;
      return tenant;
    };

    // Not for upload tokens (their one upload goes through /s3/multipart or tus).
    app.get<{ Querystring: Record<string, unknown> }>(`${prefix}/s3/params`, { config: { public: sessionAuth } }, async (request) => {
      const tenant = await tenantOf(request);
      const meta = queryMetadataOf(request.query);
      const declared = declaredLengthOf(meta);
      if (declared !== undefined && declared > 0) {
        throw new InvalidRequestError(
          `single-request uploads are only for empty files (metadata "${UPLOAD_LENGTH_META}" is ${declared}): every other upload is a multipart saga. Set shouldUseMultipart: true in @uppy/aws-s3 (a file under 5 MiB is then one part)`,
        );
      }
      const { filename, type } = request.query;
      const state = await createPresignedUpload(options, request, tenant, { filename, type, metadata: meta }, 0);
      const endpoint = `${app.prefix}${prefix.replace(':session', (request.params as { session?: string }).session ?? '')}`;
      return {
        method: 'POST',
        // Absolute: @uppy/aws-s3 resolves the object's location with `new URL(url)`, which needs an origin.
        url: new URL(`${endpoint}/s3/empty/${state.uploadId}`, `${request.protocol}://${request.host}`).href,
        fields: { key: state.key },
        uploadId: state.uploadId,
        key: state.key,
        bucket: state.bucket,
        expiresAt: new Date(state.expiresAt).toISOString(),
      };
    });

    registerEmptyFileRoute(app, `${prefix}/s3/empty/:uploadId`, routeConfig, {
      uploads: options.uploads,
      s3: options.s3,
      tenantOf,
      presignedUpload: (tenant, uploadId, key) => presignedUpload(options, tenant, uploadId, key),
      receivingMultipartId,
      locationOf: (state) => objectLocation(options.publicS3Endpoint, options.region, state.bucket, state.key),
      completeWaitMs: options.completeWaitMs,
    });

    app.post<{ Body: { filename?: unknown; type?: unknown; metadata?: unknown } | undefined }>(
      `${prefix}/s3/multipart`,
      creationConfig,
      async (request) => {
        const tenant = await tenantOf(request);
        const body = request.body ?? {};
        const state = await createPresignedUpload(options, request, tenant, body);
        return {
          uploadId: state.uploadId,
          key: state.key,
          bucket: state.bucket,
          expiresAt: new Date(state.expiresAt).toISOString(),
          partSize: state.partSize,
        };
      },
    );

    app.get<{ Params: UploadParams & { partNumber: string }; Querystring: { key?: string; size?: string; checksum?: string } }>(
      `${prefix}/s3/multipart/:uploadId/:partNumber`,
      routeConfig,
      async (request) => {
        const tenant = await tenantOf(request);
        const partNumber = parsePartNumber(request.params.partNumber);
        const state = await presignedUpload(options, tenant, request.params.uploadId, request.query.key);
        const binding = partBinding(state, partNumber, request.query);
        const multipartUploadId = receivingMultipartId(state);
        // Paused: no new part URL (one signed before the pause may still be used; its report waits for the resume).
        assertNotPaused(state);
        const remaining = Math.floor((state.expiresAt - Date.now()) / 1000);
        const expiresIn = Math.max(1, Math.min(options.presignExpiresInSeconds, remaining));
        return { ...(await signPart(options.presigner, state, multipartUploadId, partNumber, binding, expiresIn)), expires: expiresIn };
      },
    );

    app.get<{ Params: UploadParams; Querystring: { key?: string } }>(`${prefix}/s3/multipart/:uploadId`, routeConfig, async (request) => {
      const tenant = await tenantOf(request);
      const state = await presignedUpload(options, tenant, request.params.uploadId, request.query.key);
      const multipartUploadId = receivingMultipartId(state);
      const parts = await listAllParts(options.s3, { bucket: state.bucket, key: state.key, multipartUploadId });
      return parts.map((part) => ({ PartNumber: part.PartNumber, Size: part.Size, ETag: part.ETag }));
    });

    app.post<{ Params: UploadParams & { partNumber: string }; Querystring: { key?: string }; Body: unknown }>(
      `${prefix}/s3/multipart/:uploadId/:partNumber/done`,
      routeConfig,
      async (request) => {
        const tenant = await tenantOf(request);
        const partNumber = parsePartNumber(request.params.partNumber);
        const claim = partClaimOf(request.body);
        const { uploadId } = request.params;
        const state = await presignedUpload(options, tenant, uploadId, request.query.key);
        const multipartUploadId = receivingMultipartId(state);
        assertNotPaused(state);
        // A claim S3 does not confirm records nothing.
        const part = await listedPart(options.s3, { bucket: state.bucket, key: state.key, multipartUploadId }, partNumber);
        if (!part) throw new UploadConflictError(`S3 has no part ${partNumber} of upload ${uploadId}: PUT it before reporting it`);
        if (!sameETag(part.ETag, claim.etag))
          throw new UploadConflictError(`part ${partNumber} has ETag ${part.ETag} in S3, not ${claim.etag}: report the ETag S3 answered`);
        if (part.Size !== claim.size) throw new UploadConflictError(`part ${partNumber} has ${part.Size} bytes in S3, not ${claim.size}`);
        const recorded = await options.uploads.recordPart(tenant, uploadId, { partNumber, size: part.Size });
        return { partNumber, size: part.Size, partsCompleted: recorded.partsCompleted, bytesReceived: recorded.offset };
      },
    );

    app.post<{ Params: UploadParams; Querystring: { key?: string }; Body: unknown }>(
      `${prefix}/s3/multipart/:uploadId/complete`,
      routeConfig,
      async (request, reply) => {
        const tenant = await tenantOf(request);
        const parts = gatewayPartsOf(request.body);
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
