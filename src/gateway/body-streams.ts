/**
 * The gateway's memory budget for request bodies: caps on the bodies received at once (per
 * tenant across replicas: 429; per replica: 503; both with `Retry-After`, before a byte of the
 * body is read, nothing recorded) and an idle timeout that ends a body which stopped sending, so
 * that a stalled client cannot hold a slot — or the memory behind it — for ever.
 *
 * The bound this gives, per replica (see {@link bodyStreamMemoryBound}):
 *
 *   RSS ≤ base + UPLOAD_SAGA_GATEWAY_BODY_STREAMS × (UPLOAD_SAGA_GATEWAY_TUS_PARTS_IN_FLIGHT + 1) × (part size + 5 MiB) + 128 MiB
 *
 * because a body being received holds at most what the chunk writer holds (tus-chunk-writer.ts:
 * the parts being sent and the part being received, each copied once into a part buffer; the
 * writer stops reading while every slot is busy), and no more bodies than the cap are read. A part
 * buffer has room for a part size + 5 MiB: a PATCH folds a remainder of up to 5 MiB − 1 into its
 * last part (parts of varying size, patch `gateway-tail-parts`). The 128 MiB are for buffers the garbage
 * collector has not reclaimed yet: V8 starts collecting once they grew by 64 MiB since its last
 * full collection, and uploads keep allocating while it marks (up to 76 MiB beyond measured).
 *
 * Why it is built this way:
 * - One `onRequest` hook, after authentication (it needs the tenant), on the routes that stream
 *   bodies (`config: { bodyStream: true }`; tus marks its routes so). The hook runs before any
 *   content-type parser or route handler: a refused body is never buffered. Node reads and
 *   discards what the client still sends, keeping the connection, so the client reliably reads
 *   the refusal (closing at once would reset the connection under the body it is sending).
 * - A slot is given back when the response closes — answered, or the connection gone.
 * - Idle means: the body is not complete, the request holds no unread bytes (a consumer that is
 *   slow, e.g. waiting for S3, leaves bytes buffered and is not the client's stall), and the
 *   socket read nothing for `bodyIdleTimeoutMs`. An idle body's socket is destroyed, which is
 *   exactly a dropped connection to the tus store: what arrived is sent or staged and recorded,
 *   and the client resumes from the offset HEAD reports. One timer checks every stream.
 * - Per-tenant counting is a lease per stream (body-stream-leases.ts): in Redis with a TTL across
 *   replicas, in memory without Redis. The replica's own count needs no lease.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import { tenantSettings, type GatewayConfig } from './config';
import { BodyStreamsFullError } from './errors';
import { MIN_PART_BYTES } from '../upload/gateway-upload';
import type { BodyStreamLeases } from './body-stream-leases';

/** `Retry-After` of a refused body stream, in seconds. */
export const BODY_STREAM_RETRY_AFTER_SECONDS = 5;

/**
 * Buffers the garbage collector may not have reclaimed yet: part of the bound. V8 starts a full
 * collection once buffers grew by 64 MiB, and uploads keep allocating while it marks (the `gateway`
 * command also collects the young generation every 32 MiB received: heap-settings.ts).
 */
export const GC_ALLOWANCE_BYTES = 128 * 1024 * 1024;

/** What the memory bound is computed from. */
export interface BodyStreamMemoryInputs {
  /** Bodies one replica receives at once (`maxBodyStreams`). */
  bodyStreams: number;
  /** tus part size in bytes. */
  partSize: number;
  /** Parts one PATCH sends while it receives the next (`tusPartsInFlight`). */
  partsInFlight: number;
  /** Every part has the part size (`tusEqualParts`): no room for a folded remainder. */
  equalParts?: boolean;
}

/**
 * The bytes request bodies may hold on one replica, above its idle RSS: streams × (parts in
 * flight + 1) × (part size + 5 MiB) — the parts being sent and the part being received, in buffers
 * with room for a folded remainder — plus {@link GC_ALLOWANCE_BYTES}.
 */
