/**
 * The upload worker: the one place where clients are constructed and wired into activities.
 *
 * `createUploadWorker` is for embedding (tests, the CLI, your own process); running this file
 * starts a worker configured from the environment (see config.ts), validated before connecting.
 *
 * Workflow code: the published package ships it bundled ({@link SHIPPED_WORKFLOW_BUNDLES}, built
 * by `npm run build`), so a worker from dist/ starts without webpack. Run from the TypeScript
 * sources (tsx, vitest) there is no such bundle and the workflows are bundled at start, as they are
 * when you pass `workflowsPath` (your own workflows file re-exporting `upload-saga/workflows`).
 *
 * @packageDocumentation
 */
import {
  bundleWorkflowCode,
  DefaultLogger,
  Worker,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
  type WorkerOptions,
} from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import type { S3Client } from '@aws-sdk/client-s3';
import { createActivities, type UploadActivities } from './activities';
import { HttpUrlResolver } from './activities/sources/http-url';
import { LocalFileResolver } from './activities/sources/local-file';
import { SourceRegistry } from './activities/sources/registry';
import { S3ObjectResolver } from './activities/sources/s3-object';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { siblingModule } from './module-path';
import { loadConfig, type WorkerConfig } from './config';
import { connectClient, connectWorker, createProgressRedis, createS3Client, createTemporalClient } from './connections';
import { createProgressPublisher, rateLimitedErrors, type ProgressPublisher } from './progress/publisher';
import { createProgressInterceptor } from './progress/activity-progress';
import { assertBundleEncryptsFailures, ENCRYPTED_FAILURE_CONVERTER_PATH, uploadDataConverter } from './codec/data-converter';
import { TemporalQuotaLedger } from './quota/temporal-ledger';
import { workflowPauseProbe } from './activities/deps';
import type { QuotaLedger } from './quota/ledger';
import { sagaWorkerInterceptors, sagaWorkflowInterceptorsPath } from './saga/activity';
import { createLogger, installTemporalLogging } from './logging';
import { startWorkerHealthServer } from './health';
import { loadTracingConfig } from './telemetry/config';
import { tracingActivityInterceptors, tracingWorkflowInterceptorsPath, workflowSpanSinks } from './telemetry/temporal';
import { currentTracing, startTracing, type Tracing } from './telemetry/tracing';
import { WorkerMetrics } from './metrics/worker-metrics';
import { createMetricsActivityInterceptor } from './metrics/activity-interceptor';
import { instrumentS3Client } from './metrics/s3-middleware';
import { uploadMetricsSinks } from './metrics/worker-sinks';
import { httpMetricsSource, startMetricsServer, type MetricsServer } from './metrics/metrics-server';
import { findFreePort } from './embedded/free-port';
import { CircuitBreakers, onBreakerStateChange } from './resilience/circuit-breakers';
import { s3BreakerTarget, withS3CircuitBreaker } from './s3/circuit-breaker';

