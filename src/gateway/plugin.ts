/**
 * The gateway as a fastify plugin, {@link uploadGateway}: a host application mounts it in its own
 * fastify app (`app.register(uploadGateway, { client, s3, prefix: '/uploads' })`) and gets the tus
 * endpoint, the S3 presigned multipart endpoints, the progress stream, the upload page and
 * the probes (`/livez`, `/readyz`, `/healthz`), every upload a saga workflow. The standalone server (server.ts) is this plugin in a
 * fastify app of its own.
 *
 * Invariants:
 * - Encapsulated on purpose (no fastify-plugin): the authentication and rate-limit `onRequest`
 *   hook, the error handler, the `tenant` request decorator and tus's raw-body content-type parser
 *   apply to the gateway's routes only, never to the host app's other routes. Fastify's `prefix`
 *   register option moves every gateway route under it.
 * - Authentication and limits are one `onRequest` hook: the bearer token — a static tenant token,
 *   an identity provider's JWT or an upload token (auth.ts) — names the tenant (`request.tenant`),
 *   then the tenant's request rate is counted (429 with Retry-After beyond it), then an upload
 *   token is held to its one upload (403 outside it). A second `onRequest` hook then caps the
 *   request bodies received at once (body-streams.ts). Refusals answer 401 or 403 with the reason
 *   and an RFC 6750 `WWW-Authenticate` challenge. Routes opt out with `config: { public: true }`
 *   (health, the page); CORS preflights (OPTIONS) never carry credentials and are not authenticated.
 * - The gateway keeps no state of its own (offsets, parts, reservations and expiry live in
 *   Temporal; locks and rate counters in Redis when given), so any number of replicas can run.
 * - Errors are {@link GatewayError}s with their HTTP status, answered as JSON `{ error, message }`
 *   (tus routes answer in tus's own way, see tus.ts).
 * - Clients (Temporal, S3, Redis) are injected and never closed here: their owner closes them.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { MemoryLocker, type Locker } from '@tus/server';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { bearerToken, checkUploadTokenScope, createAuthenticator } from './auth';
import { hashToken, loadGatewayConfig, tenantSettings, type GatewayConfig } from './config';
import { cachedCheck, readiness, s3BucketProbe, type CheckResult } from '../health';
import { MemoryBodyStreamLeases, RedisBodyStreamLeases } from './body-stream-leases';
import { limitBodyStreams } from './body-streams';
import {
  bearerChallenge,
  BodyStreamsFullError,
  ForbiddenError,
  GatewayError,
  IdentityProviderUnavailableError,
  RateLimitedError,
  RedisUnavailableError,
  UnauthorizedError,
  UploadPausedError,
} from './errors';
import type { GatewayPlugin } from './plugin-types';
import { DEFAULT_GATEWAY_PLUGINS } from './plugins';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './rate-limit';
import { RedisLocker } from './redis-locker';
import { MemoryMergedMarks, RedisMergedMarks, type MergedMarks } from './merged-marks';
import { registerPauseRoutes } from './pause-route';
import { tusPlugin, type TusPluginOptions } from './tus';
import { MemoryUploadTokenBindings, RedisUploadTokenBindings, type UploadTokenBindings } from './upload-token-bindings';
import { UploadsService, type UploadsServiceOptions } from './uploads-service';
import { GatewayMetrics, recordGatewayRequests } from '../metrics/gateway-metrics';

/** The task queue uploads are started on unless {@link UploadGatewayOptions.taskQueue} says otherwise. */
export const DEFAULT_TASK_QUEUE = 'upload-saga';

