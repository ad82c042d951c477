/**
 * The worker's outbound HTTP client on its own, against real loopback servers: it behaves like
 * `fetch` where the worker relies on it (bodies, HEAD, redirects, timeouts) and checks every hop,
 * also through an HTTP proxy named by `HTTP_PROXY` / `NO_PROXY`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AddressNotAllowedError, createGuardedFetch, OutboundPolicy, RedirectRefusedError } from '../../src/net/guarded-fetch';
import { startConnectProxy, type ConnectProxy } from '../support/connect-proxy';

let base: string;
let port: number;
const seen: { method: string; url: string; body: string; length?: string }[] = [];
let server: http.Server;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        body,
        ...(req.headers['content-length'] ? { length: req.headers['content-length'] } : {}),
      });
      const redirect = /^\/redirect\/(\d+)\/(.*)$/.exec(req.url!);
      if (redirect) {
        res.statusCode = Number(redirect[1]);
        res.setHeader(
          'Location',
          redirect[2] === 'file' ? 'file:///etc/passwd' : redirect[2]!.startsWith('http') ? redirect[2]! : `/${redirect[2]}`,
        );
        return res.end();
      }
      if (req.url === '/slow') return setTimeout(() => res.end('late'), 2_000);
      res.setHeader('X-Seen', req.method!);
      res.setHeader('X-Host', req.headers.host ?? '');
      res.end(`${req.method} ${body}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const allowing = () =>
  createGuardedFetch({ policy: new OutboundPolicy({ allowedHosts: [`127.0.0.1:${port}`], subject: 'tests', variable: 'V' }) });

describe('the guarded HTTP client', () => {
  it('sends a body with its Content-Length and returns status, headers and body like fetch', async () => {
    const response = await allowing()(`${base}/echo`, { method: 'POST', body: '{"a":1}', headers: { 'Content-Type': 'application/json' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-seen')).toBe('POST');
    expect(await response.text()).toBe('POST {"a":1}');
    expect(seen.at(-1)).toMatchObject({ method: 'POST', length: '7' });
  });

  it('answers HEAD without a body', async () => {
    const response = await allowing()(`${base}/head`, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(response.body).toBeNull();
  });

  it('follows redirects (303 and a redirected POST become GET) and returns a 3xx as it is with redirect: manual', async () => {
    expect(await (await allowing()(`${base}/redirect/303/done`, { method: 'POST', body: 'x' })).text()).toBe('GET ');
    expect(await (await allowing()(`${base}/redirect/307/done`)).text()).toBe('GET ');
    const manual = await allowing()(`${base}/redirect/302/done`, { redirect: 'manual' });
    expect(manual.status).toBe(302);
    expect(manual.headers.get('location')).toBe('/done');
  });

  it('refuses a redirect to a non-http URL, and a chain longer than maxRedirects', async () => {
    await expect(allowing()(`${base}/redirect/302/file`)).rejects.toThrow(
      new RedirectRefusedError('refused to follow a redirect to a file: URL'),
    );
    const twice = createGuardedFetch({
      policy: new OutboundPolicy({ allowedHosts: [`127.0.0.1:${port}`], subject: 's', variable: 'V' }),
      maxRedirects: 1,
    });
    await expect(twice(`${base}/redirect/302/redirect/302/done`)).rejects.toThrow(`more than 1 redirects, the last to ${base}/done`);
  });

  it('aborts on its signal', async () => {
    await expect(allowing()(`${base}/slow`, { signal: AbortSignal.timeout(100) })).rejects.toThrow(/aborted/i);
  });

  it('refuses before connecting, for IP literals (no DNS lookup happens) and names alike', async () => {
    const strict = createGuardedFetch({ policy: new OutboundPolicy({ subject: 'tests', variable: 'V' }) });
    const before = seen.length;
    for (const url of [`${base}/x`, `http://[::1]:${port}/x`, `http://localhost:${port}/x`, `http://0x7f.1:${port}/x`]) {
      await expect(strict(url), url).rejects.toBeInstanceOf(AddressNotAllowedError);
    }
    expect(seen.length).toBe(before);
  });
});

describe('through an HTTP proxy (HTTP_PROXY, NO_PROXY)', () => {
  let proxy: ConnectProxy;
  const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY };
  beforeAll(async () => {
    proxy = await startConnectProxy();
  });
  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await proxy.close();
  });

  /** `files.example` resolves to the test server, `intranet.example` to a private address. */
  const resolve = (hostname: string) =>
    Promise.resolve(
      hostname === 'files.example'
        ? [{ address: '127.0.0.1', family: 4 }]
        : hostname === 'intranet.example'
          ? [{ address: '10.1.2.3', family: 4 }]
          : [],
    );
  const client = () =>
    createGuardedFetch({ policy: new OutboundPolicy({ allowedHosts: [`127.0.0.1:${port}`], subject: 'tests', variable: 'V' }), resolve });

  it('tunnels to the address it checked, not the name, keeping the Host header', async () => {
    process.env.HTTP_PROXY = proxy.url;
    delete process.env.NO_PROXY;
    const before = proxy.connects.length;
    const response = await client()(`http://files.example:${port}/echo`, { method: 'POST', body: 'via proxy' });
    expect(await response.text()).toBe('POST via proxy');
    expect(response.headers.get('x-host')).toBe(`files.example:${port}`);
    expect(proxy.connects.slice(before)).toEqual([`127.0.0.1:${port}`]);
  });

  it('connects directly to a host NO_PROXY names', async () => {
    process.env.HTTP_PROXY = proxy.url;
    process.env.NO_PROXY = 'localhost,.example';
    const before = proxy.connects.length;
    const response = await client()(`http://files.example:${port}/direct`);
    expect(await response.text()).toBe('GET ');
    expect(proxy.connects.length).toBe(before);
  });

  it('refuses a private target before asking the proxy, also when a redirect leads there', async () => {
    process.env.HTTP_PROXY = proxy.url;
    delete process.env.NO_PROXY;
    const before = proxy.connects.length;
    await expect(client()(`http://intranet.example:${port}/admin`)).rejects.toBeInstanceOf(AddressNotAllowedError);
    await expect(client()(`http://10.1.2.3:${port}/admin`)).rejects.toBeInstanceOf(AddressNotAllowedError);
    expect(proxy.connects.length).toBe(before);
    const redirected = createGuardedFetch({
      policy: new OutboundPolicy({ allowedHosts: [`127.0.0.1:${port}`], subject: 'tests', variable: 'V' }),
      resolve,
      proxyFor: () => proxy.url,
    });
    const hops = proxy.connects.length;
    await expect(redirected(`http://files.example:${port}/redirect/302/http://intranet.example:${port}/x`)).rejects.toBeInstanceOf(
      AddressNotAllowedError,
    );
    // The first hop went through the proxy; the refused one never reached it.
    expect(proxy.connects.slice(hops)).toEqual([`127.0.0.1:${port}`]);
  });
});
