/**
 * The upload worker: the one place where clients are constructed and wired into activities.
 *
 * `createUploadWorker` is for embedding (tests, the CLI, your own process); running this file
 * starts a worker configured from the environment (see config.ts), validated before connecting.
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
import { siblingModule } from './module-path';
import { loadConfig, type WorkerConfig } from './config';
import { connectClient, connectWorker, createS3Client, createTemporalClient } from './connections';
import { assertBundleEncryptsFailures, ENCRYPTED_FAILURE_CONVERTER_PATH, uploadDataConverter } from './codec/data-converter';
import { TemporalQuotaLedger } from './quota/temporal-ledger';
import type { QuotaLedger } from './quota/ledger';
import { sagaWorkerInterceptors, sagaWorkflowInterceptorsPath } from './saga/activity';
import { createLogger, installTemporalLogging } from './logging';
import { startWorkerHealthServer } from './health';

/** The SDK's default `maxConcurrentWorkflowTaskExecutions`. */
const SDK_WORKFLOW_TASK_SLOTS = 40;

/** Path of the workflows module, for `workflowsPath` or `bundleWorkflowCode`. */
export const workflowsPath = siblingModule(__dirname, './workflows');

export interface UploadWorkerOptions {
  config: WorkerConfig;
  connection: NativeConnection;
  /** Client used by the quota ledger's Update-with-Start. */
  client: Client;
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
   * Pre-built workflow bundle (see {@link bundleUploadWorkflows}), to skip bundling per worker. With
   * `config.encryption`, build it with `{ encryptFailureMessages: true }`, or failures raised in
   * workflow code keep their messages in plain text.
   */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /** Extra worker options (e.g. `identity`). */
  workerOptions?: Partial<WorkerOptions>;
}

export async function createUploadWorker(options: UploadWorkerOptions): Promise<Worker> {
  const { config } = options;
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
          profiles: Object.fromEntries(
            Object.entries(config.s3SourceProfiles).map(([name, profile]) => [
              name,
              createS3Client({ ...profile, idleTimeoutMs: config.s3.idleTimeoutMs }),
            ]),
          ),
        }),
      }),
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
      ...(config.tenantKeyPrefix ? { tenantKeyPrefix: config.tenantKeyPrefix } : {}),
    });
  const interceptors = sagaWorkerInterceptors();
  // Encryption: every payload through the AES-GCM codec, failure messages into encrypted payloads.
  const dataConverter = uploadDataConverter(config.encryption);
  if (dataConverter && options.workflowBundle) assertBundleEncryptsFailures(options.workflowBundle);
  return Worker.create({
    connection: options.connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath }),
    activities,
    // A pre-built bundle already contains the workflow interceptor modules.
    interceptors: options.workflowBundle ? { activity: interceptors.activity } : interceptors,
    maxConcurrentActivityTaskExecutions: config.maxConcurrentActivities,
    // Heartbeats carry progress: send them often enough for a live progress bar and fast cancellation.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    ...(dataConverter ? { dataConverter } : {}),
    ...options.workerOptions,
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
}

/** Bundles the workflows with the saga's interceptors once, for many workers. */
export function bundleUploadWorkflows(options: BundleUploadWorkflowsOptions = {}): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({
    workflowsPath,
    workflowInterceptorModules: [sagaWorkflowInterceptorsPath],
    ...(options.encryptFailureMessages ? { failureConverterPath: ENCRYPTED_FAILURE_CONVERTER_PATH } : {}),
    logger: new DefaultLogger('WARN'),
  });
}

/** Options of {@link runWorkerFromEnv}. */
export interface RunWorkerFromEnvOptions {
  /** A workflow bundle built beforehand (see {@link bundleUploadWorkflows}), to start without bundling. @default bundled at start */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/** Runs a worker from the environment until SIGINT/SIGTERM. */
export async function runWorkerFromEnv(env: NodeJS.ProcessEnv = process.env, options: RunWorkerFromEnvOptions = {}): Promise<void> {
  const config = loadConfig(env);
  const logger = createLogger(config.logging, { name: 'worker' });
  // The SDK's logs (worker, activities, workflows, core) into the same logger; skipped when this process installed a runtime already.
  if (!installTemporalLogging(logger)) logger.debug('Temporal runtime installed before: its logs keep their logger');
  const connection = await connectWorker(config.temporal);
  const clientConnection = await connectClient(config.temporal);
  const client = createTemporalClient(clientConnection, config);
  const s3 = createS3Client(config.s3);
  const worker = await createUploadWorker({
    config,
    connection,
    client,
    s3,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : {}),
  });
  let health: Awaited<ReturnType<typeof startWorkerHealthServer>> | undefined;
  try {
    if (config.health) health = await startWorkerHealthServer({ ...config.health, worker, s3, logger });
  } catch (err) {
    s3.destroy();
    await clientConnection.close();
    await connection.close();
    throw err;
  }
  logger.info(
    {
      taskQueue: config.temporal.taskQueue,
      namespace: config.temporal.namespace,
      ...(config.encryption ? { encryptionKeyId: config.encryption.keys[0].id } : {}),
      ...(health ? { health: health.url } : {}),
    },
    `upload-saga worker on task queue "${config.temporal.taskQueue}" (${config.temporal.address}, namespace ${config.temporal.namespace})` +
      (config.encryption ? `, payloads encrypted with key "${config.encryption.keys[0].id}"` : ''),
  );
  try {
    await worker.run(); // Worker installs SIGINT/SIGTERM handlers that shut it down gracefully.
  } finally {
    await health?.close();
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
