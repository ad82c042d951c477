/**
 * The circuit breakers against real targets: an S3 client like the worker's talks to the run's
 * MinIO through a TCP relay the test cuts and restores (the store "going down" for this client
 * only), and webhook deliveries go to a real HTTP receiver that answers what the test tells it.
 * What is checked is what reaches the target: once a breaker is open, nothing does until its probe.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeadBucketCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { notifyActivity } from '../../src/activities/notify';
import { createS3Client, loadConfig } from '../../src/worker';
import { createLogger } from '../../src/logging';
import { CircuitBreakers, CircuitOpenError, onBreakerStateChange, type BreakerState } from '../../src/resilience/circuit-breakers';
import { s3BreakerTarget, withS3CircuitBreaker } from '../../src/s3/circuit-breaker';
import { s3Failure } from '../../src/s3/classify-error';
import { stackEnv } from '../support/harness';
import { startCuttableRelay, type CuttableRelay } from '../support/cuttable-relay';

const config = loadConfig(stackEnv('breaker-test'));
const bucket = 'uploads';
let relay: CuttableRelay;
const clients: S3Client[] = [];
const logLines: string[] = [];
const logger = createLogger({ level: 'info', format: 'json' }, { destination: { write: (line: string) => logLines.push(line) } });

/** A worker-like S3 client through the relay, behind `breakers`. */
function guardedClient(breakers: CircuitBreakers): { s3: S3Client; target: string } {
  const s3 = createS3Client({ ...config.s3, endpoint: relay.url });
  clients.push(s3);
  const target = s3BreakerTarget({ endpoint: relay.url, region: config.s3.region });
  return { s3: withS3CircuitBreaker(s3, breakers, target), target };
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

/** Records state changes of `target` while the test runs. */
function watchStates(target: string): BreakerState[] {
  const states: BreakerState[] = [];
  const off = onBreakerStateChange((t, state) => t === target && states.push(state));
  cleanups.push(off);
  return states;
}

const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  const { hostname, port } = new URL(config.s3.endpoint!);
  relay = await startCuttableRelay({ host: hostname, port: Number(port) });
});
afterEach(() => {
  relay.restore();
  for (const cleanup of cleanups.splice(0)) cleanup();
});
afterAll(async () => {
  for (const s3 of clients) s3.destroy();
  await relay.close();
});

