/**
 * No server-side request forgery through the worker: URL sources and webhooks reach only public
 * addresses unless the worker's allow-lists name the destination — checked on the address the
 * socket connects to, so host names, redirects and DNS rebinding do not get around it.
 *
 * Everything runs through the real workflow and activities against the dev server and MinIO;
 * where a test needs DNS answers that do not exist offline, it injects a resolver into the real
 * HTTP client (`resolve` option). Every refused upload is checked to have written nothing to S3,
 * and the refused destinations are real servers that count the requests they get: zero.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities, HttpUrlResolver, LocalFileResolver, SourceRegistry } from '../../src/activities';
import { UploadClient, UploadFailedError } from '../../src/client';
import type { ResolveHost } from '../../src/net/guarded-fetch';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import type { UploadRequest } from '../../src/upload/request';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { startFileServer, type FileServer } from '../support/file-server';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { incompleteUploads, keysUnder, objectExists, objectSha256 } from '../support/s3-inspect';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

const BUCKET = 'uploads';
let stack: TestStack;
let bundle: ReturnType<typeof bundleUploadWorkflows>;
let tmp: { dir: string; remove(): Promise<void> };
const workers: RunningWorker[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  // No allow-lists: the worker's defaults, as in production.
  stack = await connectTestStack({ env: { UPLOAD_SAGA_URL_ALLOWED_HOSTS: '', UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS: '' } });
  bundle = bundleUploadWorkflows();
  tmp = await makeTempDir();
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  for (const close of closers) await close();
  await stack?.close();
  await tmp?.remove();
});

interface PolicyWorker {
  uploads: UploadClient;
  tenant: string;
}

/** A real upload worker on its own task queue whose URL sources and webhooks follow `options`. */
async function startPolicyWorker(
  options: { urlAllowed?: string[]; webhookAllowed?: string[]; resolve?: ResolveHost } = {},
): Promise<PolicyWorker> {
  const taskQueue = uniqueId('ssrf');
  const config = { ...stack.config, temporal: { ...stack.config.temporal, taskQueue } };
  const resolve = options.resolve ? { resolve: options.resolve } : {};
  const activities = createActivities({
    s3: stack.s3,
    sources: new SourceRegistry({
      file: new LocalFileResolver({ allowedRoots: config.allowedRoots }),
      url: new HttpUrlResolver({ allowedHosts: options.urlAllowed ?? [], ...resolve }),
    }),
    quota: new TemporalQuotaLedger({ client: stack.client, taskQueue, limits: config.quota }),
    webhook: { ...config.webhook, allowedHosts: options.webhookAllowed ?? [], ...resolve },
  });
  workers.push(
    runInBackground(
      await createUploadWorker({
        config,
        connection: stack.workerConnection,
        client: stack.client,
        s3: stack.s3,
        workflowBundle: await bundle,
        activities,
      }),
    ),
  );
  return { uploads: new UploadClient({ client: stack.client, taskQueue }), tenant: uniqueId('ssrf') };
}

/** A real server that counts requests and answers each with `handler` (or 200 "internal"). */
async function startCountingServer(
  options: { host?: string; port?: number; handler?: http.RequestListener } = {},
): Promise<{ port: number; hits: () => number }> {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    if (options.handler) return options.handler(req, res);
    res.end('internal');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  closers.push(() => new Promise((resolve) => server.close(resolve)));
  return { port: (server.address() as AddressInfo).port, hits: () => hits };
}

async function fileServer(content: Buffer, options: { host?: string; port?: number } = {}): Promise<FileServer> {
  const server = await startFileServer(content, { ranges: true, ...options });
  closers.push(() => server.close());
  return server;
}

function urlUpload(worker: PolicyWorker, url: string, extra: Partial<UploadRequest> = {}): UploadRequest {
  const uploadId = uniqueId('url');
  return {
    uploadId,
    tenant: worker.tenant,
    source: { type: 'url', url },
    destination: { bucket: BUCKET, key: `ssrf/${uploadId}.bin` },
    partSize: 5 * MiB,
    ...extra,
  };
}

async function failureOf(worker: PolicyWorker, request: UploadRequest): Promise<UploadFailedError> {
  const err = await (await worker.uploads.start(request)).result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(UploadFailedError);
  return err as UploadFailedError;
}

async function expectNothingInS3(request: UploadRequest): Promise<void> {
  const { key } = request.destination;
  expect(await incompleteUploads(stack.s3, BUCKET, key)).toEqual([]);
  expect(await objectExists(stack.s3, BUCKET, key)).toBe(false);
  expect(await keysUnder(stack.s3, BUCKET, `.upload-saga/staging/${request.tenant}/`)).toEqual([]);
}

