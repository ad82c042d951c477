/**
 * What the gateway tests share: gateways in this process on the run's embedded stack (real
 * Temporal, real MinIO, the real worker), tenants with their tokens, and tus-js-client driven
 * to completion or failure as a promise.
 *
 * Why in-process gateways: a test can start two replicas, give one a short expiry, and read the
 * workflow's state next to the HTTP answers; the gateway is still reached only over HTTP.
 * Tenants are unique per test file, because a tenant's quota ledger lives on the task queue that
 * first served it (each test file has its own queue).
 */
import { randomBytes } from 'node:crypto';
import { UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import * as tus from 'tus-js-client';
import { hashToken, loadGatewayConfig, type GatewayConfig } from '../../src/gateway/config';
import { createLogger } from '../../src/logging';
import { partChecksum } from '../../src/s3/checksums';
import { extendPartsFingerprint } from '../../src/s3/parts-fingerprint';
import { createGateway, type GatewayOptions, type GatewayServer } from '../../src/gateway/server';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import type { TestStack } from '../support/harness';
import { uniqueId } from '../support/harness';

export interface TestTenant {
  name: string;
  token: string;
  /** `{ Authorization: 'Bearer …' }` */
  auth: Record<string, string>;
}

export function testTenant(prefix: string): TestTenant {
  const token = randomBytes(24).toString('base64url');
  return { name: uniqueId(prefix), token, auth: { Authorization: `Bearer ${token}` } };
}

export interface TestGateway {
  app: GatewayServer;
  url: string;
  config: GatewayConfig;
  close(): Promise<void>;
}

/** A gateway on a free port for `tenants`, with `overrides` over the defaults (and its own S3 client, when given). */
export async function startTestGateway(
  stack: TestStack,
  tenants: TestTenant[],
  options: { overrides?: Partial<GatewayConfig>; env?: Record<string, string>; redis?: Redis; s3?: S3Client } & Partial<
    Pick<GatewayOptions, 'service' | 'tus' | 'plugins' | 'loggerInstance'>
  > = {},
): Promise<TestGateway> {
  const config = {
    ...loadGatewayConfig({
      UPLOAD_SAGA_GATEWAY_TOKENS: tenants.map((t) => `${t.name}=${hashToken(t.token)}`).join(','),
      UPLOAD_SAGA_GATEWAY_PORT: '0',
      ...options.env,
    }),
    ...options.overrides,
  };
  const app = await createGateway({
    config,
    client: stack.client,
    taskQueue: stack.config.temporal.taskQueue,
    s3: options.s3 ?? stack.s3,
    ...(options.redis ? { redis: options.redis } : {}),
    ...(options.service ? { service: options.service } : {}),
    ...(options.tus ? { tus: options.tus } : {}),
    ...(options.loggerInstance ? { loggerInstance: options.loggerInstance } : {}),
    // Tests add the plugins they exercise; the core routes (healthz, tus) are always there.
    plugins: options.plugins ?? [],
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url, config, close: () => app.close() };
}

/** The stack's quota ledger, read independently of the gateway (usage, one upload's reservation). */
export function quotaLedgerOf(stack: TestStack): TemporalQuotaLedger {
  return new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });
}

/** A Redis connection for the tests (the machine's Redis on 127.0.0.1:6379). */
export function testRedis(): Redis {
  return new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 3 });
}

export interface TusRun {
  upload: tus.Upload;
  /** Resolves on success, rejects with the client's error. */
  done: Promise<void>;
}

/** Starts tus-js-client on `data`; `done` settles when it succeeds or gives up. */
export function startTus(data: Buffer, options: tus.UploadOptions): TusRun {
  let upload!: tus.Upload;
  const done = new Promise<void>((resolve, reject) => {
    upload = new tus.Upload(data, {
      retryDelays: null,
      storeFingerprintForResuming: false,
      ...options,
      onSuccess: (payload) => {
        options.onSuccess?.(payload);
        resolve();
      },
      onError: (error) => {
        options.onError?.(error);
        reject(error);
      },
    });
    upload.start();
  });
  return { upload, done };
}

