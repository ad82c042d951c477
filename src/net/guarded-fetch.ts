/**
 * HTTP(S) requests that connect only where an {@link OutboundPolicy} allows: the worker's client
 * for URL sources and webhooks.
 *
 * Why it is built this way, on `node:http` rather than `fetch`: checking a URL's host before
 * calling `fetch` leaves a gap — the name is resolved again when the socket connects, and an
 * attacker's DNS can answer a public address to the check and 127.0.0.1 to the connection (DNS
 * rebinding); a redirect can also point anywhere. Here the policy runs *inside the connection's
 * DNS lookup* (`lookup` option of the socket): the addresses checked are the addresses connected
 * to, for every hop of a redirect chain, which is followed by hand (at most `maxRedirects`).
 * URLs whose host is an IP literal never reach a lookup, so they are checked before connecting.
 * Node's global `fetch` cannot take a custom lookup without the `undici` package, so this module
 * returns standard `Response` objects from `node:http` itself; callers keep the fetch shape.
 *
 * Connections are not kept alive: each request opens its own, so no pooled socket outlives the
 * check that opened it, and a server closing an idle connection can never fail a request.
 *
 * Proxies: `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` (either case) are honoured as curl and most
 * tools read them (proxy-from-env). A proxied request is a CONNECT tunnel (https-proxy-agent) for
 * http and https targets alike, and the tunnel is opened to the *address* this module resolved and
 * checked, never to the name: a proxy that resolved the name itself could be steered to a private
 * address the policy refuses. The Host header and TLS server name stay the URL's host. The proxy
 * itself is the operator's choice and is not checked against the policy.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';
import { AddressNotAllowedError, OutboundPolicy, parseAddress } from './address-policy';

/** Resolves a host name to every address, like `dns.lookup(name, { all: true })`. */
export type ResolveHost = (hostname: string) => Promise<LookupAddress[]>;

/** The subset of `RequestInit` the worker uses. */
export interface GuardedRequestInit {
  /** @default 'GET' */
  method?: 'GET' | 'HEAD' | 'POST';
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** `follow` follows up to `maxRedirects` redirects, checking each hop; `manual` returns the 3xx. @default 'follow' */
  redirect?: 'follow' | 'manual';
}

/** A fetch-shaped function: `fetch` itself satisfies it (without the address checks). */
export type HttpFetch = (url: string, init?: GuardedRequestInit) => Promise<Response>;

/** Options of {@link createGuardedFetch}. */
export interface GuardedFetchOptions {
  policy: OutboundPolicy;
  /** How host names are resolved. @default dns.lookup with `all: true` (the system resolver, /etc/hosts included) */
  resolve?: ResolveHost;
  /** Redirects followed with `redirect: 'follow'`. @default 5 */
  maxRedirects?: number;
  /**
   * The proxy a URL is fetched through, or undefined to connect directly.
   * @default the proxy `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` name for the URL, read at each request
   */
  proxyFor?: (url: URL) => string | undefined;
}

/** The proxy the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, either case) names for `url`, if any. */
export function proxyFromEnvironment(url: URL): string | undefined {
  return getProxyForUrl(url.href) || undefined;
}

/** Thrown for a redirect chain that is too long or leads to a non-http(s) URL. */
export class RedirectRefusedError extends Error {
  override readonly name = 'RedirectRefusedError';
}

const systemResolve: ResolveHost = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

const NULL_BODY_STATUS = new Set([101, 204, 205, 304]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);

/** Where a URL connects, without its query string (which may carry a token): for messages. */
export function shownUrl(url: URL | string): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'an invalid URL';
  }
}

