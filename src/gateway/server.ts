/**
 * The HTTP gateway: a fastify server where every client upload is a saga workflow. It keeps no
 * state of its own — offsets, parts, reservations and expiry live in Temporal, locks and rate
 * counters in Redis — so any number of replicas can run behind a load balancer.
 *
 * Why it is built this way:
 * - Authentication and limits are one `onRequest` hook for every route: the bearer token's
 *   SHA-256 names the tenant (`request.tenant`), then the tenant's request rate is counted (429
 *   with Retry-After beyond it). Routes opt out with `config: { public: true }` (health, a page);
 *   CORS preflights (OPTIONS) never carry credentials and are not authenticated.
 * - Protocols are fastify plugins: tus lives in tus.ts; the S3 presigned multipart endpoints and
 *   the progress stream are registered through {@link GatewayOptions.plugins}. Each plugin gets
 *   the same {@link GatewayPluginOptions} — the uploads service above all, the one way to reach
 *   an upload — and the instance is decorated with `uploads` and `gatewayConfig`.
 * - Errors are {@link GatewayError}s with their HTTP status, answered as JSON
 *   `{ error, message }` (tus routes answer in tus's own way, see tus.ts).
 * - Clients are injected (Temporal client, S3, Redis): constructed in `runGatewayFromEnv`
 *   (run.ts) or by a test, never here.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { MemoryLocker, type Locker } from '@tus/server';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { Redis } from 'ioredis';
import { hashToken, tenantSettings, type GatewayConfig } from './config';
import { GatewayError, RateLimitedError, UnauthorizedError } from './errors';
import { MemoryRateLimiter, RedisRateLimiter, type RateLimiter } from './rate-limit';
import { RedisLocker } from './redis-locker';
import { tusPlugin, type TusPluginOptions } from './tus';
import { UploadsService, type UploadsServiceOptions } from './uploads-service';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated tenant; '' on public routes and CORS preflights. */
    tenant: string;
  }
  interface FastifyContextConfig {
    /** No authentication and no rate limit for this route (health checks, static pages). */
    public?: boolean;
  }
  interface FastifyInstance {
    /** The protocol-neutral uploads API (see uploads-service.ts). */
    uploads: UploadsService;
    gatewayConfig: GatewayConfig;
  }
}

/** What every gateway plugin receives as its options. */
export interface GatewayPluginOptions {
  uploads: UploadsService;
  config: GatewayConfig;
  s3: S3Client;
  /** Present when the gateway runs with Redis (cross-replica fan-out, e.g. progress events). */
  redis?: Redis;
}

/** A protocol or feature added to the gateway, e.g. the S3 presigned multipart endpoints. */
export type GatewayPlugin = FastifyPluginAsync<GatewayPluginOptions>;

/** @see createGateway */
export interface GatewayOptions {
  config: GatewayConfig;
  /** Temporal client (with the deployment's data converter: see createTemporalClient). */
  client: Client;
  /** Task queue of the upload workers. */
  taskQueue: string;
  s3: S3Client;
  /**
   * Redis for cross-replica upload locks and rate limits. Not closed by the gateway.
   * @default undefined: in-process locks and limits (run one replica)
   */
  redis?: Redis;
  /**
   * Plugins registered after the core routes, each with {@link GatewayPluginOptions}: the place
   * for the S3 presigned multipart endpoints, the progress stream, a demo page.
   * @default []
   */
  plugins?: GatewayPlugin[];
  /** @default false */
  logger?: FastifyServerOptions['logger'];
  /** Tuning of the uploads service (call timeout, updates per run, key prefix). */
  service?: Omit<UploadsServiceOptions, 'client' | 'taskQueue' | 'config'>;
  /** tus endpoint settings (see {@link TusPluginOptions}). */
  tus?: Pick<TusPluginOptions, 'path' | 'finishWaitMs' | 'recordIntervalMs'>;
}

/** The tenant a request's bearer token (or `access_token` query parameter, for EventSource) names. */
export function authenticate(
  request: Pick<FastifyRequest, 'headers' | 'query'>,
  config: Pick<GatewayConfig, 'tokenHashes'>,
): string | undefined {
  const header = request.headers.authorization;
  const bearer = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
  const query = (request.query as Record<string, unknown> | undefined)?.access_token;
  const token = bearer ?? (typeof query === 'string' ? query : undefined);
  return token ? config.tokenHashes.get(hashToken(token)) : undefined;
}

/**
 * Builds the gateway: authentication, rate limits, `/healthz`, the tus endpoint, and `plugins`.
 * Call `listen()` on the result; `close()` stops it (the injected clients stay open).
 */
export async function createGateway(options: GatewayOptions): Promise<FastifyInstance> {
  const { config, s3, redis } = options;
  const uploads = new UploadsService({ ...options.service, client: options.client, taskQueue: options.taskQueue, config });
  const locker: Locker & { close?: () => Promise<void> } = redis
    ? await RedisLocker.create({ redis, subscriber: redis.duplicate() })
    : new MemoryLocker();
  const rateLimiter: RateLimiter = redis ? new RedisRateLimiter(redis) : new MemoryRateLimiter();

  const app = Fastify({ logger: options.logger ?? false, return503OnClosing: true });
  app.decorate('uploads', uploads);
  app.decorate('gatewayConfig', config);
  app.decorateRequest('tenant', '');
  app.addHook('onClose', async () => {
    await locker.close?.();
  });

  const tusPath = options.tus?.path ?? '/files';
  app.setErrorHandler((error, request, reply) => {
    if (request.url.startsWith(tusPath)) reply.header('Tus-Resumable', '1.0.0');
    if (error instanceof GatewayError) {
      if (error instanceof RateLimitedError) reply.header('Retry-After', String(error.retryAfterSeconds));
      if (error instanceof UnauthorizedError) reply.header('WWW-Authenticate', 'Bearer');
      return reply.code(error.status).send({ error: error.code, message: error.message });
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status < 500) return reply.code(status).send({ error: 'InvalidRequest', message: (error as Error).message });
    request.log.error({ err: error }, 'request failed');
    return reply.code(500).send({ error: 'Internal', message: 'the gateway failed; see its log' });
  });

  app.addHook('onRequest', async (request) => {
    if (request.method === 'OPTIONS' || request.routeOptions.config?.public) return;
    const tenant = authenticate(request, config);
    if (!tenant) throw new UnauthorizedError();
    request.tenant = tenant;
    const { requestsPerSecond } = tenantSettings(config, tenant);
    const decision = await rateLimiter.take(tenant, requestsPerSecond);
    if (!decision.allowed) throw new RateLimitedError(decision.retryAfterSeconds, requestsPerSecond);
  });

  app.get('/healthz', { config: { public: true } }, async (_request, reply) => {
    try {
      await options.client.withDeadline(Date.now() + 3000, () => options.client.workflowService.getSystemInfo({}));
      return { status: 'ok' };
    } catch (err) {
      return reply
        .code(503)
        .send({ status: 'unavailable', message: `Temporal does not answer: ${err instanceof Error ? err.message : String(err)}` });
    }
  });

  await app.register(tusPlugin, { ...options.tus, uploads, s3, config, locker, path: tusPath });
  for (const plugin of options.plugins ?? []) {
    await app.register(plugin, { uploads, config, s3, ...(redis ? { redis } : {}) });
  }
  return app;
}
