/**
 * The CLI's connection to Temporal: configuration from the environment, a client, an UploadClient.
 *
 * Why it is built this way: the CLI reads the same variables as the worker (CONFIG_VARIABLES in
 * src/config.ts), validated by the same `loadConfig`, so one set of `export`s points both at a
 * stack and a typo fails with the same list of problems. A connection failure names the address
 * and the variable to fix, instead of a bare gRPC error.
 */
import type { Client } from '@temporalio/client';
import { UploadClient } from '../client';
import { loadConfig, type WorkerConfig } from '../config';
import { connectClient, createTemporalClient } from '../connections';
import { CliError, ExitCode } from './errors';

/** A connected CLI session. Call {@link CliConnection.close} when done. */
export interface CliConnection {
  config: WorkerConfig;
  client: Client;
  uploads: UploadClient;
  close(): Promise<void>;
}

/** Temporal could not be reached at the configured address. */
export class TemporalUnreachableError extends CliError {
  override readonly name = 'TemporalUnreachableError';
  constructor(address: string, cause: unknown) {
    super(
      `cannot reach Temporal at ${address}: ${cause instanceof Error ? cause.message : String(cause)}`,
      ExitCode.Failure,
      [
        '  check TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS* for a remote cluster),',
        '  or start a local stack with `upload-saga stack`',
      ],
      { cause },
    );
  }
}

/**
 * Loads the configuration from `env` and connects a client.
 * @throws ConfigError listing every invalid variable
 * @throws TemporalUnreachableError when the connection fails
 */
export async function connectUploads(env: NodeJS.ProcessEnv = process.env): Promise<CliConnection> {
  const config = loadConfig(env);
  let connection;
  try {
    connection = await connectClient(config.temporal);
  } catch (error) {
    throw new TemporalUnreachableError(config.temporal.address, error);
  }
  // With UPLOAD_SAGA_ENCRYPTION_KEY set, the client encrypts what it sends and decrypts what it reads.
  const client = createTemporalClient(connection, config);
  return {
    config,
    client,
    uploads: new UploadClient({ client, taskQueue: config.temporal.taskQueue }),
    close: () => connection.close(),
  };
}

/** Runs `fn` with a connection and always closes it afterwards. */
export async function withUploads<T>(env: NodeJS.ProcessEnv, fn: (connection: CliConnection) => Promise<T>): Promise<T> {
  const connection = await connectUploads(env);
  try {
    return await fn(connection);
  } finally {
    await connection.close();
  }
}