/** A resolver from a fixed table, like a DNS server the attacker controls. */
const fakeDns =
  (table: Record<string, string | (() => string)>): ResolveHost =>
  (hostname) => {
    const entry = table[hostname];
    if (entry === undefined) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
    const address = typeof entry === 'function' ? entry() : entry;
    return Promise.resolve([{ address, family: address.includes(':') ? 6 : 4 } satisfies LookupAddress]);
  };

describe('URL sources: no requests to non-public addresses', () => {
  it('refuses a URL to 127.0.0.1 before any request, naming the address and the variable that allows it', async () => {
    const worker = await startPolicyWorker();
    const internal = await startCountingServer();
    const request = urlUpload(worker, `http://127.0.0.1:${internal.port}/admin/export?token=not-logged`);
    const err = await failureOf(worker, request);
    expect(err.report).toMatchObject({ failedStep: 'inspect-source', cause: { type: 'SourceNotAllowed' }, compensations: [] });
    expect(err.report?.cause.message).toBe(
      `URL http://127.0.0.1:${internal.port}/admin/export: 127.0.0.1 is a loopback address, and URL sources may reach only public addresses; ` +
        `to allow it, add 127.0.0.1:${internal.port} (or 127.0.0.1, or a range such as 127.0.0.0/8) to UPLOAD_SAGA_URL_ALLOWED_HOSTS`,
    );
    expect(err.message).not.toContain('not-logged');
    expect(internal.hits()).toBe(0);
    await expectNothingInS3(request);
  });

  it('refuses host names that resolve to loopback, private or link-local addresses (localhost, injected DNS)', async () => {
    const worker = await startPolicyWorker({
      resolve: fakeDns({
        'files.corp.test': '10.0.0.5',
        'metadata.test': '169.254.169.254',
        'v6.test': 'fd00::1',
        'mapped.test': '::ffff:192.168.1.1',
      }),
    });
    const system = await startPolicyWorker(); // the system resolver: /etc/hosts has localhost
    const internal = await startCountingServer();
    const cases: [PolicyWorker, string, RegExp][] = [
      [system, `http://localhost:${internal.port}/x`, /localhost resolves to (127\.0\.0\.1|::1), a loopback address/],
      [worker, 'http://files.corp.test/x', /files\.corp\.test resolves to 10\.0\.0\.5, a private \(RFC 1918\) address/],
      [
        worker,
        'http://metadata.test/latest/meta-data/',
        /metadata\.test resolves to 169\.254\.169\.254, a link-local \(e\.g\. cloud metadata\) address/,
      ],
      [worker, 'https://v6.test/x', /v6\.test resolves to fd00::1, a unique-local \(fc00::\/7\) address/],
      [worker, 'http://mapped.test/x', /mapped\.test resolves to 192\.168\.1\.1, a private \(RFC 1918\) address/],
    ];
    await Promise.all(
      cases.map(async ([w, url, message]) => {
        const request = urlUpload(w, url);
        const err = await failureOf(w, request);
        expect(err.report?.cause.type, url).toBe('SourceNotAllowed');
        expect(err.report?.cause.message, url).toMatch(message);
        await expectNothingInS3(request);
      }),
    );
    expect(internal.hits()).toBe(0);
  });

  it('refuses a redirect from an allowed host to a non-public one, and never contacts it', async () => {
    const internal = await startCountingServer();
    const redirecting = await startCountingServer({
      handler: (_req, res) => {
        res.statusCode = 302;
        res.setHeader('Location', `http://127.0.0.1:${internal.port}/secret.bin`);
        res.end();
      },
    });
    const worker = await startPolicyWorker({ urlAllowed: [`127.0.0.1:${redirecting.port}`] });
    const request = urlUpload(worker, `http://127.0.0.1:${redirecting.port}/file.bin`);
    const err = await failureOf(worker, request);
    expect(err.report).toMatchObject({ failedStep: 'inspect-source', cause: { type: 'SourceNotAllowed' } });
    expect(err.report?.cause.message).toContain(
      `127.0.0.1 is a loopback address, and URL sources may reach only public addresses; to allow it, add 127.0.0.1:${internal.port}`,
    );
    expect(redirecting.hits()).toBeGreaterThan(0);
    expect(internal.hits()).toBe(0);
    await expectNothingInS3(request);
  });

  it('uploads from a non-public host the allow-list names, and only on the port it names', async () => {
    const content = randomBytes(7 * MiB);
    const server = await fileServer(content);
    const port = Number(new URL(server.url).port);
    const worker = await startPolicyWorker({ urlAllowed: [`127.0.0.1:${port}`] });
    const request = urlUpload(worker, server.url);
    const result = await (await worker.uploads.start(request)).result();
    expect(result.size).toBe(content.length);
    expect(await objectSha256(stack.s3, BUCKET, request.destination.key)).toBe(createHash('sha256').update(content).digest('hex'));

    const otherPort = await startCountingServer();
    const refused = urlUpload(worker, `http://127.0.0.1:${otherPort.port}/x`);
    expect((await failureOf(worker, refused)).report?.cause.type).toBe('SourceNotAllowed');
    expect(otherPort.hits()).toBe(0);
  });

  it('is not fooled by DNS rebinding: a name whose answers alternate between an allowed and a refused address', async () => {
    // 127.0.0.2 plays the allowed public host; 127.0.0.1 on the same port the internal service.
    // Every connection resolves the name once and is checked on that answer, so whichever
    // request gets the refused answer fails, and none reaches the internal service.
    const content = randomBytes(12 * MiB);
    const allowed = await fileServer(content, { host: '127.0.0.2' });
    const port = Number(new URL(allowed.url).port);
    const internal = await startCountingServer({ port });
    let lookups = 0;
    const worker = await startPolicyWorker({
      urlAllowed: ['127.0.0.2'],
      resolve: fakeDns({ 'rebind.test': () => (++lookups % 2 === 1 ? '127.0.0.2' : '127.0.0.1') }),
    });
    const request = urlUpload(worker, `http://rebind.test:${port}/files/source.bin`);
    const err = await failureOf(worker, request);
    expect(err.report?.cause).toMatchObject({ type: 'SourceNotAllowed' });
    expect(err.report?.cause.message).toContain('rebind.test resolves to 127.0.0.1, a loopback address');
    expect(allowed.requests.length).toBeGreaterThan(0); // the allowed answer was used
    expect(lookups).toBeGreaterThan(1);
    expect(internal.hits()).toBe(0);
    await expectNothingInS3(request);
  });
});

