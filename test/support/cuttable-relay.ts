/**
 * A loopback TCP relay that can be cut and restored on the same port: the network between a
 * client and a real server (MinIO, Redis) going away and coming back, without stopping a server
 * other processes share. While cut, every open connection is destroyed and new ones are closed at
 * once (the client sees a reset). It counts the connections clients opened, cut or not.
 */
import net from 'node:net';

export interface CuttableRelay {
  /** `host:port` of the relay. */
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `true` between {@link cut} and {@link restore}. */
  readonly isCut: boolean;
  /** Connections clients opened to the relay so far (accepted or refused). */
  connections(): number;
  /** Destroys every open connection and refuses new ones. */
  cut(): void;
  /**
   * A network that drops packets: connections stay open (new ones are accepted) but no byte is
   * forwarded either way, until {@link cut} or {@link restore}.
   */
  stall(): void;
  /** Relays again. */
  restore(): void;
  close(): Promise<void>;
}

export async function startCuttableRelay(target: { host: string; port: number }): Promise<CuttableRelay> {
  let cut = false;
  let stalled = false;
  let opened = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    opened++;
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => stalled || upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => stalled || client.write(chunk));
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
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,
    get isCut() {
      return cut;
    },
    connections: () => opened,
    stall() {
      stalled = true;
    },
    cut() {
      cut = true;
      stalled = false;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore() {
      cut = false;
      stalled = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
