/**
 * A webhook receiver for fault scenarios: a real HTTP server on a fixed loopback port that can be
 * taken down (connections refused) and brought back on the same port, made to answer with an
 * error status, or made to hold its answers (a slow receiver), while recording every delivery.
 *
 * Why not test/support/webhook-receiver.ts: that one listens on a port of its own choosing for the
 * life of a test file. A receiver that is "down for a while, then back" must come back at the same
 * URL, because the URL is part of the upload request recorded in workflow history.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';

/** One delivery attempt that reached the receiver. */
export interface SinkDelivery {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The raw body, as sent. */
  readonly body: string;
  /** The parsed body (`{}` when it was not JSON). */
  readonly json: Record<string, unknown>;
  /** The status the receiver answered with. */
  readonly status: number;
  readonly receivedAt: number;
}

/** A receiver that a scenario can break and repair. */
export interface WebhookSink {
  /** The webhook URL to put in upload requests (`path` defaults to `/hook`). */
  url(path?: string): string;
  /** Every delivery the receiver has answered, in the order of the answers (held ones join on release). */
  readonly deliveries: readonly SinkDelivery[];
  /** `true` while the server accepts connections. */
  readonly isUp: boolean;
  /** How many requests are waiting for an answer because of {@link WebhookSink.hold}. */
  readonly heldCount: number;
  /**
   * The status to answer with (2xx: delivered; 408/429/5xx: retried by the saga; other: rejected).
   * @default 204
   */
  status: number;
  /** Stops accepting connections and drops open ones: deliveries fail with "connection refused". */
  down(): Promise<void>;
  /** Listens again, on the same port. */
  up(): Promise<void>;
  /** From now on, requests wait for {@link WebhookSink.release} before they are answered. */
  hold(): void;
  /** Answers every held request (with the status current at that moment) and stops holding. */
  release(): void;
  /** Shuts the receiver down for good. */
  close(): Promise<void>;
}

/** Starts a {@link WebhookSink} on a free loopback port. */
export async function startWebhookSink(): Promise<WebhookSink> {
  const deliveries: SinkDelivery[] = [];
  const sockets = new Set<Socket>();
  let held: (() => void)[] = [];
  let holding = false;
  let up = false;
  let port = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(body) as Record<string, unknown>;
        } catch {
          // kept as raw body
        }
        deliveries.push({ path: req.url ?? '/', headers: req.headers, body, json, status: sink.status, receivedAt: Date.now() });
        res.statusCode = sink.status;
        res.end();
      };
      if (holding) held.push(answer);
      else answer();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (onPort: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(onPort, '127.0.0.1', () => {
        server.off('error', reject);
        up = true;
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!up) return resolve();
      up = false;
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });

  await listen(0);
  port = (server.address() as AddressInfo).port;

  const sink: WebhookSink = {
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    deliveries,
    get isUp() {
      return up;
    },
    get heldCount() {
      return held.length;
    },
    status: 204,
    down: stop,
    up: () => (up ? Promise.resolve() : listen(port)),
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      const waiting = held;
      held = [];
      for (const answer of waiting) answer();
    },
    close: async () => {
      sink.release();
      await stop();
    },
  };
  return sink;
}
