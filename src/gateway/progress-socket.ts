/**
 * The progress stream over WebSocket, `GET /uploads/:id/socket` (upgrade): the same events as the
 * SSE stream (same bus, same view, same poll; see progress-feed.ts), plus what only a two-way
 * connection can do — the client cancels the upload with `{"type":"cancel"}` and sees the outcome.
 * Built on @fastify/websocket (the `ws` library under fastify's routing, so the gateway's
 * authentication and rate-limit hook runs on the upgrade request like on any other).
 *
 * Protocol (docs/reference/http-endpoints.md#websocket-progress-stream):
 * - server → client, JSON text frames: `{"type":"progress", ...ProgressEvent}` (exactly the SSE
 *   event plus `type`), `{"type":"cancel-requested"}`, `{"type":"error","error":<code>,"message"}`;
 * - client → server: `{"type":"cancel"}`; anything else is answered by an error frame and the
 *   connection stays open;
 * - close codes: 1000 after the final event, 1001 when the gateway stops or the stream reached its
 *   longest life, 1009 for a frame over 4 KiB; a peer that does not answer a ping before the next
 *   one is dropped (no close frame: the client sees 1006).
 *
 * Invariants: the upload is found under the caller's tenant before the upgrade (another tenant's
 * is a 404 answered over HTTP, nothing subscribed); a cancel goes through the uploads service's
 * `cancel`, as the tus DELETE does, with the connection's tenant; a bad frame never ends the
 * connection or the gateway; streams end before the gateway closes.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { GatewayError, UnauthorizedError } from './errors';
import type { ProgressBus } from '../progress/bus';
import { observationOfState } from '../progress/view';
import { feedOptionsOf, ProgressFeed } from './progress-feed';
import { markedObservation, pollObservation, type ProgressSource } from './progress-poll';
import type { ProgressStreamOptions } from './progress-route';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { UploadsService } from './uploads-service';

/** Largest frame a client may send; cancel is 17 bytes. */
export const MAX_CLIENT_FRAME_BYTES = 4096;

/** Close codes the server uses (RFC 6455 §7.4.1). */
export const SocketCloseCode = {
  /** The final event was sent: the upload's outcome is known. */
  Ended: 1000,
  /** The gateway is stopping, or the stream reached `maxStreamMs`: reconnect to go on. */
  GoingAway: 1001,
} as const;

/** What {@link registerProgressSocket} needs. */
export interface ProgressSocketOptions extends ProgressStreamOptions {
  bus: ProgressBus;
  uploads: ProgressSource & Pick<UploadsService, 'cancel'>;
  /** For the bytes of presigned uploads still receiving parts (ListParts). */
  s3?: S3Client;
  /** Counts open streams (`upload_saga_gateway_open_streams{protocol="websocket"}`). @default undefined: not counted */
  metrics?: Pick<GatewayMetrics, 'streamOpened'>;
}

/** A message a client sent, once understood. */
type ClientMessage = { type: 'cancel' };

/** Parses a client frame: the message, or the error frame to answer with. */
export function parseClientMessage(
  data: Buffer | ArrayBuffer | Buffer[],
  isBinary: boolean,
): ClientMessage | { error: string; message: string } {
  if (isBinary) return { error: 'InvalidMessage', message: 'send JSON text frames, e.g. {"type":"cancel"}' };
  const text = Buffer.isBuffer(data)
    ? data.toString('utf8')
    : Array.isArray(data)
      ? Buffer.concat(data).toString('utf8')
      : Buffer.from(data).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: 'InvalidMessage', message: 'a message must be a JSON object, e.g. {"type":"cancel"}' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof (parsed as { type?: unknown }).type !== 'string') {
    return { error: 'InvalidMessage', message: 'a message must be a JSON object with a string "type", e.g. {"type":"cancel"}' };
  }
  const type = (parsed as { type: string }).type;
  if (type === 'cancel') return { type };
  return { error: 'UnknownMessageType', message: `unknown message type ${JSON.stringify(type.slice(0, 64))}; the only one is "cancel"` };
}