// The rest of the `upload-saga/worker` entry point: the parts to register the upload activities
// and workflows on a worker of your own.
export { createActivities, type UploadActivities, type UploadActivityDeps, type WebhookOptions } from './activities';
export { SourceRegistry, type SourceResolvers } from './activities/sources/registry';
export { LocalFileResolver, type LocalFileSourceOptions } from './activities/sources/local-file';
export { HttpUrlResolver, type HttpSourceOptions } from './activities/sources/http-url';
export { S3ObjectResolver, type S3ObjectResolverOptions } from './activities/sources/s3-object';
export type { ByteSource, SourceResolver, SourceStat } from './activities/sources/byte-source';
export { sagaWorkerInterceptors, sagaWorkflowInterceptorsPath, type RetryInterceptorOptions } from './saga/activity';
export { loadConfig, ConfigError, type WorkerConfig } from './config';
export { connectClient, connectWorker, createProgressRedis, createS3Client, createTemporalClient } from './connections';
export {
  createProgressPublisher,
  type ProgressPublisher,
  type ProgressPublisherOptions,
  type ProgressPublisherStats,
} from './progress/publisher';
export { TemporalQuotaLedger } from './quota/temporal-ledger';
export {
  CircuitBreakers,
  CircuitOpenError,
  onBreakerStateChange,
  type BreakerState,
  type BreakerStateListener,
  type CircuitBreakerOptions,
} from './resilience/circuit-breakers';
export type { QuotaLedger } from './quota/ledger';
export { startTracing, currentTracing, type Tracing, type StartTracingOptions } from './telemetry/tracing';
export { loadTracingConfig, type TracingConfig } from './telemetry/config';
export { tracingWorkflowInterceptorsPath, workflowSpanSinks } from './telemetry/temporal';
export { WorkerMetrics, type WorkerMetricsOptions, type CircuitBreakerState, type PartMetrics } from './metrics/worker-metrics';
export { uploadMetricsSinks } from './metrics/worker-sinks';
export type { UploadMetricsSinks, UploadEndedReport, UploadKind } from './metrics/upload-sinks';
export { createMetricsActivityInterceptor } from './metrics/activity-interceptor';
export { instrumentS3Client } from './metrics/s3-middleware';
export {
  startMetricsServer,
  httpMetricsSource,
  type MetricsServer,
  type MetricsServerOptions,
  type MetricsSource,
} from './metrics/metrics-server';

/** The SDK's default `maxConcurrentWorkflowTaskExecutions`. */
const SDK_WORKFLOW_TASK_SLOTS = 40;

/** Path of the upload workflows module, for `workflowsPath` or `bundleWorkflowCode`. */
export const workflowsPath = siblingModule(__dirname, './workflows');

/**
 * Paths of the workflow bundles `npm run build` writes next to this module: `plain`, and
 * `encryptedFailures` (with the encrypting failure converter, for `config.encryption`). Each is
 * the upload workflows plus the saga's workflow interceptors. They exist in the published package,
 * not in a source checkout.
 */
export const SHIPPED_WORKFLOW_BUNDLES = {
  plain: path.join(__dirname, 'workflow-bundle.js'),
  encryptedFailures: path.join(__dirname, 'workflow-bundle-encrypted-failures.js'),
} as const;

/**
 * The shipped workflow bundle a worker with (`encrypted`) or without encryption uses.
 * @returns undefined where there is none (running from the TypeScript sources)
 */
export function shippedWorkflowBundle(encrypted: boolean): { codePath: string } | undefined {
  const codePath = encrypted ? SHIPPED_WORKFLOW_BUNDLES.encryptedFailures : SHIPPED_WORKFLOW_BUNDLES.plain;
  return existsSync(codePath) ? { codePath } : undefined;
}

