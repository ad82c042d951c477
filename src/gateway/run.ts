/**
 * Starting a gateway from configuration: the one place where its clients are constructed
 * (Temporal client with the deployment's data converter, S3, Redis), for the `gateway` command,
 * the demo and tests that run it as its own process.
 *
 * Why it is built this way: like `runWorkerFromEnv`, configuration is validated before anything
 * connects (a ConfigError lists every problem), and `close()` undoes what `startGateway…` made,
 * in reverse order, so nothing is left open.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Connection } from '@temporalio/client';
import { Redis } from 'ioredis';
import { loadConfig, type WorkerConfig } from '../config';
import { connectClient, createS3Client, createTemporalClient } from '../connections';
import { createLogger } from '../logging';
import { loadGatewayConfig, type GatewayConfig } from './config';
import { DEFAULT_GATEWAY_PLUGINS } from './plugins';
import { createGateway, type GatewayOptions, type GatewayServer } from './server';
import { loadTracingConfig } from '../telemetry/config';
import { startTracing } from '../telemetry/tracing';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { startMetricsServer } from '../metrics/metrics-server';

/** A listening gateway. */
export interface RunningGateway {
  /** The standalone gateway server. */
  app: GatewayServer;
  /** `http://host:port` it listens on. */
  url: string;
  /** The configuration it runs with. */
  config: GatewayConfig;
  /** Its metrics. */
  metrics: GatewayMetrics;
  /** `http://host:port/metrics` when `UPLOAD_SAGA_GATEWAY_METRICS_PORT` is set. */
  metricsUrl?: string;
  /** Stops listening (waiting for requests in flight) and closes the connections it opened. */
  close(): Promise<void>;
}

/** Options of {@link startGatewayFromEnv}. */
export interface StartGatewayOptions {
  /** Overrides of the gateway's configuration (after the environment is read). @default {} */
  config?: Partial<GatewayConfig>;
  /** @default DEFAULT_GATEWAY_PLUGINS */
  plugins?: GatewayOptions['plugins'];
  /** fastify's logger options, e.g. `false` for none. @default a pino logger from LOG_LEVEL and LOG_FORMAT (src/logging.ts) */
  logger?: GatewayOptions['logger'];
  /** A pino logger to log with. @default as for `logger` */
  loggerInstance?: GatewayOptions['loggerInstance'];
  /** Tuning of the uploads service. @default {} (with the worker's UPLOAD_SAGA_TENANT_KEY_PREFIX when set) */
  service?: GatewayOptions['service'];
  /** tus endpoint settings. @default { path: '/files' } */
  tus?: GatewayOptions['tus'];
}

/**
 * Reads the worker's Temporal/S3 variables and the gateway's own, connects, and listens.
 * @throws ConfigError listing every problem, before anything connects
 */
export async function startGatewayFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  options: StartGatewayOptions = {},
): Promise<RunningGateway> {
  const workerConfig: WorkerConfig = loadConfig(env);
  const config: GatewayConfig = { ...loadGatewayConfig(env), ...options.config };
  const tracingConfig = loadTracingConfig(env, 'upload-saga-gateway');
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const fn of closers.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    if (tracingConfig) {
      // Before the clients: they find the registered provider. Flushed last, after the server closed.
      const tracing = startTracing(tracingConfig);
      closers.push(() => tracing.shutdown());
    }
    const connection: Connection = await connectClient(workerConfig.temporal);
    closers.push(() => connection.close());
    const client = createTemporalClient(connection, workerConfig);
    const s3: S3Client = createS3Client(workerConfig.s3);
    closers.push(async () => s3.destroy());
    let redis: Redis | undefined;
    // The gateway's logger, once there is a gateway.
    const logTo: { log?: { warn(obj: object, msg: string): void; info(msg: string): void } } = {};
    if (config.redisUrl) {
      redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3 });
      closers.push(() => redis!.quit());
      // ioredis reconnects by itself, and without a listener prints every failed attempt: one line per outage instead.
      let down = false;
      redis.on('error', (err: Error) => {
        if (down) return;
        down = true;
        logTo.log?.warn({ err }, 'Redis unavailable: requests that need it answer 503 with Retry-After until it is back');
      });
      redis.on('ready', () => {
        if (!down) return;
        down = false;
        logTo.log?.info('Redis is back');
      });
    }
    const metrics = new GatewayMetrics({ tenantLabel: workerConfig.metrics.tenantLabel });
    const app = await createGateway({
      metrics,
      config,
      client,
      taskQueue: workerConfig.temporal.taskQueue,
      s3,
      ...(redis ? { redis } : {}),
      plugins: options.plugins ?? DEFAULT_GATEWAY_PLUGINS,
      ...(options.loggerInstance
        ? { loggerInstance: options.loggerInstance }
        : options.logger !== undefined
          ? { logger: options.logger }
          : { loggerInstance: createLogger(workerConfig.logging, { name: 'gateway' }) }),
      service: { ...(workerConfig.tenantKeyPrefix ? { tenantKeyPrefix: workerConfig.tenantKeyPrefix } : {}), ...options.service },
      ...(options.tus ? { tus: options.tus } : {}),
    });
    closers.push(() => app.close());
    logTo.log = app.log;
    const address = await app.listen({ host: config.host, port: config.port });
    // Metrics on a port of their own: the gateway's port is public, its /metrics would tell anyone about every tenant's traffic.
    let metricsUrl: string | undefined;
    if (workerConfig.metrics.gatewayPort !== undefined) {
      const server = await startMetricsServer({
        host: workerConfig.metrics.host,
        port: workerConfig.metrics.gatewayPort,
        sources: [{ name: 'gateway', collect: () => metrics.metrics() }],
      });
      closers.push(() => server.close());
      metricsUrl = `${server.url}/metrics`;
    }
    return { app, url: address, config, metrics, ...(metricsUrl ? { metricsUrl } : {}), close };
  } catch (err) {
    await close();
    throw err;
  }
}
