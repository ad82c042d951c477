/**
 * What a test file needs to talk to the run's embedded stack: connected Temporal and S3 clients,
 * a worker configuration pointing at them, and a worker that runs for the life of the file on its
 * own task queue (so test files running in parallel never pick up each other's tasks).
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Connection, type Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import type { S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { loadConfig, type WorkerConfig } from '../../src/config';
import { createS3Client, createTemporalClient } from '../../src/connections';
import { createUploadWorker } from '../../src/worker';
import { STORE_RULES_ENV } from '../../src/embedded';
import { workflowSpanSinks } from '../../src/telemetry/temporal';

// Worker lifecycle chatter drowns test output; warnings and errors still show.
try {
  Runtime.install({ logger: new DefaultLogger((process.env.UPLOAD_SAGA_TEST_LOG_LEVEL as 'WARN' | undefined) ?? 'WARN') });
} catch {
  // already installed in this process
}

export interface TestStack {
  client: Client;
  connection: Connection;
  workerConnection: NativeConnection;
  s3: S3Client;
  config: WorkerConfig;
  /** Environment variables that configure a worker or the CLI for this stack. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export function stackEnv(taskQueue: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: inject('namespace'),
    TEMPORAL_TASK_QUEUE: taskQueue,
    S3_ENDPOINT: inject('s3Endpoint'),
    S3_REGION: inject('s3Region'),
    S3_ACCESS_KEY_ID: inject('s3AccessKeyId'),
    S3_SECRET_ACCESS_KEY: inject('s3SecretAccessKey'),
    UPLOAD_SAGA_ALLOWED_ROOTS: os.tmpdir(),
    // Test file servers and webhook receivers listen on loopback, which a worker refuses by default.
    UPLOAD_SAGA_URL_ALLOWED_HOSTS: '127.0.0.0/8,::1',
    UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS: '127.0.0.0/8,::1',
    // What the run's store accepts where stores differ (docs/reference/store-capabilities.md).
    ...STORE_RULES_ENV[inject('s3Store')],
    ...extra,
  };
}

export async function connectTestStack(options: { taskQueue?: string; env?: Record<string, string> } = {}): Promise<TestStack> {
  const taskQueue = options.taskQueue ?? `test-${randomUUID()}`;
  const env = stackEnv(taskQueue, options.env);
  const config = loadConfig(env);
  const connection = await Connection.connect({ address: config.temporal.address });
  const workerConnection = await NativeConnection.connect({ address: config.temporal.address });
  // Encrypts and decrypts payloads when `env` holds UPLOAD_SAGA_ENCRYPTION_KEY (see src/codec).
  const client = createTemporalClient(connection, config);
  const s3 = createS3Client(config.s3);
  return {
    client,
    connection,
    workerConnection,
    s3,
    config,
    env,
    async close() {
      s3.destroy();
      await connection.close();
      await workerConnection.close();
    },
  };
}

export interface RunningWorker {
  worker: Worker;
  stop(): Promise<void>;
}

/** Starts `worker.run()` in the background; `stop()` shuts it down and waits. */
export function runInBackground(worker: Worker): RunningWorker {
  const running = worker.run();
  return {
    worker,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}

export async function startWorker(
  stack: TestStack,
  options: Omit<WorkerOptions, 'connection' | 'namespace' | 'taskQueue'>,
): Promise<RunningWorker> {
  const worker = await Worker.create({
    connection: stack.workerConnection,
    namespace: stack.config.temporal.namespace,
    taskQueue: stack.config.temporal.taskQueue,
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    // Upload bundles carry the tracing workflow interceptors, whose span sink a worker must register.
    sinks: workflowSpanSinks(undefined),
    ...options,
  });
  return runInBackground(worker);
}

export const uniqueId = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** The real upload worker (real activities, embedded quota ledger) on the stack's task queue, running until `stop()`. */
export async function startUploadWorker(stack: TestStack): Promise<RunningWorker> {
  return runInBackground(
    await createUploadWorker({ config: stack.config, connection: stack.workerConnection, client: stack.client, s3: stack.s3 }),
  );
}