describe('S3 circuit breaker', () => {
  it('never counts answers from a living store: 404s and 403s leave it closed', async () => {
    const breakers = new CircuitBreakers({ failureThreshold: 2, halfOpenAfterMs: 60_000 });
    const { s3, target } = guardedClient(breakers);
    const states = watchStates(target);
    for (let i = 0; i < 5; i++) {
      const err = await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `missing-${i}` })));
      expect((err as Error).name).toBe('NotFound');
    }
    const denied = createS3Client({
      ...config.s3,
      endpoint: relay.url,
      credentials: { accessKeyId: 'nobody', secretAccessKey: 'wrong-secret-key' },
    });
    clients.push(denied);
    withS3CircuitBreaker(denied, breakers, target);
    for (let i = 0; i < 3; i++)
      expect(s3Failure('HeadBucket', await errorOf(denied.send(new HeadBucketCommand({ Bucket: bucket })))).nonRetryable).toBe(true);
    expect(breakers.state(target)).toBe('closed');
    expect(states).toEqual([]);
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  });

  it('opens after a run of network failures, then fails fast without reaching the store, with the time to its probe as retry hint', async () => {
    const breakers = new CircuitBreakers({ failureThreshold: 3, halfOpenAfterMs: 1_500 }, logger);
    const { s3, target } = guardedClient(breakers);
    const states = watchStates(target);
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    relay.cut();
    const before = relay.connections();
    // The SDK makes 3 attempts per command: the third failure in a row opens the breaker. (The
    // first attempt may go out on the pooled connection the cut just broke: no new connection.)
    const first = await errorOf(s3.send(new HeadBucketCommand({ Bucket: bucket })));
    expect(s3Failure('HeadBucket', first).type).toBe('S3.NetworkError');
    expect(relay.connections() - before).toBeLessThanOrEqual(3);
    expect(breakers.state(target)).toBe('open');

    const reached = relay.connections();
    for (let i = 0; i < 20; i++) {
      const err = await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `k-${i}` })));
      expect(err).toBeInstanceOf(CircuitOpenError);
      const failure = s3Failure('HeadObject', err);
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure.type).toBe('S3.CircuitOpen');
      expect(failure.nonRetryable).toBe(false);
      expect(Number(failure.nextRetryDelay)).toBeGreaterThan(0);
      expect(Number(failure.nextRetryDelay)).toBeLessThanOrEqual(1_500);
    }
    expect(relay.connections(), 'no request reaches the store while the breaker is open').toBe(reached);

    // The store comes back; after halfOpenAfter one probe goes through and closes the breaker.
    relay.restore();
    const hint = (await errorOf(s3.send(new HeadBucketCommand({ Bucket: bucket })))) as CircuitOpenError;
    await new Promise((resolve) => setTimeout(resolve, hint.retryAfterMs + 50));
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    expect(breakers.state(target)).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
    const logged = logLines.map((line) => JSON.parse(line) as { breakerTarget?: string; breakerState?: string; level: number });
    expect(logged.filter((l) => l.breakerTarget === target).map((l) => l.breakerState)).toEqual(['open', 'half-open', 'closed']);
    expect(logged.find((l) => l.breakerState === 'open')?.level).toBe(40);
  });

  it('lets one probe through when half-open, and opens again when the store is still down', async () => {
    const breakers = new CircuitBreakers({ failureThreshold: 2, halfOpenAfterMs: 500 });
    const { s3, target } = guardedClient(breakers);
    relay.cut();
    await errorOf(s3.send(new HeadBucketCommand({ Bucket: bucket })));
    expect(breakers.state(target)).toBe('open');
    await new Promise((resolve) => setTimeout(resolve, 550));
    const before = relay.connections();
    // Five calls at once: one probe reaches the store (and fails); the others wait for it, then fail
    // fast. The probe's own command fails fast too: the SDK's retry of it meets the open breaker.
    const errors = await Promise.all(
      Array.from({ length: 5 }, (_, i) => errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `p-${i}` })))),
    );
    expect(relay.connections() - before).toBe(1);
    expect(errors.filter((e) => e instanceof CircuitOpenError)).toHaveLength(5);
    expect(breakers.state(target)).toBe('open');
  });

  it('disabled, lets every request through', async () => {
    const breakers = new CircuitBreakers({ enabled: false, failureThreshold: 1 });
    const { s3, target } = guardedClient(breakers);
    relay.cut();
    const before = relay.connections();
    for (let i = 0; i < 3; i++)
      expect(await errorOf(s3.send(new HeadBucketCommand({ Bucket: bucket })))).not.toBeInstanceOf(CircuitOpenError);
    expect(relay.connections() - before).toBe(9);
    expect(breakers.state(target)).toBe('closed');
  });
});

describe('webhook circuit breaker', () => {
  let receiver: http.Server;
  let answer = 503;
  let received = 0;
  let url: string;
  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      received++;
      req.resume();
      res.writeHead(answer).end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise((resolve) => receiver.close(resolve)));

  const notifyWith = (breakers: CircuitBreakers) => notifyActivity({ breakers, webhook: { allowedHosts: ['127.0.0.1'] } });
  const input = () => ({ url, idempotencyKey: 'k', event: { type: 'upload.completed' } });

  it('opens per host after 5xx answers and fails deliveries fast with a retryable WebhookUnavailable', async () => {
    const breakers = new CircuitBreakers({ failureThreshold: 3, halfOpenAfterMs: 800 });
    const notify = notifyWith(breakers);
    const target = `webhook:${new URL(url).host}`;
    answer = 503;
    received = 0;
    for (let i = 0; i < 3; i++) expect(((await errorOf(notify(input()))) as ApplicationFailure).type).toBe('WebhookUnavailable');
    expect(received).toBe(3);
    expect(breakers.state(target)).toBe('open');
    const fast = (await errorOf(notify(input()))) as ApplicationFailure & { retryAfterMs?: number };
    expect(fast.type).toBe('WebhookUnavailable');
    expect(fast.nonRetryable).toBe(false);
    expect(fast.message).toMatch(/circuit breaker .* is open/);
    expect(fast.retryAfterMs).toBeGreaterThan(0);
    expect(received, 'an open breaker keeps deliveries from the receiver').toBe(3);
    answer = 200;
    await new Promise((resolve) => setTimeout(resolve, (fast.retryAfterMs ?? 0) + 50));
    expect(await notify(input())).toEqual({ status: 200 });
    expect(breakers.state(target)).toBe('closed');
  });

  it('never counts a refusal (4xx): the receiver is up', async () => {
    const breakers = new CircuitBreakers({ failureThreshold: 2, halfOpenAfterMs: 60_000 });
    const notify = notifyWith(breakers);
    answer = 400;
    received = 0;
    for (let i = 0; i < 4; i++) expect(((await errorOf(notify(input()))) as ApplicationFailure).type).toBe('WebhookRejected');
    expect(received).toBe(4);
    expect(breakers.state(`webhook:${new URL(url).host}`)).toBe('closed');
  });
});
