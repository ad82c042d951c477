/**
 * A real HTTP server on loopback that receives the saga's webhook events, for tests that check
 * what a receiver would see: body, signature, idempotency key. It can be told to fail.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
}

export interface WebhookReceiver {
  url: (path?: string) => string;
  received: ReceivedWebhook[];
  /** Status to answer per path (default 204). */
  respondWith: Map<string, number>;
  /** Per path: the answer waits until this settles (a slow receiver); the request is recorded on arrival. */
  holdUntil: Map<string, Promise<unknown>>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const respondWith = new Map<string, number>();
  const holdUntil = new Map<string, Promise<unknown>>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '/';
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        // recorded as-is
      }
      received.push({ path, headers: req.headers, body, json });
      const answer = () => {
        res.statusCode = respondWith.get(path) ?? 204;
        res.end();
      };
      const held = holdUntil.get(path);
      if (held) void held.then(answer, answer);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path = '/hook') => `http://127.0.0.1:${port}${path}`,
    received,
    respondWith,
    holdUntil,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
