/**
 * A loopback TCP load balancer in front of gateway replicas, as a deployment puts one in front of
 * them: clients know one address, each new connection goes to the next replica (round robin), and
 * a replica that refuses the connection is skipped. A replica that dies takes its open connections
 * with it — the client sees them reset and retries through the balancer, which sends it to a live
 * replica. It counts the connections each replica was given and those open to it now.
 *
 * Why TCP and not HTTP: the replicas answer with URLs built from the request's `Host`, which a
 * TCP relay leaves alone, and a dead replica must look to the client exactly as it would behind
 * a real balancer: a reset in the middle of a request.
 */
import net from 'node:net';

export interface TcpBalancer {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Connections handed to each backend so far, in the order of `backends`. */
  connections(): number[];
  /** Connections open to each backend now. */
  openConnections(): number[];
  close(): Promise<void>;
}

export async function startTcpBalancer(backends: readonly { host: string; port: number }[]): Promise<TcpBalancer> {
  const handed = backends.map(() => 0);
  const open = backends.map(() => 0);
  const sockets = new Set<net.Socket>();
  let next = 0;

  /** Connects to the first backend from the round-robin position that accepts, or undefined. */
  const connectToLive = async (): Promise<{ index: number; socket: net.Socket } | undefined> => {
    const start = next++ % backends.length;
    for (let i = 0; i < backends.length; i++) {
      const index = (start + i) % backends.length;
      const { host, port } = backends[index]!;
      const socket = await new Promise<net.Socket | undefined>((resolve) => {
        const s = net.connect(port, host);
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(undefined));
      });
      if (socket) return { index, socket };
    }
    return undefined;
  };

  const server = net.createServer((client) => {
    sockets.add(client);
    client.pause();
    client.once('error', () => client.destroy());
    void connectToLive().then((upstream) => {
      if (!upstream || client.destroyed) {
        upstream?.socket.destroy();
        client.resetAndDestroy();
        sockets.delete(client);
        return;
      }
      const { index, socket } = upstream;
      handed[index]!++;
      open[index]!++;
      sockets.add(socket);
      // Ends travel through the pipes (a replica killed mid-response closes its side: the client
      // sees the response cut short); an error on either side destroys both.
      let counted = true;
      const forget = () => {
        if (counted) open[index]!--;
        counted = false;
        sockets.delete(client);
        sockets.delete(socket);
      };
      const fail = () => {
        client.destroy();
        socket.destroy();
      };
      socket.on('error', fail).on('close', forget);
      client.on('error', fail).on('close', forget);
      client.pipe(socket);
      socket.pipe(client);
      client.resume();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => [...handed],
    openConnections: () => [...open],
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