describe('webhooks: the same policy, with its own allow-list', () => {
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    closers.push(() => receiver.close());
  });

  it('refuses a webhook to a loopback address in inspect-source, before a byte moves', async () => {
    const worker = await startPolicyWorker();
    const file = await makeRandomFile(tmp.dir, 'hooked.bin', 1 * MiB);
    const request: UploadRequest = {
      uploadId: uniqueId('hook'),
      tenant: worker.tenant,
      source: { type: 'file', path: file.path },
      destination: { bucket: BUCKET, key: `ssrf/${uniqueId('hook')}.bin` },
      webhookUrl: receiver.url('/refused?sig=not-logged'),
    };
    const err = await failureOf(worker, request);
    expect(err.report).toMatchObject({ failedStep: 'inspect-source', cause: { type: 'WebhookNotAllowed' } });
    expect(err.report?.cause.message).toMatch(
      /^webhook http:\/\/127\.0\.0\.1:\d+\/refused: 127\.0\.0\.1 is a loopback address, and webhooks may reach only public addresses; .* to UPLOAD_SAGA_WEBHOOK_ALLOWED_HOSTS$/,
    );
    expect(err.message).not.toContain('not-logged');
    // the upload.failed event is not sent there either
    expect(receiver.received.filter((r) => r.path.startsWith('/refused'))).toEqual([]);
    await expectNothingInS3(request);
  });

  it('refuses at delivery time too: a webhook host that rebinds after inspection gets nothing, and the upload reports it at once', async () => {
    let lookups = 0;
    const port = Number(new URL(receiver.url()).port);
    // inspect-source sees a public address; notify's connection resolves to loopback.
    const worker = await startPolicyWorker({ resolve: fakeDns({ 'hooks.test': () => (++lookups <= 1 ? '93.184.216.34' : '127.0.0.1') }) });
    const file = await makeRandomFile(tmp.dir, 'rebound.bin', 1 * MiB);
    const request: UploadRequest = {
      uploadId: uniqueId('hook'),
      tenant: worker.tenant,
      source: { type: 'file', path: file.path },
      destination: { bucket: BUCKET, key: `ssrf/${uniqueId('hook')}.bin` },
      webhookUrl: `http://hooks.test:${port}/rebound`,
    };
    const result = await (await worker.uploads.start(request)).result();
    expect(result.notification).toMatchObject({ status: 'failed' });
    expect(result.notification.status === 'failed' && result.notification.error).toMatch(
      /^WebhookNotAllowed: webhook http:\/\/hooks\.test:\d+\/rebound: hooks\.test resolves to 127\.0\.0\.1, a loopback address/,
    );
    expect(lookups).toBe(2); // inspect-source's check and one delivery attempt: the refusal is permanent, not retried 12 times
    expect(receiver.received.filter((r) => r.path === '/rebound')).toEqual([]);
  });
});
