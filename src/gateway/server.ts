/**
 * The standalone gateway server: {@link uploadGateway} mounted at the root of a fastify app of its
 * own, for the `gateway` command, the demo, benchmarks and tests. Everything the gateway does
 * lives in the plugin (plugin.ts); this module only adds what a server that owns its fastify
 * instance decides: the logger, 503 while closing, and the uploads service exposed as
 * `app.uploads` for whoever started it.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Client } from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Redis } from 'ioredis';
import type { GatewayConfig } from './config';
import { mergedMarksFor, uploadGateway, type UploadGatewayOptions } from './plugin';
import { UploadsService } from './uploads-service';
import { fastifyTracingPlugin } from '../telemetry/fastify';
import { currentTracing, type Tracing } from '../telemetry/tracing';
import { GatewayMetrics } from '../metrics/gateway-metrics';

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /** The gateway's configuration, complete (see `loadGatewayConfig`). */
  config: GatewayConfig;
  /** Temporal client (with the deployment's data converter: see createTemporalClient). */
  client: Client;
  /** Task queue of the upload workers. */
  taskQueue: string;
  /** S3 client the gateway writes and lists parts with. Not closed by the gateway. */
  s3: S3Client;
  /**
   * Redis for cross-replica upload locks and rate limits. Not closed by the gateway.
   * @default undefined: in-process locks and limits (run one replica)
   */
  redis?: Redis;
  /** @default DEFAULT_GATEWAY_PLUGINS */
  plugins?: UploadGatewayOptions['plugins'];
  /** fastify's logger options (ignored with `loggerInstance`). @default false */
  logger?: FastifyServerOptions['logger'];
  /** A pino logger of the host's (see `createLogger` in src/logging.ts). @default none: `logger` */
  loggerInstance?: FastifyBaseLogger;
  /** Tuning of the uploads service (call timeout, updates per run, key prefix). @default {} */
  service?: UploadGatewayOptions['service'];
  /** tus endpoint settings. @default { path: '/files' } */
  tus?: UploadGatewayOptions['tus'];
  /** Host-side authentication instead of bearer tokens. @default bearer tokens of `config.tokenHashes` */
  authenticate?: UploadGatewayOptions['authenticate'];
  /** Trace requests (a span per request, see src/telemetry/fastify.ts). @default the tracing this process started, else none */
  tracing?: Tracing;
  /** Where the gateway records its metrics. @default a GatewayMetrics of its own */
  metrics?: UploadGatewayOptions['metrics'];
}

/** A standalone gateway: a fastify instance with the gateway at its root. */
export type GatewayServer = FastifyInstance & {
  /** The uploads service its routes use (read an upload's state, wait for its end). */
  readonly uploads: UploadsService;
  /** The configuration it runs with. */
  readonly gatewayConfig: GatewayConfig;
  /** Its metrics (serve `metrics.registry` to expose them; see docs/reference/metrics.md). */
  readonly metrics: GatewayMetrics;
};

/**
 * Builds the standalone gateway: {@link uploadGateway} at the root of a new fastify instance.
 * Call `listen()` on the result; `close()` stops it (the injected clients stay open).
 */
export async function createGateway(options: GatewayOptions): Promise<GatewayServer> {
  const { config, client, taskQueue } = options;
  const uploads = new UploadsService({ mergedMarks: mergedMarksFor(options.redis, client), ...options.service, client, taskQueue, config });
  const app = Fastify({
    ...(options.loggerInstance ? { loggerInstance: options.loggerInstance } : { logger: options.logger ?? false }),
    // Unique across replicas and restarts: a 500 answer names it, and its log lines carry it as reqId.
    genReqId: () => randomUUID(),
    return503OnClosing: true,
  }) as unknown as FastifyInstance;
  // First, so its span is the active context of every other hook and route.
  if (options.tracing ?? currentTracing()) await app.register(fastifyTracingPlugin());
  app.addHook('onRequest', async (request, reply) => {
    reply.raw.setHeader('x-request-id', request.id);
  });
  app.decorate('uploads', uploads);
  app.decorate('gatewayConfig', config);
  const metrics = options.metrics ?? new GatewayMetrics();
  app.decorate('metrics', metrics);
  await app.register(uploadGateway, {
    client,
    s3: options.s3,
    config,
    taskQueue,
    uploads,
    ...(options.redis ? { redis: options.redis } : {}),
    ...(options.plugins ? { plugins: options.plugins } : {}),
    ...(options.tus ? { tus: options.tus } : {}),
    ...(options.authenticate ? { authenticate: options.authenticate } : {}),
    metrics,
  });
  // Decorated above: `uploads` and `gatewayConfig` are there.
  return app as unknown as GatewayServer;
}
