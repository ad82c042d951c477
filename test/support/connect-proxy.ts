/**
 * A minimal HTTP CONNECT proxy on loopback for tests: tunnels each CONNECT to the host and port it
 * names and records them, so a test can see which target a client asked the proxy for.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

/** A running {@link startConnectProxy}. */
export interface ConnectProxy {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** The `host:port` of every CONNECT, in order. */
  connects: string[];
  close(): Promise<void>;
}

/** Starts a CONNECT proxy on a free loopback port. */
export async function startConnectProxy(): Promise<ConnectProxy> {
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.statusCode = 405;
    res.end('this proxy only tunnels (CONNECT)');
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? '';
    connects.push(target);
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
    if (!match) return client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    const upstream = net.connect(Number(match[2]), match[1], () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connects,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
