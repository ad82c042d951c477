/**
 * A real HTTP server on loopback serving one file, with or without byte-range support, whose
 * content can be swapped mid-test to simulate a file that changes on the server.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FileServer {
  url: string;
  /** Replace the served bytes (the ETag and Last-Modified change with them). */
  setContent(content: Buffer): void;
  requests: { method: string; range?: string }[];
  close(): Promise<void>;
}

/** Options of {@link startFileServer}. */
export interface FileServerOptions {
  ranges: boolean;
  /** Loopback address to listen on. @default '127.0.0.1' */
  host?: string;
  /** @default a free port */
  port?: number;
  /** Each answer waits this long (to keep an upload reading from it mid-flight). @default 0 */
  delayMs?: number;
}

export async function startFileServer(content: Buffer, options: FileServerOptions): Promise<FileServer> {
  let body = content;
  let etag = `"${createHash('md5').update(body).digest('hex')}"`;
  let modified = new Date(Date.now() - 60_000).toUTCString();
  const requests: FileServer['requests'] = [];
  const server = http.createServer((req, res) => {
    if (options.delayMs) setTimeout(() => answer(req, res), options.delayMs);
    else answer(req, res);
  });
  function answer(req: http.IncomingMessage, res: http.ServerResponse) {
    requests.push({ method: req.method ?? 'GET', ...(req.headers.range ? { range: req.headers.range } : {}) });
    res.setHeader('ETag', etag);
    res.setHeader('Last-Modified', modified);
    if (options.ranges) res.setHeader('Accept-Ranges', 'bytes');
    const ifMatch = req.headers['if-match'];
    if (ifMatch && ifMatch !== etag) {
      res.statusCode = 412;
      return res.end();
    }
    const range = options.ranges ? /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '') : null;
    if (range) {
      const start = Number(range[1]);
      const end = Math.min(Number(range[2]), body.length - 1);
      res.statusCode = 206;
      res.setHeader('Content-Range', `bytes ${start}-${end}/${body.length}`);
      res.setHeader('Content-Length', end - start + 1);
      return res.end(req.method === 'HEAD' ? undefined : body.subarray(start, end + 1));
    }
    res.setHeader('Content-Length', body.length);
    res.end(req.method === 'HEAD' ? undefined : body);
  }
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/files/source.bin?token=not-logged`,
    requests,
    setContent(next: Buffer) {
      body = next;
      etag = `"${createHash('md5').update(body).digest('hex')}"`;
      modified = new Date().toUTCString();
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
