/**
 * Picks free TCP ports on a local interface.
 *
 * Why it works this way: the servers we launch (Temporal CLI, MinIO) need their ports on the
 * command line, and we want to know the addresses before they are up. We ask the kernel for
 * port 0 on the interface the server will bind to, and keep every probe socket open until all
 * requested ports are known, so one call never hands out the same port twice. There is an
 * unavoidable window between closing the probe and the server binding; callers that launch
 * servers retry with fresh ports when the server reports "address already in use".
 */
import * as net from 'node:net';

/**
 * Returns `count` distinct TCP ports that were free on `host` a moment ago.
 *
 * @param count - how many ports to pick
 * @param host - the interface the ports will be bound on; `127.0.0.1` keeps everything local
 */
export async function findFreePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      ports.push(await listenOnEphemeralPort(server, host));
    }
    return ports;
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** Returns one TCP port that was free on `host` a moment ago (see {@link findFreePorts}). */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await findFreePorts(1, host);
  if (port === undefined) throw new Error('findFreePorts returned no port');
  return port;
}

function listenOnEphemeralPort(server: net.Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new Error(`unexpected listen address ${String(address)}`));
        return;
      }
      resolve(address.port);
    });
  });
}

/** `true` if every port in `ports` can be bound on `host` right now (an empty list is `true`). */
export async function arePortsFree(ports: readonly number[], host = '127.0.0.1'): Promise<boolean> {
  for (const port of ports) {
    const server = net.createServer();
    const free = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen({ port, host, exclusive: true }, () => resolve(true));
    });
    if (free) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (!free) return false;
  }
  return true;
}