function defaultPort(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/**
 * Resolves `hostname` and rejects unless every address passes the policy: one refused address
 * refuses the name, as a name that resolves to both public and private addresses is not trusted.
 */
async function checkedAddresses(policy: OutboundPolicy, resolve: ResolveHost, hostname: string, port: number, family = 0) {
  const all = await resolve(hostname);
  for (const candidate of all) {
    const refusal = policy.check(hostname, port, candidate.address);
    if (refusal) throw refusal;
  }
  const candidates = family ? all.filter((a) => a.family === family) : all;
  if (!candidates.length) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
  return candidates;
}

/** A `lookup` for one connection that resolves, then refuses unless every address passes the policy. */
function guardedLookup(policy: OutboundPolicy, resolve: ResolveHost, port: number): LookupFunction {
  return (hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : (options.family ?? 0);
    checkedAddresses(policy, resolve, hostname, port, family).then(
      (candidates) => {
        if (options.all) return callback(null, candidates);
        return callback(null, candidates[0]!.address, candidates[0]!.family);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

function toResponse(res: http.IncomingMessage, method: string): Response {
  const headers = new Headers();
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    try {
      headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
    } catch {
      // a header value fetch would not accept: dropped, as fetch would refuse the whole response
    }
  }
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 599) {
    res.destroy();
    throw new Error(`the server answered with HTTP status ${status}`);
  }
  const noBody = method === 'HEAD' || NULL_BODY_STATUS.has(status);
  if (noBody) res.resume();
  return new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
    status,
    statusText: res.statusMessage ?? '',
    headers,
  });
}

/**
 * A fetch-shaped function whose every connection (including each redirect hop) goes only to
 * addresses `options.policy` allows; a refused address rejects with {@link AddressNotAllowedError}.
 */
export function createGuardedFetch(options: GuardedFetchOptions): HttpFetch {
  const resolve = options.resolve ?? systemResolve;
  const maxRedirects = options.maxRedirects ?? 5;
  const proxyFor = options.proxyFor ?? proxyFromEnvironment;

  /** How one request connects: directly with the guarded lookup, or through a proxy tunnel to a checked address. */
  const connection = async (url: URL, hostname: string, port: number): Promise<http.RequestOptions> => {
    const proxy = proxyFor(url);
    if (!proxy) return { hostname, agent: false, lookup: guardedLookup(options.policy, resolve, port) };
    const address = parseAddress(hostname) ? hostname : (await checkedAddresses(options.policy, resolve, hostname, port))[0]!.address;
    return {
      hostname: address,
      agent: new HttpsProxyAgent(proxy),
      ...(url.protocol === 'https:' && !parseAddress(hostname) ? { servername: hostname } : {}),
    };
  };

  const once = async (url: URL, method: string, init: GuardedRequestInit): Promise<Response> => {
    const port = defaultPort(url);
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    if (parseAddress(hostname)) {
      const refusal = options.policy.check(url.hostname, port, hostname);
      if (refusal) throw refusal;
    }
    const transport = url.protocol === 'https:' ? https : http;
    const body = method === 'GET' || method === 'HEAD' ? undefined : init.body;
    const headers: Record<string, string | number> = { host: url.host, ...init.headers };
    if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length'))
      headers['Content-Length'] = Buffer.byteLength(body);
    const connect = await connection(url, hostname, port);
    return new Promise<Response>((resolveResponse, reject) => {
      const request = transport.request(
        {
          protocol: url.protocol,
          port,
          path: `${url.pathname}${url.search}`,
          method,
          headers,
          ...connect,
          ...(init.signal ? { signal: init.signal } : {}),
        },
        (res) => {
          try {
            resolveResponse(toResponse(res, method));
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
      );
      request.once('error', reject);
      request.end(body);
    });
  };

  return async (input, init = {}) => {
    let url = new URL(input);
    let method: string = init.method ?? 'GET';
    let body = init.body;
    for (let hop = 0; ; hop++) {
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new RedirectRefusedError(`refused to follow a redirect to a ${url.protocol} URL`);
      const response = await once(url, method, { ...init, ...(body !== undefined ? { body } : {}) });
      const location = response.headers.get('location');
      if (init.redirect === 'manual' || !REDIRECT_STATUS.has(response.status) || !location) return response;
      await response.body?.cancel().catch(() => undefined);
      if (hop >= maxRedirects)
        throw new RedirectRefusedError(`more than ${maxRedirects} redirects, the last to ${shownUrl(new URL(location, url))}`);
      url = new URL(location, url);
      if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
        method = method === 'HEAD' ? 'HEAD' : 'GET';
        body = undefined;
      }
    }
  };
}

/**
 * Resolves a URL's host now and checks its addresses, without connecting: lets a step refuse a
 * destination before anything happens. A host that does not resolve (yet) passes: the
 * connection, when it comes, is checked again.
 * @returns the refusal, or undefined
 */
export async function checkUrlTarget(
  url: string,
  policy: OutboundPolicy,
  resolve: ResolveHost = systemResolve,
): Promise<AddressNotAllowedError | undefined> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const port = defaultPort(parsed);
  const hostname = parsed.hostname.replace(/^\[|\]$/g, '');
  if (parseAddress(hostname)) return policy.check(parsed.hostname, port, hostname);
  if (policy.trustsName(hostname, port)) return undefined;
  const addresses = await resolve(hostname).catch(() => [] as LookupAddress[]);
  for (const a of addresses) {
    const refusal = policy.check(hostname, port, a.address);
    if (refusal) return refusal;
  }
  return undefined;
}

export { AddressNotAllowedError, OutboundPolicy };