/** `GET /uploads/:id/socket`: the upload's progress over a WebSocket, with ping/pong and cancel. */
export async function registerProgressSocket(app: FastifyInstance, options: ProgressSocketOptions): Promise<void> {
  const feedOptions = feedOptionsOf(options);
  const pingIntervalMs = options.pingIntervalMs ?? 30_000;
  const maxStreamMs = options.maxStreamMs ?? 24 * 3_600_000;
  const cancelWaitMs = options.cancelWaitMs ?? 30_000;
  // One upgrade listener per server: the plugin may already be there (registered by the application).
  if (!app.hasDecorator('websocketServer')) await app.register(websocket, { options: { maxPayload: MAX_CLIENT_FRAME_BYTES } });
  const openSockets = new Set<() => void>();
  // Upgrade requests refused over HTTP (401, 404, 429) leave a connection Node no longer manages:
  // each is ended once its answer is sent, and any left is destroyed when the gateway stops, or
  // its close would wait for them.
  const refusable = new Set<Duplex>();
  const onUpgrade = (_request: unknown, connection: Duplex) => {
    refusable.add(connection);
    connection.once('close', () => refusable.delete(connection));
  };
  app.server.on('upgrade', onUpgrade);
  app.addHook('onResponse', async (request) => {
    if (request.raw.headers.upgrade?.toLowerCase() === 'websocket') request.raw.socket.destroy();
  });
  app.addHook('preClose', async () => {
    app.server.off('upgrade', onUpgrade);
    for (const close of [...openSockets]) close();
    for (const connection of refusable) connection.destroy();
  });

  app.get<{ Params: { id: string } }>(
    '/uploads/:id/socket',
    {
      websocket: true,
      // Before the upgrade: no token is a 401 (the gateway's hook), another tenant's or an unknown upload a 404.
      preValidation: async (request) => {
        if (!request.tenant) throw new UnauthorizedError();
        // An upload known merged is found from its mark, without a query waiting on its held workflow task.
        if (!(await markedObservation(options.uploads, request.tenant, request.params.id)))
          await pollObservation(options.uploads, undefined, request.tenant, request.params.id);
      },
    },
    async (socket: WebSocket, request) => {
      refusable.delete(request.raw.socket);
      const tenant = request.tenant;
      const uploadId = request.params.id;
      let closed = false;
      let feed: ProgressFeed | undefined;
      const timers: NodeJS.Timeout[] = [];
      const send = (message: object) => {
        if (!closed && socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
      };
      const close = (code?: number, reason?: string) => {
        if (closed) return;
        closed = true;
        openSockets.delete(goAway);
        for (const timer of timers) clearTimeout(timer);
        feed?.close();
        if (code !== undefined && socket.readyState === socket.OPEN) socket.close(code, reason);
        else if (code === undefined) socket.terminate();
        uncount();
      };
      const goAway = () => close(SocketCloseCode.GoingAway, 'gateway stopping');
      const uncount = options.metrics?.streamOpened('websocket') ?? (() => undefined);
      openSockets.add(goAway);
      socket.on('close', () => close(SocketCloseCode.Ended));
      socket.on('error', () => close());

      // Keep-alive: a peer that has not answered the last ping by the next one is gone.
      let alive = true;
      socket.on('pong', () => (alive = true));
      timers.push(
        setInterval(() => {
          if (!alive) return close();
          alive = false;
          socket.ping();
        }, pingIntervalMs),
        setTimeout(() => close(SocketCloseCode.GoingAway, 'longest stream time reached; reconnect'), maxStreamMs),
      );

      let cancelling = false;
      socket.on('message', (data: Buffer, isBinary: boolean) => {
        const message = parseClientMessage(data, isBinary);
        if ('error' in message) return send({ type: 'error', ...message });
        send({ type: 'cancel-requested' });
        if (cancelling) return;
        cancelling = true;
        // The HTTP cancel's path and authorisation: the uploads service, with this connection's tenant.
        options.uploads
          .cancel(tenant, uploadId, { waitMs: cancelWaitMs })
          .then((state) => feed?.apply(observationOfState(state)))
          .catch((err: unknown) => {
            if (err instanceof GatewayError) return send({ type: 'error', error: err.code, message: err.message });
            request.log.error({ err }, 'cancel over WebSocket failed');
            send({ type: 'error', error: 'Internal', message: `the cancel failed; see the gateway's log (request id ${request.id})` });
          })
          .finally(() => (cancelling = false));
      });

      try {
        feed = await ProgressFeed.open(feedOptions, tenant, uploadId, request.log);
      } catch (err) {
        send({
          type: 'error',
          error: err instanceof GatewayError ? err.code : 'Internal',
          message: 'the upload could not be read; reconnect',
        });
        return close(SocketCloseCode.GoingAway, 'upload not readable');
      }
      if (closed) return feed.close();
      feed.start(
        (event) => send({ type: 'progress', ...event }),
        () => close(SocketCloseCode.Ended, 'upload ended'),
      );
    },
  );
}
