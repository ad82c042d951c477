/**
 * The gateway as a plugin in someone else's fastify app: mounted under a prefix next to the host's
 * own routes, a tus-js-client upload goes through it end to end (real worker, Temporal, MinIO), and
 * the gateway's authentication, error handler and body parsing stay inside its prefix.
 */
import { createHash, randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, resolveGatewayConfig, uploadGateway, UploadsService } from '../../src/gateway/index';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { MiB } from '../support/files';
import { objectSha256 } from '../support/s3-inspect';
import { idOf, startTus, testTenant } from './gateway-harness';

const PREFIX = '/api/uploads';
let stack: TestStack;
let worker: RunningWorker;
let host: FastifyInstance;
let url: string;
let uploads: UploadsService;
const acme = testTenant('plugin');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  host = Fastify();
  // The host's own route and body parsing, registered before and after the gateway.
  host.get('/hello', async () => ({ hello: 'world' }));
  const config = { tokenHashes: new Map([[hashToken(acme.token), acme.name]]) };
  uploads = new UploadsService({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, config: resolveGatewayConfig(config) });
  await host.register(uploadGateway, {
    prefix: PREFIX,
    client: stack.client,
    s3: stack.s3,
    taskQueue: stack.config.temporal.taskQueue,
    config,
    uploads,
  });
  host.post('/echo', async (request) => ({ got: request.body }));
  url = await host.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await host?.close();
  await worker?.stop();
  await stack?.close();
});

describe('uploadGateway mounted under a prefix', () => {
  it('takes a tus-js-client upload under the prefix; the object is byte-identical', async () => {
    const data = randomBytes(6 * MiB);
    const run = startTus(data, {
      endpoint: `${url}${PREFIX}/files`,
      chunkSize: 2 * MiB,
      headers: acme.auth,
      metadata: { filename: 'hosted.bin' },
    });
    await run.done;
    expect(run.upload.url).toContain(`${PREFIX}/files/`);
    const state = await uploads.waitForEnd(acme.name, idOf(run.upload.url), 30_000);
    expect(state).toMatchObject({ outcome: 'completed', offset: 6 * MiB });
    expect(await objectSha256(stack.s3, 'uploads', state.key)).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('authenticates its own routes only: the host routes answer without a token, with their own body parsing', async () => {
    expect((await fetch(`${url}${PREFIX}/files`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0' } })).status).toBe(401);
    expect((await fetch(`${url}${PREFIX}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${url}/hello`)).json()).toEqual({ hello: 'world' });
    const echo = await fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(echo.status).toBe(200);
    expect(await echo.json()).toEqual({ got: { a: 1 } });
    // Nothing of the gateway at the root: no /files, no healthz.
    expect((await fetch(`${url}/healthz`)).status).toBe(404);
    expect((await fetch(`${url}/files`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0' } })).status).toBe(404);
  });

  it('serves the page under the prefix, redirecting the bare prefix to the directory form', async () => {
    const bare = await fetch(`${url}${PREFIX}`, { redirect: 'manual' });
    expect(bare.status).toBe(302);
    expect(bare.headers.get('location')).toBe(`${PREFIX}/`);
    expect((await fetch(`${url}${PREFIX}/`)).status).toBe(200);
  });

  it('issues Uppy session endpoints under the prefix', async () => {
    const response = await fetch(`${url}${PREFIX}/uppy/sessions`, { method: 'POST', headers: acme.auth });
    expect(response.status).toBe(201);
    expect(((await response.json()) as { companionEndpoint: string }).companionEndpoint).toMatch(new RegExp(`^${PREFIX}/uppy/session/`));
  });
});
