/**
 * Starts an HTTP server listening and returns the URL it can be reached at: a server bound to every
 * interface (`0.0.0.0`, `::`) is reached on the loopback address. Shared by the worker's health and
 * metrics endpoints.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listens on `host:port` (port 0: any free port) and resolves with `http://<host>:<port>`. */
export async function listenForUrl(server: Server, port: number, host: string): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const reachable = address.address === '0.0.0.0' || address.address === '::' ? '127.0.0.1' : address.address;
  return `http://${address.family === 'IPv6' && reachable !== '127.0.0.1' ? `[${reachable}]` : reachable}:${address.port}`;
}
