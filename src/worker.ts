/**
 * The upload worker: the one place where clients are constructed and wired into activities.
 *
 * `createUploadWorker` is for embedding (tests, the CLI, your own process); running this file
 * starts a worker configured from the environment (see config.ts), validated before connecting.
 */
import { bundleWorkflowCode, DefaultLogger, Worker, type NativeConnection, type WorkflowBundleWithSourceMap, type WorkerOptions } from '@temporalio/worker';
import { Client } from '@temporalio/client';
import type { S3Client } from '@aws-sdk/client-s3';
import { createActivities, type UploadActivities } from './activities';
import { HttpUrlResolver } from './activities/sources/http-url';
import { LocalFileResolver } from './activities/sources/local-file';
import { SourceRegistry } from './activities/sources/registry';
import { siblingModule } from './module-path';
import { loadConfig, type WorkerConfig } from './config';
import { connectClient, connectWorker, createS3Client } from './connections';
import { TemporalQuotaLedger } from './quota/temporal-ledger';
import type { QuotaLedger } from './quota/ledger';
import { sagaWorkerInterceptors, sagaWorkflowInterceptorsPath } from './saga/activity';

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
   * sources under `config.allowedRoots`, and the quota ledger
   */
  activities?: UploadActivities;
  /** Pre-built workflow bundle (see {@link bundleUploadWorkflows}), to skip bundling per worker. */
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
    sources: new SourceRegistry({ file: new LocalFileResolver({ allowedRoots: config.allowedRoots }), url: new HttpUrlResolver() }),
    quota: options.quota ?? new TemporalQuotaLedger({ client: options.client, taskQueue: config.temporal.taskQueue, limits: config.quota }),
    webhook: config.webhook,
  });
  const interceptors = sagaWorkerInterceptors();
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
    ...options.workerOptions,
  });
}

/** Bundles the workflows with the saga's interceptors once, for many workers. */
export function bundleUploadWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath, workflowInterceptorModules: [sagaWorkflowInterceptorsPath], logger: new DefaultLogger('WARN') });
}

/** Runs a worker from the environment until SIGINT/SIGTERM. */
export async function runWorkerFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config = loadConfig(env);
  const connection = await connectWorker(config.temporal);
  const clientConnection = await connectClient(config.temporal);
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  const s3 = createS3Client(config.s3);
  const worker = await createUploadWorker({ config, connection, client, s3 });
  console.error(`upload-saga worker on task queue "${config.temporal.taskQueue}" (${config.temporal.address}, namespace ${config.temporal.namespace})`);
  try {
    await worker.run(); // Worker installs SIGINT/SIGTERM handlers that shut it down gracefully.
  } finally {
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
