/**
 * The progress stream's route, `GET /uploads/:id/events`: Server-Sent Events of one upload until
 * its outcome is known, fed by the bus (prompt) and by a low-rate poll of the workflow's state and,
 * for presigned uploads still receiving parts, of ListParts (the phases no gateway sees: verify,
 * merge, compensation, expiry, parts sent straight to S3).
 *
 * Invariants: the workflow is the truth, the bus only makes the stream prompt; the stream opens
 * only after the uploads service found the upload under the caller's tenant (another tenant's
 * upload is a 404 before anything is subscribed); streams end before the gateway closes.
 */
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { UnauthorizedError } from './errors';
import type { ProgressBus } from '../progress/bus';
import type { ProgressEvent } from '../progress/view';
import { feedOptionsOf, ProgressFeed } from './progress-feed';
import type { ProgressSource } from './progress-poll';

/** How a stream polls, keeps its connection and measures its rate; every field has a default. */
export interface ProgressStreamOptions {
  /** How often a stream asks the workflow (and S3) while someone watches. @default 2000 */
  pollIntervalMs?: number;
  /** Interval of SSE comments that keep idle connections open through proxies. @default 15000 */
  keepAliveMs?: number;
  /** Window of the rate. @default 5000 */
  rateWindowMs?: number;
  /** Longest a stream stays open. @default 24 h */
  maxStreamMs?: number;
  /** WebSocket streams: interval of pings; a peer that did not answer the previous one by then is dropped. @default 30000 */
  pingIntervalMs?: number;
  /** WebSocket streams: how long a `cancel` waits for the compensation before the stream shows the state. @default 30000 */
  cancelWaitMs?: number;
}

/** What {@link registerProgressRoute} needs. */
export interface ProgressRouteOptions extends ProgressStreamOptions {
  bus: ProgressBus;
  uploads: ProgressSource;
  /** For the bytes of presigned uploads still receiving parts (ListParts). @default undefined: bytes appear once verified */
  s3?: S3Client;
  /** Counts open streams (`upload_saga_gateway_open_streams{protocol="sse"}`). @default undefined: not counted */
  metrics?: Pick<GatewayMetrics, 'streamOpened'>;
}

/** Writes one SSE event. */
function writeEvent(reply: FastifyReply, id: number, event: ProgressEvent): void {
  reply.raw.write(`id: ${id}\nevent: progress\ndata: ${JSON.stringify(event)}\n\n`);
}

/** `GET /uploads/:id/events`: the upload's progress as Server-Sent Events, until its outcome is known. */
export function registerProgressRoute(app: FastifyInstance, options: ProgressRouteOptions): void {
  const feedOptions = feedOptionsOf(options);
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const maxStreamMs = options.maxStreamMs ?? 24 * 3_600_000;
  // Streams are long-lived hijacked responses: a gateway that stops ends them first, or its close would wait for them.
  const openStreams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const close of [...openStreams]) close();
  });

  app.get<{ Params: { id: string } }>('/uploads/:id/events', async (request, reply) => {
    const tenant = request.tenant;
    if (!tenant) throw new UnauthorizedError();
    // Reads the state first: another tenant's or an unknown upload is a 404 before anything is subscribed.
    const feed = await ProgressFeed.open(feedOptions, tenant, request.params.id, request.log);
    let eventId = 0;
    let closed = false;
    const timers: NodeJS.Timeout[] = [];
    // Counted as open once its headers are out (see below); uncounted by close.
    const counted: { close?: () => void } = {};
    const close = () => {
      if (closed) return;
      closed = true;
      counted.close?.();
      openStreams.delete(close);
      for (const timer of timers) clearTimeout(timer);
      feed.close();
      if (!reply.raw.writableEnded) reply.raw.end();
    };

    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx and similar proxies would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    // The response's 'close' is the connection's end (the request's fires once its body is read).
    reply.raw.on('close', close);
    openStreams.add(close);
    counted.close = options.metrics?.streamOpened('sse');
    if (reply.raw.destroyed) close();
    feed.start((event) => {
      if (!closed) writeEvent(reply, ++eventId, event);
    }, close);
    if (closed) return reply;

    timers.push(
      setInterval(() => {
        if (!closed) reply.raw.write(': keep-alive\n\n');
      }, keepAliveMs),
      setTimeout(close, maxStreamMs),
    );
    return reply;
  });
}