/** Options of {@link uploadGateway}; fastify's own `prefix` (and `logLevel`) may be given alongside. */
export interface UploadGatewayOptions {
  /** Temporal client, with the deployment's data converter (see `createTemporalClient`). Not closed by the gateway. */
  client: Client;
  /** S3 client the gateway writes tus parts and lists parts with. Not closed by the gateway. */
  s3: S3Client;
  /**
   * The gateway's configuration; missing fields take the defaults of {@link loadGatewayConfig}
   * with an empty environment. `tokenHashes` (tenant by SHA-256 of its bearer token) is empty by
   * default: then every request is refused unless {@link UploadGatewayOptions.authenticate} is given.
   * @default {} (all defaults)
   */
  config?: Partial<GatewayConfig>;
  /**
   * Task queue of the upload workers.
   * @default 'upload-saga' (the worker's `TEMPORAL_TASK_QUEUE` default)
   */
  taskQueue?: string;
  /**
   * Redis for cross-replica upload locks, rate limits, sessions and progress fan-out. Not closed by the gateway.
   * @default undefined: in-process locks and limits (run one replica)
   */
  redis?: Redis;
  /**
   * The tenant a request acts for, or undefined to refuse it (401): replace the gateway's bearer
   * tokens (static, JWT, upload tokens) with the host app's own authentication.
   * @default the bearer token (or `access_token` query parameter) as a static token (`config.tokenHashes`),
   *   an upload token (`config.uploadTokenSecret`) or an identity provider's JWT (`config.jwt`), see auth.ts
   */
  authenticate?: (request: FastifyRequest) => string | undefined | Promise<string | undefined>;
  /**
   * Plugins registered after the core routes (healthz, tus), each with {@link GatewayPluginOptions}.
   * @default DEFAULT_GATEWAY_PLUGINS: S3 presigned multipart (`/uppy`), progress (`/uploads/:id/events`), the page (`/`)
   */
  plugins?: GatewayPlugin[];
  /**
   * The uploads service the routes use, when the host app wants to hold it too (e.g. to read an
   * upload's state from its own routes). Give it `mergedMarks` for prompt reads of merged uploads:
   * `mergedMarksFor(redis, client)` (Redis marks are required when several replicas serve the uploads).
   * @default one built from `client`, `taskQueue`, `config` and `service`, with `mergedMarksFor(redis, client)`
   */
  uploads?: UploadsService;
  /**
   * Tuning of the uploads service (call timeout, updates per run, tenant key prefix).
   * @default {} (the service's defaults)
   */
  service?: Omit<UploadsServiceOptions, 'client' | 'taskQueue' | 'config'>;
  /**
   * tus endpoint settings (see {@link TusPluginOptions}); `path` is relative to the prefix.
   * @default { path: '/files' }
   */
  tus?: Pick<TusPluginOptions, 'path' | 'finishWaitMs' | 'recordIntervalMs'>;
  /**
   * Where the gateway's metrics are recorded: pass your own (e.g. `new GatewayMetrics({ registry })`
   * over your app's prom-client registry) to expose them from your app. The gateway serves no
   * `/metrics` route itself: its port is public, metrics are for the operator (see docs/reference/metrics.md).
   * @default a GatewayMetrics of its own (recorded, not exposed)
   */
  metrics?: GatewayMetrics;
}

/** The gateway's configuration: `partial` over the defaults. */
export function resolveGatewayConfig(partial: Partial<GatewayConfig> = {}): GatewayConfig {
  return { ...loadGatewayConfig({}), ...partial };
}

/**
 * Where the uploads service marks merged uploads: in Redis when replicas share one, else in this
 * replica's memory. None in Redis when `client` encodes payloads with a codec (encryption): a mark
 * holds the upload's state (object key, the client's metadata) in plain text, which would put
 * outside Temporal what the codec keeps encrypted there; reads then ask the workflow.
 */
export function mergedMarksFor(redis: Redis | undefined, client?: Pick<Client, 'options'>): MergedMarks | undefined {
  if (!redis) return new MemoryMergedMarks();
  return client && client.options.loadedDataConverter.payloadCodecs.length > 0 ? undefined : new RedisMergedMarks(redis);
}

/** The tenant a request's static bearer token (or `access_token` query parameter, for EventSource) names. */
export function authenticate(
  request: Pick<FastifyRequest, 'headers' | 'query'>,
  config: Pick<GatewayConfig, 'tokenHashes'>,
): string | undefined {
  const token = bearerToken(request);
  return token ? config.tokenHashes.get(hashToken(token)) : undefined;
}

/**
 * The upload gateway as an encapsulated fastify plugin: `/healthz`, the tus endpoint and
 * {@link UploadGatewayOptions.plugins}, behind bearer authentication and per-tenant rate limits
 * that apply to these routes only.
 */
