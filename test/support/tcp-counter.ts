/**
 * A loopback TCP relay that counts the bytes a client sends to a server: an independent measure
 * of how much a worker really transmitted to S3, resends included. Optionally throttled, so a
 * test can make an upload last long enough to act in the middle of it.
 */
import net from 'node:net';

export interface TcpCounter {
  /** `http://127.0.0.1:<port>`: point the client here instead of at the server. */
  url: string;
  /** Bytes the clients sent to the server. */
  bytesUp(): number;
  /** Bytes the server sent back to the clients (downloads). */
  bytesDown(): number;
  close(): Promise<void>;
}

export interface TcpCounterOptions {
  /** At most this many bytes per second upstream, per connection. @default unlimited */
  bytesPerSecond?: number;
}

/** {@link startTcpCounter} in front of an HTTP endpoint given as a URL (`http://host:port`, e.g. a MinIO's). */
export function startTcpCounterFor(endpoint: string, options: TcpCounterOptions = {}): Promise<TcpCounter> {
  const { hostname, port } = new URL(endpoint);
  return startTcpCounter({ host: hostname, port: Number(port) }, options);
}

export async function startTcpCounter(target: { host: string; port: number }, options: TcpCounterOptions = {}): Promise<TcpCounter> {
  let up = 0;
  let down = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const { bytesPerSecond } = options;
    client.on('data', (chunk: Buffer) => {
      up += chunk.length;
      if (!bytesPerSecond) return;
      client.pause();
      setTimeout(() => client.resume(), (chunk.length / bytesPerSecond) * 1000);
    });
    upstream.on('data', (chunk: Buffer) => {
      down += chunk.length;
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bytesUp: () => up,
    bytesDown: () => down,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
