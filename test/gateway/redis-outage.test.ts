/**
 * The gateway when Redis is away: the machine's Redis is reached through a relay the test cuts (a
 * refused network) or stalls (a network that drops every packet: connections stay open, nothing
 * answers). Either way, what needs Redis answers 503 with `Retry-After` within the 2 s bound — never
 * 500, never a hang — `/readyz` reports Redis down, and after the cut the gateway recovers alone.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3MultipartPlugin } from '../../src/gateway/s3-multipart';
import { REDIS_CALL_TIMEOUT_MS, REDIS_RETRY_AFTER_SECONDS } from '../../src/gateway/redis-call';
import { startCuttableRelay, type CuttableRelay } from '../support/cuttable-relay';
import { connectTestStack, type TestStack } from '../support/harness';
import { startTestGateway, testTenant, tusRequest, type TestGateway } from './gateway-harness';

const acme = testTenant('acme');
let stack: TestStack;
let relay: CuttableRelay;
let redis: Redis;
let gateway: TestGateway;

beforeAll(async () => {
  stack = await connectTestStack();
  relay = await startCuttableRelay({ host: '127.0.0.1', port: 6379 });
  redis = new Redis(`redis://127.0.0.1:${relay.port}`, { maxRetriesPerRequest: 3 });
  redis.on('error', () => undefined); // expected while cut; the gateway's own process logs it (run.ts)
  gateway = await startTestGateway(stack, [acme], { redis, plugins: [s3MultipartPlugin()] });
});
afterAll(async () => {
  await gateway?.close();
  redis?.disconnect();
  await relay?.close();
  await stack?.close();
});

/** The requests that need Redis: the rate limit (any authenticated request), a presigned session. */
async function redisDependentAnswers(url: string): Promise<{ what: string; status: number; retryAfter: string | null; ms: number }[]> {
  const requests: [string, () => Promise<Response>][] = [
    ['tus POST', () => tusRequest(`${url}/files`, 'POST', { ...acme.auth, 'Upload-Length': '10' })],
    ['tus HEAD', () => tusRequest(`${url}/files/${randomBytes(16).toString('hex')}`, 'HEAD', acme.auth)],
    ['uppy session', () => fetch(`${url}/uppy/sessions`, { method: 'POST', headers: acme.auth })],
    ['presigned by session', () => fetch(`${url}/uppy/session/${randomBytes(32).toString('base64url')}/s3/params?filename=a.bin`)],
  ];
  const answers = [];
  for (const [what, send] of requests) {
    const started = Date.now();
    const answer = await send();
    await answer.arrayBuffer();
    answers.push({ what, status: answer.status, retryAfter: answer.headers.get('retry-after'), ms: Date.now() - started });
  }
  return answers;
}

/** ioredis reconnects by itself: the same gateway, nothing restarted, is ready again. */
async function readyAgain(): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await fetch(`${gateway.url}/readyz`)).status !== 200) {
    expect(Date.now(), '/readyz ready again within 30 s').toBeLessThan(deadline);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('gateway with Redis away', () => {
  it('answers 503 with Retry-After while Redis is cut off, reports it in /readyz, and recovers by itself', async () => {
    relay.cut();
    try {
      for (const answer of await redisDependentAnswers(gateway.url)) {
        expect(answer, answer.what).toMatchObject({ status: 503, retryAfter: String(REDIS_RETRY_AFTER_SECONDS) });
        expect(answer.ms, answer.what).toBeLessThan(REDIS_CALL_TIMEOUT_MS + 1_000);
      }
      const ready = await fetch(`${gateway.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { checks: Record<string, { status: string }> }).checks.redis?.status).toBe('down');
      expect((await fetch(`${gateway.url}/livez`)).status).toBe(200);
    } finally {
      relay.restore();
    }
    await readyAgain();
    const head = await tusRequest(`${gateway.url}/files/${randomBytes(16).toString('hex')}`, 'HEAD', acme.auth);
    expect(head.status).toBe(404);
    const session = await fetch(`${gateway.url}/uppy/sessions`, { method: 'POST', headers: acme.auth });
    expect(session.status).toBe(201);
  });

  it('answers 503 within the bound when the network to Redis drops every packet (no reset: ioredis would wait)', async () => {
    relay.stall();
    try {
      for (const answer of await redisDependentAnswers(gateway.url)) {
        expect(answer, answer.what).toMatchObject({ status: 503, retryAfter: String(REDIS_RETRY_AFTER_SECONDS) });
        expect(answer.ms, answer.what).toBeLessThan(REDIS_CALL_TIMEOUT_MS + 1_000);
      }
      expect((await fetch(`${gateway.url}/readyz`)).status).toBe(503);
    } finally {
      relay.cut(); // the stalled connections lost bytes: reset them, as a network that comes back would
      relay.restore();
    }
    await readyAgain();
    expect((await fetch(`${gateway.url}/uppy/sessions`, { method: 'POST', headers: acme.auth })).status).toBe(201);
  });
});