export const uploadGateway: FastifyPluginAsync<UploadGatewayOptions> = async (app, options) => {
  const config = resolveGatewayConfig(options.config);
  const { s3, redis, client } = options;
  const uploads =
    options.uploads ??
    new UploadsService({
      mergedMarks: mergedMarksFor(redis, client),
      ...options.service,
      client,
      taskQueue: options.taskQueue ?? DEFAULT_TASK_QUEUE,
      config,
    });
  const locker: Locker & { close?: () => Promise<void> } = redis
    ? await RedisLocker.create({ redis, subscriber: redis.duplicate() })
    : new MemoryLocker();
  const rateLimiter: RateLimiter = redis ? new RedisRateLimiter(redis) : new MemoryRateLimiter();
  const uploadTokens: UploadTokenBindings = redis ? new RedisUploadTokenBindings(redis) : new MemoryUploadTokenBindings();
  const authenticator = createAuthenticator(config);
  const custom = options.authenticate;
  const metrics = options.metrics ?? new GatewayMetrics();
  // Counted and logged (a listener also keeps ioredis from printing "Unhandled error event").
  const onRedisError = (err: unknown) => {
    metrics.redisError();
    app.log.warn({ err }, 'redis error');
  };
  redis?.on('error', onRedisError);

  app.decorateRequest('tenant', '');
  app.decorateRequest('uploadToken', null);
  app.addHook('onClose', async () => {
    redis?.off('error', onRedisError);
    await locker.close?.();
  });

  const tusPath = options.tus?.path ?? '/files';
  const tusUrlPrefix = `${app.prefix}${tusPath}`;
  recordGatewayRequests(app, metrics, tusUrlPrefix);
  app.setErrorHandler((error, request, reply) => {
    if (request.url.startsWith(tusUrlPrefix)) reply.header('Tus-Resumable', '1.0.0');
    if (error instanceof GatewayError) {
      if (error instanceof RateLimitedError || error instanceof RedisUnavailableError || error instanceof BodyStreamsFullError)
        reply.header('Retry-After', String(error.retryAfterSeconds));
      if (error instanceof UnauthorizedError || error instanceof ForbiddenError) reply.header('WWW-Authenticate', bearerChallenge(error));
      // The operator's side of a 503 the client sees: why the key set could not be fetched (never a token).
      if (error instanceof IdentityProviderUnavailableError)
        request.log.warn({ err: error.cause }, 'identity provider key set unavailable');
      return reply
        .code(error.status)
        .send({ error: error.code, message: error.message, ...(error instanceof UploadPausedError ? { pause: error.pause } : {}) });
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status < 500) return reply.code(status).send({ error: 'InvalidRequest', message: (error as Error).message });
    // The answer names the request id of this line (every line of the request carries it as reqId).
    request.log.error({ err: error, requestId: request.id }, 'request failed');
    return reply
      .code(500)
      .send({ error: 'Internal', message: `the gateway failed; see its log (request id ${request.id})`, requestId: request.id });
  });

  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS' || request.routeOptions.config?.public) return;
    let tenant: string | undefined;
    if (custom) {
      tenant = await custom(request);
      if (!tenant) throw new UnauthorizedError();
    } else {
      const credential = await authenticator(request);
      tenant = credential.tenant;
      if (credential.kind === 'upload-token') request.uploadToken = credential.scope;
    }
    request.tenant = tenant;
    const { requestsPerSecond } = tenantSettings(config, tenant);
    const decision = await rateLimiter.take(tenant, requestsPerSecond);
    if (!decision.allowed) throw new RateLimitedError(decision.retryAfterSeconds, requestsPerSecond);
    if (request.uploadToken)
      await checkUploadTokenScope(request, request.routeOptions.config?.uploadToken, request.uploadToken, uploadTokens);
  });

  // Bodies received at once, per tenant and per replica, and idle bodies ended: the memory bound (body-streams.ts).
  limitBodyStreams(app, { config, metrics, leases: redis ? new RedisBodyStreamLeases(redis) : new MemoryBodyStreamLeases() });

  // Readiness: each dependency checked with a timeout, cached so that probe storms do not reach it.
  const temporalCheck = cachedCheck(() => client.withDeadline(Date.now() + 2000, () => client.workflowService.getSystemInfo({})));
  const checks: Record<string, () => Promise<CheckResult>> = {
    temporal: temporalCheck,
    s3: cachedCheck(s3BucketProbe(s3, config.bucket)),
    ...(redis ? { redis: cachedCheck(() => redis.ping()) } : {}),
  };
  app.get('/livez', { config: { public: true }, logLevel: 'warn' }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { public: true }, logLevel: 'warn' }, async (request, reply) => {
    const { ready, checks: results } = await readiness(checks);
    if (!ready) request.log.warn({ checks: results }, 'gateway not ready');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks: results });
  });

  // The older probe: Temporal only, through the same cached check as /readyz.
  app.get('/healthz', { config: { public: true } }, async (_request, reply) => {
    const temporal = await temporalCheck();
    if (temporal.status === 'up') return { status: 'ok' };
    return reply.code(503).send({ status: 'unavailable', message: `Temporal does not answer: ${temporal.message}` });
  });

  await app.register(tusPlugin, {
    ...options.tus,
    uploads,
    s3,
    config,
    locker,
    // Without Redis the lock is in-process: no other replica can serve these uploads.
    onlyReplica: !redis,
    uploadTokens,
    path: tusPath,
    onUploadEnded: (tenant, outcome) => metrics.uploadOutcome('tus', outcome, tenant),
  });
  registerPauseRoutes(app, uploads);
  for (const plugin of options.plugins ?? DEFAULT_GATEWAY_PLUGINS) {
    await app.register(plugin, { uploads, config, s3, metrics, uploadTokens, ...(redis ? { redis } : {}) });
  }
};
