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
import { listAllParts } from '../s3/list-parts';
import type { GatewayUploadState } from '../upload/gateway-upload';
import { UnauthorizedError } from './errors';
import type { ProgressBus } from './progress-bus';
import { observationOfState, ProgressView, type ProgressEvent, type ProgressObservation } from './progress-view';

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
}

/** Reads an upload's progress from the workflow (and S3, for presigned parts). */
export interface ProgressSource {
  /**
   * The upload's state for the tenant.
   * @throws UploadNotFoundError (404) for unknown ids and other tenants' uploads
   */
  state(tenant: string, uploadId: string): Promise<GatewayUploadState>;
}

/** An observation from the workflow, with ListParts bytes for a presigned upload not yet merged. */
export async function pollObservation(
  source: ProgressSource,
  s3: S3Client | undefined,
  tenant: string,
  uploadId: string,
): Promise<ProgressObservation> {
  const at = Date.now();
  const state = await source.state(tenant, uploadId);
  const observation = observationOfState(state, at);
  // Until the merge, the parts S3 holds are the bytes received (the workflow learns the size at verify).
  if (
    s3 &&
    state.mode === 'presigned' &&
    state.outcome === 'running' &&
    (state.phase === 'receive-parts' || state.phase === 'verify') &&
    state.multipartUploadId
  ) {
    try {
      const parts = await listAllParts(
        s3,
        { bucket: state.bucket, key: state.key, multipartUploadId: state.multipartUploadId },
        AbortSignal.timeout(10_000),
      );
      observation.bytes = parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    } catch {
      // Aborted meanwhile (completed, cancelled, expired): the next poll shows the outcome.
    }
  }
  return observation;
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
  const pollIntervalMs = options.pollIntervalMs ?? 2_000;
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
    const uploadId = request.params.id;
    const pending: ProgressObservation[] = [];
    // Created once the first state is read; observations arriving before wait in `pending`.
    const stream: { view?: ProgressView } = {};
    let eventId = 0;
    let closed = false;
    const timers: NodeJS.Timeout[] = [];
    let unsubscribe: (() => Promise<void>) | undefined;

    // Counted as open once its headers are out (see below); uncounted by close.
    const counted: { close?: () => void } = {};
    const close = () => {
      if (closed) return;
      closed = true;
      counted.close?.();
      openStreams.delete(close);
      for (const timer of timers) clearTimeout(timer);
      void unsubscribe?.().catch(() => undefined);
      if (!reply.raw.writableEnded) reply.raw.end();
    };
    const flush = () => {
      const view = stream.view;
      if (closed || !view) return;
      const event = view.next(Date.now());
      if (event) writeEvent(reply, ++eventId, event);
      if (view.ended) close();
    };
    const onObservation = (observation: ProgressObservation) => {
      if (!stream.view) pending.push(observation);
      else {
        stream.view.apply(observation);
        flush();
      }
    };

    // Read the state first: another tenant's or an unknown upload is a 404 before anything is subscribed.
    let first = await pollObservation(options.uploads, options.s3, tenant, uploadId);
    try {
      unsubscribe = await options.bus.subscribe(tenant, uploadId, onObservation);
      // Whatever changed between the read and the subscription: read again.
      first = await pollObservation(options.uploads, options.s3, tenant, uploadId);
    } catch (err) {
      // The bus is down: the stream still works from the poll alone.
      request.log.warn({ err }, 'progress stream without the bus');
    }

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
    const view = new ProgressView(uploadId, first, options.rateWindowMs);
    for (const observation of pending.splice(0)) view.apply(observation);
    stream.view = view;
    flush();
    if (closed) return reply;

    let polling = false;
    timers.push(
      setInterval(() => {
        if (polling || closed) return;
        polling = true;
        pollObservation(options.uploads, options.s3, tenant, uploadId)
          .then(onObservation)
          .catch(() => undefined) // Temporal briefly away: the next poll tries again
          .finally(() => (polling = false));
      }, pollIntervalMs),
      setInterval(() => {
        if (!closed) reply.raw.write(': keep-alive\n\n');
      }, keepAliveMs),
      setTimeout(close, maxStreamMs),
    );
    return reply;
  });
}
