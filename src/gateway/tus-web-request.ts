/**
 * The Node request as the web `Request` @tus/server serves (`handleWeb`), and its `Response` back
 * onto the Node response, so that a PATCH body reaches the store without being copied.
 *
 * Why: @tus/server's own Node entry (`handle`) reads the body through `Readable.toWeb`, which
 * copies every chunk the socket delivers into a fresh Uint8Array (to detach it from Node's buffer
 * pool). For an upload that is a second copy of every byte and as much short-lived memory outside
 * V8's heap, which V8 answers with garbage collections: in a profile of the gateway receiving
 * 128 MiB, that adapter and the collections it caused took more CPU than the rest of the PATCH.
 * Here the body is a web stream over the request's own chunks: the store copies each once, into
 * its part buffer, and never keeps the chunk.
 *
 * Invariants: the body stream pulls one chunk at a time (backpressure reaches the socket), and a
 * client that goes away errors it, as `Readable.toWeb` did. Headers set on the Node response
 * before the answer (Upload-Expires, Tus-Checksum-Algorithm) are kept; the answer's own override
 * them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** The request body as a web stream of the request's own chunks (no copies). */
export function requestBodyStream(raw: IncomingMessage): ReadableStream<Uint8Array> {
  const chunks = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await chunks.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/** `raw` as a web Request at `url`, its body streamed without copies when the method has one. */
export function webRequestOf(raw: IncomingMessage, url: URL, method: string): Request {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.rawHeaders.length; i += 2) headers.append(raw.rawHeaders[i]!, raw.rawHeaders[i + 1]!);
  const hasBody = method === 'POST' || method === 'PATCH';
  return new Request(url, { method, headers, ...(hasBody ? { body: requestBodyStream(raw), duplex: 'half' } : {}) });
}

/** Writes a web Response (a short tus answer) to the Node response. */
export async function sendWebResponse(res: ServerResponse, response: Response): Promise<void> {
  const body = response.body ? Buffer.from(await response.arrayBuffer()) : undefined;
  if (res.headersSent) return void res.end();
  for (const [name, value] of response.headers) res.setHeader(name, value);
  res.writeHead(response.status);
  res.end(body);
}