/** Options of {@link createUploadWorker}. */
export interface UploadWorkerOptions {
  /** The worker's configuration, e.g. from {@link loadConfig}. */
  config: WorkerConfig;
  /** Connection to Temporal (see {@link connectWorker}). */
  connection: NativeConnection;
  /** Client used by the quota ledger's Update-with-Start. */
  client: Client;
  /** The S3 client uploads are written with (see {@link createS3Client}). */
  s3: S3Client;
  /** Replace the embedded quota ledger. @default TemporalQuotaLedger on the worker's task queue */
  quota?: QuotaLedger;
  /**
   * The activities to register. @default createActivities() over the injected clients, local-file
   * sources under `config.allowedRoots`, URL sources, S3-object sources (the worker's own store and
   * `config.s3SourceProfiles`), and the quota ledger
   */
  activities?: UploadActivities;
  /**
   * Your own activities, registered next to the upload activities (for your own workflows, see
   * `workflowsPath`). Names must not clash with the upload activities'.
   * @default {}
   */
  extraActivities?: Record<string, (...args: never[]) => Promise<unknown>>;
  /**
   * Pre-built workflow bundle (see {@link bundleUploadWorkflows}), to skip bundling per worker. With
   * `config.encryption`, build it with `{ encryptFailureMessages: true }`, or failures raised in
   * workflow code keep their messages in plain text.
   * @default the shipped bundle ({@link SHIPPED_WORKFLOW_BUNDLES}) unless `workflowsPath` is given;
   * without one (running from sources), the workflows are bundled at start
   */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /**
   * Your own workflows file, bundled at start with the saga's workflow interceptors (and the
   * encrypting failure converter with `config.encryption`): re-export `upload-saga/workflows` from
   * it to run the upload workflows next to your own. Ignored when `workflowBundle` is given.
   * @default undefined (the shipped bundle of the upload workflows)
   */
  workflowsPath?: string;
  /**
   * Where the worker's application metrics are recorded (workflow outcomes through sinks, activity
   * attempts through an interceptor, S3 errors through a middleware on `s3`, parts by upload-parts).
   * @default a WorkerMetrics of its own (recorded, not exposed: serve `metrics.registry` to expose them)
   */
  metrics?: WorkerMetrics;
  /** Extra worker options (e.g. `identity`). */
  workerOptions?: Partial<WorkerOptions>;
  /**
   * Tracing to run the activities in and export the workflow's spans through (see src/telemetry).
   * @default the tracing this process started ({@link startTracing}), else none (workflow spans dropped by a no-op sink)
   */
  tracing?: Tracing;
  /**
   * Circuit breakers (see src/resilience/circuit-breakers.ts): the injected `s3` client gets the
   * breaker of its endpoint as a middleware, and webhooks pass the breaker of their host.
   * `runWorkerFromEnv` builds them from `config.breaker`.
   * @default undefined (no breakers)
   */
  breakers?: CircuitBreakers;
  /**
   * Publishes live progress of every upload (activity phases, upload-parts bytes) on the progress
   * bus (see src/progress/publisher.ts); not closed by the worker. Ignored for `activities` you
   * build yourself, apart from the phases. @default undefined (none published)
   */
  progress?: ProgressPublisher;
  /**
   * How often a running batch of parts asks whether its upload was paused (its workflow's
   * `pauseState` query, through `client`). Ignored for `activities` you build yourself.
   * @default 5000
   */
  pausePollMs?: number;
}

/**
 * Creates a worker that runs the upload workflows and activities on `config.temporal.taskQueue`;
 * call `run()` on it. The injected clients are not closed by the worker.
 * @throws EncryptionMisconfiguredError when `config.encryption` is set and `workflowBundle` lacks the encrypting failure converter
 */
