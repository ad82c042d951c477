/**
 * Turns configuration into connected clients. The worker and the CLI are the only callers:
 * activities receive these objects already built (see activities/deps.ts).
 */
import { readFile } from 'node:fs/promises';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Redis } from 'ioredis';
import type { S3Config, TemporalConnectionConfig, WorkerConfig } from './config';
import { uploadDataConverter } from './codec/data-converter';
import { traceS3Client } from './telemetry/s3-spans';
import { tracingClientInterceptors } from './telemetry/temporal';

async function tlsOptions(config: TemporalConnectionConfig): Promise<ConnectionOptions['tls']> {
  if (!config.tls) return false;
  const { clientCertPath, clientKeyPath, caPath, serverName } = config.tls;
  return {
    ...(serverName ? { serverNameOverride: serverName } : {}),
    ...(caPath ? { serverRootCACertificate: await readFile(caPath) } : {}),
    ...(clientCertPath && clientKeyPath
      ? { clientCertPair: { crt: await readFile(clientCertPath), key: await readFile(clientKeyPath) } }
      : {}),
  };
}

/** A client connection (for starting and inspecting uploads). */
export async function connectClient(config: TemporalConnectionConfig): Promise<Connection> {
  return Connection.connect({
    address: config.address,
    tls: await tlsOptions(config),
    ...(config.apiKey ? { apiKey: config.apiKey } : {}),
  });
}

/**
 * A client in the configured namespace that encrypts and decrypts payloads when keys are configured
 * (see src/codec). Every client of an encrypting deployment — the CLI's, the application's, the quota
 * ledger's inside the worker — must be made this way, or it writes plain text into history.
 */
export function createTemporalClient(connection: Connection, config: Pick<WorkerConfig, 'temporal' | 'encryption'>): Client {
  const dataConverter = uploadDataConverter(config.encryption);
  return new Client({
    connection,
    namespace: config.temporal.namespace,
    // Starts carry the caller's trace context to the workflow (a no-op while tracing is off).
    interceptors: { workflow: tracingClientInterceptors() },
    ...(dataConverter ? { dataConverter } : {}),
  });
}

/** A worker connection. */
export async function connectWorker(config: TemporalConnectionConfig): Promise<NativeConnection> {
  const tls = (await tlsOptions(config)) as NativeConnectionOptions['tls'];
  return NativeConnection.connect({ address: config.address, tls, ...(config.apiKey ? { apiKey: config.apiKey } : {}) });
}

/**
 * An S3 client tuned for multipart uploads, with a span per operation: keep-alive sockets enough for every part in flight,
 * and checksums only where we send our own (the SDK would otherwise add a CRC32 to every part).
 * A request whose connection moves no byte for `idleTimeoutMs` fails (`TimeoutError`, retried by
 * the SDK and then by the step): without it a stalled connection hangs until the OS gives up,
 * which for a connection a middlebox still acknowledges is never. Slow but moving transfers and
 * long CompleteMultipartUploads (S3 and MinIO send whitespace while they work) are not cut.
 */
export function createS3Client(config: S3Config, options: { maxSockets?: number } = {}): S3Client {
  // A span per S3 operation (src/telemetry/s3-spans.ts; no-op spans while tracing is off).
  return traceS3Client(
    new S3Client({
      region: config.region,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(config.credentials ? { credentials: config.credentials } : {}),
      forcePathStyle: config.forcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        httpAgent: { keepAlive: true, maxSockets: options.maxSockets ?? 128 },
        httpsAgent: { keepAlive: true, maxSockets: options.maxSockets ?? 128 },
        socketTimeout: config.idleTimeoutMs ?? 60_000,
      }),
    }),
  );
}

/**
 * A Redis connection for live progress (`UPLOAD_SAGA_PROGRESS_REDIS_URL`). `publishOnly`: without
 * ioredis's offline queue, so a publish while Redis is away fails at once instead of piling up
 * (the worker's publisher must never wait or grow); a subscriber keeps the queue, so it subscribes
 * as soon as the connection is up. Connection errors go to `onError` (ioredis reconnects itself).
 */
export function createProgressRedis(url: string, options: { publishOnly?: boolean; onError?: (error: Error) => void } = {}): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, ...(options.publishOnly ? { enableOfflineQueue: false } : {}) });
  redis.on('error', (err: Error) => options.onError?.(err));
  return redis;
}