/** The upload id at the end of a tus upload URL. */
export const idOf = (uploadUrl: string | null): string => {
  if (!uploadUrl) throw new Error('the upload has no URL yet');
  return uploadUrl.split('/').pop()!;
};

/** One raw tus request (for what tus-js-client does not do: checksums, conflicts, other tenants). */
export async function tusRequest(
  url: string,
  method: 'POST' | 'HEAD' | 'PATCH' | 'DELETE' | 'OPTIONS',
  headers: Record<string, string>,
  body?: Buffer,
): Promise<Response> {
  return fetch(url, {
    method,
    headers: { 'Tus-Resumable': '1.0.0', ...(body ? { 'Content-Type': 'application/offset+octet-stream' } : {}), ...headers },
    ...(body ? { body } : {}),
  });
}

/**
 * Partial uploads (`Upload-Concat: partial`) of `tenant` through `gateway`, each sent in one PATCH
 * (so stored): their paths, in the order given, for a final's `Upload-Concat`.
 */
export async function storedPartials(
  gateway: { url: string },
  tenant: { auth: Record<string, string> },
  parts: Buffer[],
): Promise<string[]> {
  const paths: string[] = [];
  for (const part of parts) {
    const created = await tusRequest(`${gateway.url}/files`, 'POST', {
      ...tenant.auth,
      'Upload-Length': String(part.length),
      'Upload-Concat': 'partial',
    });
    if (created.status !== 201) throw new Error(`creating a partial upload answered ${created.status}: ${await created.text()}`);
    const url = new URL(created.headers.get('location')!, gateway.url);
    const sent = await tusRequest(url.toString(), 'PATCH', { ...tenant.auth, 'Upload-Offset': '0' }, part);
    if (sent.status !== 204) throw new Error(`the PATCH of partial ${url.pathname} answered ${sent.status}: ${await sent.text()}`);
    paths.push(url.pathname);
  }
  return paths;
}

/** POSTs a new upload and returns its absolute URL. */
export async function createTusUpload(
  gateway: { url: string },
  tenant: TestTenant,
  length: number,
  filename = 'file.bin',
): Promise<string> {
  const response = await tusRequest(`${gateway.url}/files`, 'POST', {
    ...tenant.auth,
    'Upload-Length': String(length),
    'Upload-Metadata': `filename ${Buffer.from(filename).toString('base64')}`,
  });
  if (response.status !== 201) throw new Error(`POST answered ${response.status}: ${await response.text()}`);
  return new URL(response.headers.get('location')!, gateway.url).toString();
}

/** A gateway logger (JSON, at `level`) whose every line lands in `lines`. */
export function collectingLogger(level: 'debug' | 'error', lines: string[]): ReturnType<typeof createLogger> {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return createLogger({ level, format: 'json' }, { name: 'gateway', destination });
}

/**
 * Fills a multipart upload with random parts of `sizes`, each with its CRC32C as the gateway sends
 * them; answers the fingerprint of their checksums (what a gateway upload's record holds).
 */
export async function uploadCrc32cParts(
  s3: S3Client,
  target: { bucket: string; key: string; multipartUploadId: string },
  sizes: number[],
): Promise<string> {
  let fingerprint = '';
  for (const [i, size] of sizes.entries()) {
    const body = randomBytes(size);
    const checksum = await partChecksum('CRC32C', body);
    await s3.send(
      new UploadPartCommand({
        Bucket: target.bucket,
        Key: target.key,
        UploadId: target.multipartUploadId,
        PartNumber: i + 1,
        Body: body,
        ChecksumAlgorithm: 'CRC32C',
        ChecksumCRC32C: checksum,
      }),
    );
    fingerprint = extendPartsFingerprint(fingerprint, i + 1, checksum);
  }
  return fingerprint;
}
