/**
 * A loopback TCP relay that flips one bit in the body of chosen HTTP requests on their way to the
 * server: a part corrupted in flight, after the client computed its checksum.
 *
 * Why it is built this way: toxiproxy has no corruption toxic, and corrupting the source file
 * would also change the checksum the worker computes (S3 would then accept the part). Flipping a
 * bit between the worker and S3 is what a faulty NIC, proxy or memory does. The relay follows the
 * HTTP/1.1 request framing of each connection (request line, headers, `Content-Length` body,
 * keep-alive requests one after the other) so it knows where a body starts; a request it cannot
 * frame (chunked body) is passed through untouched and counted, so a test can tell "corrupted"
 * from "could not corrupt". Everything the server sends back is relayed unchanged.
 */
import net from 'node:net';

/** What the relay knows about a request when deciding to corrupt it. */
export interface RelayedRequest {
  method: string;
  /** Path and query, as on the request line. */
  target: string;
  headers: Record<string, string>;
  contentLength: number;
}

/** Options of {@link startCorruptingRelay}. */
export interface CorruptingRelayOptions {
  /** Which requests to corrupt (the body must be non-empty). */
  corrupt: (request: RelayedRequest) => boolean;
  /**
   * At most this many requests are corrupted.
   * @default 1
   */
  times?: number;
  /**
   * Offset of the flipped byte within the body (clamped to the body).
   * @default the middle of the body
   */
  offset?: number;
}

export interface CorruptingRelay {
  /** `http://127.0.0.1:<port>`: point the client here instead of at the server. */
  url: string;
  /** The requests whose body had a bit flipped. */
  corrupted: RelayedRequest[];
  /** Requests the relay could not frame (e.g. chunked) and passed through untouched. */
  unframed: number;
  close(): Promise<void>;
}

const HEADER_END = Buffer.from('\r\n\r\n');

export async function startCorruptingRelay(
  target: { host: string; port: number },
  options: CorruptingRelayOptions,
): Promise<CorruptingRelay> {
  const sockets = new Set<net.Socket>();
  const relay: CorruptingRelay = { url: '', corrupted: [], unframed: 0, close: () => Promise.resolve() };
  const budget = () => relay.corrupted.length < (options.times ?? 1);

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    // Per-connection framing state.
    let header = Buffer.alloc(0);
    let bodyLeft = 0;
    let flipAt = -1; // offset within the remaining body at which to flip, or -1
    let passthrough = false;

    const onData = (chunk: Buffer): void => {
      const out: Buffer[] = [];
      let rest = chunk;
      while (rest.length > 0) {
        if (passthrough) {
          out.push(rest);
          break;
        }
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, rest.length);
          const piece = Buffer.from(rest.subarray(0, take));
          if (flipAt >= 0 && flipAt < take) {
            piece[flipAt] = piece[flipAt]! ^ 0x01;
            flipAt = -1;
          } else if (flipAt >= 0) {
            flipAt -= take;
          }
          out.push(piece);
          bodyLeft -= take;
          rest = rest.subarray(take);
          continue;
        }
        header = Buffer.concat([header, rest]);
        const end = header.indexOf(HEADER_END);
        if (end < 0) {
          rest = Buffer.alloc(0);
          break;
        }
        const head = header.subarray(0, end + HEADER_END.length);
        rest = header.subarray(end + HEADER_END.length);
        header = Buffer.alloc(0);
        out.push(head);
        const [requestLine = '', ...lines] = head.toString('latin1').split('\r\n');
        const [method = '', path = ''] = requestLine.split(' ');
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        if (headers['transfer-encoding']) {
          relay.unframed++;
          passthrough = true; // cannot follow this connection's framing any more
          continue;
        }
        const request: RelayedRequest = { method, target: path, headers, contentLength: Number(headers['content-length'] ?? 0) };
        bodyLeft = request.contentLength;
        flipAt = -1;
        if (bodyLeft > 0 && budget() && options.corrupt(request)) {
          flipAt = Math.min(bodyLeft - 1, Math.max(0, options.offset ?? Math.floor(bodyLeft / 2)));
          relay.corrupted.push(request);
        }
      }
      let writable = true;
      for (const piece of out) writable = upstream.write(piece);
      if (!writable) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    };

    client.on('data', onData);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('end', () => upstream.end());
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  relay.url = `http://127.0.0.1:${port}`;
  relay.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return relay;
}
