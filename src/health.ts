/**
 * Readiness checks shared by the gateway's `/readyz` and the worker's health endpoints, and the
 * worker's small `node:http` health server.
 *
 * Invariants:
 * - A check never takes longer than its timeout (2 s by default): a dependency that hangs is down.
 * - A check's answer is cached for its TTL (1.5 s by default), and concurrent probes share one
 *   check in flight: a storm of probes reaches a dependency at most once per TTL.
 * - Messages name the failure (error name, code, message) and never a credential: they come from
 *   errors of the clients, which carry none.
 */
import { createServer, type Server } from 'node:http';
import { HeadBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';
import { listenForUrl } from './net/listen';

/** One dependency's state, as probes show it. */
export interface CheckResult {
  status: 'up' | 'down';
  /** Why it is down (or a detail when up). */
  message?: string;
}

/** A check: resolves when the dependency answers, throws (or rejects) when it does not. */
export type Probe = (signal: AbortSignal) => Promise<unknown>;

/** Options of {@link cachedCheck}. */
export interface CheckOptions {
  /** @default 2000 */
  timeoutMs?: number;
  /** @default 1500 */
  ttlMs?: number;
}

/** What a failure says about itself, in one line: name, code and message. */
export function describeFailure(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const parts = [err.name !== 'Error' ? err.name : '', typeof code === 'string' ? code : '', status ? `HTTP ${status}` : '']
    .filter(Boolean)
    .join(' ');
  const message = err.message || (err as { cause?: unknown }).cause?.toString() || '';
  return [parts, message].filter(Boolean).join(': ') || 'failed';
}

/** `probe` with a timeout, its result cached for the TTL and shared by concurrent callers. */
export function cachedCheck(probe: Probe, options: CheckOptions = {}): () => Promise<CheckResult> {
  const timeoutMs = options.timeoutMs ?? 2000;
  const ttlMs = options.ttlMs ?? 1500;
  let cached: { at: number; result: Promise<CheckResult> } | undefined;
  const run = async (): Promise<CheckResult> => {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      await Promise.race([probe(controller.signal), timeout]);
      return { status: 'up' };
    } catch (err) {
      return { status: 'down', message: describeFailure(err) };
    } finally {
      clearTimeout(timer);
    }
  };
  return () => {
    const now = Date.now();
    if (!cached || now - cached.at >= ttlMs) cached = { at: now, result: run() };
    return cached.result;
  };
}

/** S3 is up when `HeadBucket` of `bucket` succeeds. */
export function s3BucketProbe(s3: S3Client, bucket: string): Probe {
  return (signal) => s3.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal: signal });
}

/** The body of a readiness answer, and whether every check is up. */
export async function readiness(
  checks: Record<string, () => Promise<CheckResult>>,
): Promise<{ ready: boolean; checks: Record<string, CheckResult> }> {
  const entries = await Promise.all(Object.entries(checks).map(async ([name, check]) => [name, await check()] as const));
  return { ready: entries.every(([, r]) => r.status === 'up'), checks: Object.fromEntries(entries) };
}

/** What the worker's health server reads of the worker (a `Worker` of @temporalio/worker has both). */
export interface HealthWorker {
  getState(): string;
  getStatus(): {
    runState: string;
    workflowPollerState: string;
    activityPollerState: string;
    numInFlightActivities: number;
    numInFlightWorkflowActivations: number;
  };
}

/** Options of {@link startWorkerHealthServer}. */
export interface WorkerHealthOptions {
  worker: HealthWorker;
  s3: S3Client;
  /** Bucket whose `HeadBucket` tells that S3 is reachable. */
  bucket: string;
  host: string;
  /** 0: any free port. */
  port: number;
  logger?: Logger;
  /** Check timeout and cache. @default { timeoutMs: 2000, ttlMs: 1500 } */
  check?: CheckOptions;
}

/** A listening health server. */
export interface WorkerHealthServer {
  /** `http://host:port` */
  url: string;
  close(): Promise<void>;
}

/**
 * The worker's `/livez` and `/readyz` on `node:http`: live while the worker is not stopped or
 * failed; ready while it is RUNNING with both pollers polling and S3 answers. `lastTaskAt` is
 * when the worker was last seen processing a task (sampled every second from its status).
 */
export async function startWorkerHealthServer(options: WorkerHealthOptions): Promise<WorkerHealthServer> {
  const { worker } = options;
  const s3 = cachedCheck(s3BucketProbe(options.s3, options.bucket), options.check);
  let lastTaskAt: string | null = null;
  const sample = () => {
    const status = worker.getStatus();
    if (status.numInFlightActivities > 0 || status.numInFlightWorkflowActivations > 0) lastTaskAt = new Date().toISOString();
  };
  const sampler = setInterval(sample, 1000).unref();
  const workerCheck = async (): Promise<CheckResult & Record<string, unknown>> => {
    const status = worker.getStatus();
    const up = status.runState === 'RUNNING' && status.workflowPollerState === 'POLLING' && status.activityPollerState === 'POLLING';
    return {
      status: up ? 'up' : 'down',
      ...(up
        ? {}
        : {
            message: `worker ${status.runState}, workflow poller ${status.workflowPollerState}, activity poller ${status.activityPollerState}`,
          }),
      runState: status.runState,
      workflowPollerState: status.workflowPollerState,
      activityPollerState: status.activityPollerState,
      activitiesInFlight: status.numInFlightActivities,
      workflowActivationsInFlight: status.numInFlightWorkflowActivations,
    };
  };
  const server: Server = createServer((request, response) => {
    const answer = (code: number, body: unknown) => {
      response.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      response.end(JSON.stringify(body));
    };
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') return answer(405, { error: 'MethodNotAllowed' });
    if (path === '/livez') {
      const state = worker.getState();
      const live = state !== 'STOPPED' && state !== 'FAILED';
      return answer(live ? 200 : 503, { status: live ? 'ok' : 'dead', worker: state });
    }
    if (path === '/readyz') {
      sample();
      void readiness({ worker: workerCheck, s3 }).then(
        ({ ready, checks }) => {
          if (!ready) options.logger?.warn({ checks }, 'worker not ready');
          answer(ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', checks, lastTaskAt });
        },
        (err: unknown) => answer(500, { status: 'unavailable', message: describeFailure(err) }),
      );
      return;
    }
    answer(404, { error: 'NotFound', message: 'health routes: /livez, /readyz' });
  });
  const url = await listenForUrl(server, options.port, options.host);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(sampler);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
