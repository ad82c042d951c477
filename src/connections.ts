/**
 * Turns configuration into connected clients. The worker and the CLI are the only callers:
 * activities receive these objects already built (see activities/deps.ts).
 */
import { readFile } from 'node:fs/promises';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import { S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { S3Config, TemporalConnectionConfig } from './config';

async function tlsOptions(config: TemporalConnectionConfig): Promise<ConnectionOptions['tls']> {
  if (!config.tls) return false;
  const { clientCertPath, clientKeyPath, caPath, serverName } = config.tls;
  return {
    ...(serverName ? { serverNameOverride: serverName } : {}),
    ...(caPath ? { serverRootCACertificate: await readFile(caPath) } : {}),
    ...(clientCertPath && clientKeyPath ? { clientCertPair: { crt: await readFile(clientCertPath), key: await readFile(clientKeyPath) } } : {}),
  };
}

/** A client connection (for starting and inspecting uploads). */
export async function connectClient(config: TemporalConnectionConfig): Promise<Connection> {
  return Connection.connect({ address: config.address, tls: await tlsOptions(config), ...(config.apiKey ? { apiKey: config.apiKey } : {}) });
}

/** A worker connection. */
export async function connectWorker(config: TemporalConnectionConfig): Promise<NativeConnection> {
  const tls = (await tlsOptions(config)) as NativeConnectionOptions['tls'];
  return NativeConnection.connect({ address: config.address, tls, ...(config.apiKey ? { apiKey: config.apiKey } : {}) });
}

/**
 * An S3 client tuned for multipart uploads: keep-alive sockets enough for every part in flight,
 * and checksums only where we send our own (the SDK would otherwise add a CRC32 to every part).
 */
export function createS3Client(config: S3Config, options: { maxSockets?: number } = {}): S3Client {
  return new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    forcePathStyle: config.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ httpAgent: { keepAlive: true, maxSockets: options.maxSockets ?? 128 }, httpsAgent: { keepAlive: true, maxSockets: options.maxSockets ?? 128 } }),
  });
}