export function bodyStreamMemoryBound(inputs: BodyStreamMemoryInputs): { perStreamBytes: number; totalBytes: number } {
  const perStreamBytes = (inputs.partsInFlight + 1) * (inputs.partSize + (inputs.equalParts ? 0 : MIN_PART_BYTES));
  return { perStreamBytes, totalBytes: inputs.bodyStreams * perStreamBytes + GC_ALLOWANCE_BYTES };
}

/** Whether the request has a body to stream: a length above zero, or chunked. */
function carriesBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return request.headers['transfer-encoding'] !== undefined;
}

/** Options of {@link limitBodyStreams}. */
export interface BodyStreamLimitsOptions {
  config: Pick<GatewayConfig, 'defaults' | 'tenants' | 'maxBodyStreams' | 'bodyIdleTimeoutMs'>;
  leases: BodyStreamLeases;
  metrics: GatewayMetrics;
}

/** One body being received. */
interface BodyStream {
  request: IncomingMessage;
  log: FastifyBaseLogger;
  /** Socket bytes read when last seen moving. */
  bytesRead: number;
  /** When it was last seen moving (ms). */
  movedAt: number;
}

/**
 * Adds the caps and the idle timeout to the (encapsulated) gateway instance. Register after the
 * authentication hook: it reads `request.tenant`.
 */
export function limitBodyStreams(app: FastifyInstance, options: BodyStreamLimitsOptions): void {
  const { config, leases, metrics } = options;
  const idleMs = config.bodyIdleTimeoutMs;
  /** Bodies being received on this replica. */
  const streams = new Set<BodyStream>();
  let watchdog: NodeJS.Timeout | undefined;

  const checkIdle = () => {
    const now = Date.now();
    for (const stream of streams) {
      const { request, log } = stream;
      if (request.complete || request.destroyed) continue;
      const bytesRead = request.socket?.bytesRead ?? 0;
      if (bytesRead !== stream.bytesRead || request.readableLength > 0) {
        stream.bytesRead = bytesRead;
        stream.movedAt = now;
      } else if (now - stream.movedAt >= idleMs) {
        metrics.bodyStreamsIdleEnded.inc();
        log.info({ idleMs, bytesRead }, 'request body sent nothing for the idle timeout: ended like a dropped connection');
        // A dropped connection, exactly: the store keeps what arrived, the client resumes with HEAD.
        request.socket?.destroy();
      }
    }
  };

  app.addHook('onRequest', async (request, reply) => {
    if (!request.routeOptions.config?.bodyStream || !request.tenant || !carriesBody(request.raw)) return;
    const refuse = (error: BodyStreamsFullError) => {
      metrics.bodyStreamsRefused.inc({ scope: error.scope });
      return error;
    };
    const replicaFull = () => new BodyStreamsFullError('replica', config.maxBodyStreams, BODY_STREAM_RETRY_AFTER_SECONDS);
    // Checked before the tenant's lease too, so that a full replica costs no Redis call.
    if (streams.size >= config.maxBodyStreams) throw refuse(replicaFull());
    const cap = tenantSettings(config, request.tenant).maxBodyStreams;
    const lease = await leases.acquire(request.tenant, cap);
    if (lease === undefined) throw refuse(new BodyStreamsFullError('tenant', cap, BODY_STREAM_RETRY_AFTER_SECONDS));
    if (streams.size >= config.maxBodyStreams) {
      void leases.release(request.tenant, lease);
      throw refuse(replicaFull());
    }
    const stream: BodyStream = {
      request: request.raw,
      log: request.log,
      bytesRead: request.raw.socket?.bytesRead ?? 0,
      movedAt: Date.now(),
    };
    streams.add(stream);
    metrics.bodyStreams.set(streams.size);
    watchdog ??= setInterval(checkIdle, Math.min(1000, Math.ceil(idleMs / 4))).unref();
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      void leases.release(request.tenant, lease);
      streams.delete(stream);
      metrics.bodyStreams.set(streams.size);
      if (streams.size === 0 && watchdog) {
        clearInterval(watchdog);
        watchdog = undefined;
      }
    };
    if (reply.raw.closed) end();
    else reply.raw.once('close', end);
  });

  app.addHook('onClose', async () => {
    if (watchdog) clearInterval(watchdog);
    leases.close();
  });
}