export async function createUploadWorker(options: UploadWorkerOptions): Promise<Worker> {
  const { config, breakers } = options;
  const metrics = options.metrics ?? new WorkerMetrics({ tenantLabel: config.metrics?.tenantLabel ?? false });
  instrumentS3Client(options.s3, metrics);
  if (breakers) withS3CircuitBreaker(options.s3, breakers, s3BreakerTarget(config.s3));
  // One client per source profile: single uploads read through them, migrations list and read through them.
  const sourceStores = Object.fromEntries(
    Object.entries(config.s3SourceProfiles).map(([name, profile]) => [
      name,
      createS3Client({ ...profile, idleTimeoutMs: config.s3.idleTimeoutMs }),
    ]),
  );
  const activities =
    options.activities ??
    createActivities({
      s3: options.s3,
      sources: new SourceRegistry({
        file: new LocalFileResolver({ allowedRoots: config.allowedRoots }),
        url: new HttpUrlResolver({ allowedHosts: config.urlSources.allowedHosts }),
        // S3 objects: in the worker's own store (copied server-side), or behind a configured profile.
        s3: new S3ObjectResolver({
          store: options.s3,
          profiles: sourceStores,
        }),
      }),
      sourceStores,
      quota:
        options.quota ??
        new TemporalQuotaLedger({
          client: options.client,
          taskQueue: config.temporal.taskQueue,
          limits: config.quota,
          // Reservations wait in local activities, each holding a workflow-task slot: half stay free for the ledger.
          maxWaitingReservations: Math.max(
            1,
            Math.floor((options.workerOptions?.maxConcurrentWorkflowTaskExecutions ?? SDK_WORKFLOW_TASK_SLOTS) / 2),
          ),
        }),
      webhook: config.webhook,
      allowedRoots: config.allowedRoots,
      ...(config.tenantKeyPrefix ? { tenantKeyPrefix: config.tenantKeyPrefix } : {}),
      ...(config.s3.rules ? { storeRules: config.s3.rules } : {}),
      metrics,
      ...(breakers ? { breakers } : {}),
      ...(options.progress ? { progress: options.progress } : {}),
      pauses: workflowPauseProbe(options.client, options.pausePollMs),
    });
  const saga = sagaWorkerInterceptors();
  const tracing = options.tracing ?? currentTracing();
  // Tracing's activity interceptor first (the outermost: its span covers the others), then metrics, the
  // saga's retry hints, and live progress (each upload activity's phase as it starts).
  const interceptors = {
    workflowModules: [...(saga.workflowModules ?? []), tracingWorkflowInterceptorsPath],
    activity: [
      ...(tracing ? tracingActivityInterceptors() : []),
      createMetricsActivityInterceptor(metrics),
      ...(saga.activity ?? []),
      ...(options.progress ? [createProgressInterceptor(options.progress)] : []),
    ],
  };
  // Encryption: every payload through the AES-GCM codec, failure messages into encrypted payloads.
  const dataConverter = uploadDataConverter(config.encryption);
  const workflowBundle = options.workflowBundle ?? (options.workflowsPath ? undefined : shippedWorkflowBundle(dataConverter !== undefined));
  if (dataConverter && workflowBundle) assertBundleEncryptsFailures(workflowBundle);
  return Worker.create({
    connection: options.connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: options.workflowsPath ?? workflowsPath }),
    activities: { ...options.extraActivities, ...activities },
    // A pre-built bundle already contains the workflow interceptor modules.
    interceptors: workflowBundle ? { activity: interceptors.activity } : interceptors,
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    // Heartbeats carry progress: send them often enough for a live progress bar and fast cancellation.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    ...(dataConverter ? { dataConverter } : {}),
    ...options.workerOptions,
    // The upload workflows call the metrics sink and the tracing interceptors' span sink (a no-op
    // without tracing): both stay registered beside any sinks of yours.
    sinks: { ...workflowSpanSinks(tracing), ...options.workerOptions?.sinks, ...uploadMetricsSinks(metrics) },
  });
}

/** Options of {@link bundleUploadWorkflows}. */
export interface BundleUploadWorkflowsOptions {
  /**
   * Bundle the failure converter that moves failure messages and stack traces into (encrypted)
   * payloads: for workers with `config.encryption`.
   * @default false
   */
  encryptFailureMessages?: boolean;
  /**
   * The workflows file to bundle: yours, re-exporting `upload-saga/workflows`.
   * @default {@link workflowsPath} (the upload workflows)
   */
  workflowsPath?: string;
}

/**
 * Bundles the workflows (`options.workflowsPath`, default the upload workflows) with the saga's and
 * tracing's workflow interceptors once, for many workers. A worker running the bundle registers the
 * `exporter` sink (see `workflowSpanSinks` in src/telemetry/temporal.ts; `createUploadWorker` does).
 */
export function bundleUploadWorkflows(options: BundleUploadWorkflowsOptions = {}): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath: options.workflowsPath ?? workflowsPath,
    workflowInterceptorModules: [sagaWorkflowInterceptorsPath, tracingWorkflowInterceptorsPath],
    ...(options.encryptFailureMessages ? { failureConverterPath: ENCRYPTED_FAILURE_CONVERTER_PATH } : {}),
    logger: new DefaultLogger('WARN'),
  });
}

/** Options of {@link runWorkerFromEnv}. */
export interface RunWorkerFromEnvOptions {
  /** A workflow bundle built beforehand (see {@link bundleUploadWorkflows}). @default the shipped bundle, else bundled at start */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/** Runs a worker from the environment until SIGINT/SIGTERM. */
export async function runWorkerFromEnv(env: NodeJS.ProcessEnv = process.env, options: RunWorkerFromEnvOptions = {}): Promise<void> {
  const config = loadConfig(env);
  const logger = createLogger(config.logging, { name: 'worker' });
  const tracingConfig = loadTracingConfig(env, 'upload-saga-worker');
  // Before any client exists: they find the registered provider (see src/telemetry/tracing.ts).
  const tracing = tracingConfig ? startTracing(tracingConfig) : undefined;
  // The SDK's Prometheus exporter on a loopback port of its own, served through the one /metrics below.
  const sdkMetricsAddress = config.metrics.port !== undefined ? `127.0.0.1:${await findFreePort()}` : undefined;
  // The SDK's logs (worker, activities, workflows, core) into the same logger; skipped when this process installed a runtime already.
  const installed = installTemporalLogging(logger, sdkMetricsAddress ? { prometheusBindAddress: sdkMetricsAddress } : {});
  if (!installed) logger.warn('Temporal runtime installed before: its logs keep their logger, and /metrics lacks the SDK metrics');
  const metrics = new WorkerMetrics({ tenantLabel: config.metrics.tenantLabel });
  const connection = await connectWorker(config.temporal);
  const clientConnection = await connectClient(config.temporal);
  const client = createTemporalClient(clientConnection, config);
  const s3 = createS3Client(config.s3);
  // Live progress on Redis: errors are logged at most twice a minute and never reach an upload.
  const progressErrors = rateLimitedErrors(30_000, (err, suppressed) => logger.warn({ err, suppressed }, 'live progress not published'));
  const redis = config.progress ? createProgressRedis(config.progress.redisUrl, { publishOnly: true, onError: progressErrors }) : undefined;
  const progress = redis ? createProgressPublisher({ redis, onError: progressErrors }) : undefined;
  const worker = await createUploadWorker({
    config,
    connection,
    client,
    s3,
    metrics,
    breakers: new CircuitBreakers(config.breaker, logger),
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : {}),
    ...(progress ? { progress } : {}),
  });
  let health: Awaited<ReturnType<typeof startWorkerHealthServer>> | undefined;
  let metricsServer: MetricsServer | undefined;
  // The breakers are this process's: their states go to this worker's gauge.
  const stopBreakerGauge = onBreakerStateChange(metrics.circuitBreakerListener);
  try {
    if (config.health) health = await startWorkerHealthServer({ ...config.health, worker, s3, logger });
    if (config.metrics.port !== undefined) {
      metricsServer = await startMetricsServer({
        host: config.metrics.host,
        port: config.metrics.port,
        sources: [
          { name: 'upload-saga', collect: () => metrics.metrics() },
          ...(installed && sdkMetricsAddress ? [httpMetricsSource('temporal-sdk', `http://${sdkMetricsAddress}/metrics`)] : []),
        ],
        logger,
      });
    }
    logger.info(
      {
        taskQueue: config.temporal.taskQueue,
        namespace: config.temporal.namespace,
        ...(config.encryption ? { encryptionKeyId: config.encryption.keys[0].id } : {}),
        ...(health ? { health: health.url } : {}),
        ...(tracingConfig ? { tracing: tracingConfig.endpoint } : {}),
        ...(metricsServer ? { metrics: `${metricsServer.url}/metrics` } : {}),
      },
      `upload-saga worker on task queue "${config.temporal.taskQueue}" (${config.temporal.address}, namespace ${config.temporal.namespace})` +
        (config.encryption ? `, payloads encrypted with key "${config.encryption.keys[0].id}"` : ''),
    );
    await worker.run(); // Worker installs SIGINT/SIGTERM handlers that shut it down gracefully.
  } finally {
    stopBreakerGauge();
    await metricsServer?.close();
    await health?.close();
    await progress?.close();
    redis?.disconnect();
    await tracing?.shutdown();
    s3.destroy();
    await clientConnection.close();
    await connection.close();
  }
}

if (require.main === module) {
  runWorkerFromEnv().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
