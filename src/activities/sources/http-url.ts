/**
 * HTTP(S) URL sources.
 *
 * With a server that supports byte ranges (`Accept-Ranges: bytes`), every part is its own ranged
 * GET: parts load in parallel, and a retried activity fetches only the parts S3 does not have yet.
 * Each GET carries `If-Match` (strong ETag) or `If-Unmodified-Since` (Last-Modified), and the
 * answer's `Content-Range` total is checked, so a file that changes on the server during the upload
 * fails with `SourceChanged` instead of mixing two versions.
 *
 * Without range support there is one sequential stream: parts are served from it strictly in
 * order (the upload pool asks for them in order), so concurrency only overlaps the S3 side. Resume
 * then means "start the download again from the beginning and skip sending the parts S3 already
 * has": bytes are re-downloaded, never re-uploaded.
 *
 * URLs with credentials are refused at validation (they would be stored in workflow history).
 *
 * Every request goes through the guarded client (src/net/guarded-fetch.ts): it connects only to
 * public addresses, or to those the worker's allow-list names (`UPLOAD_SAGA_URL_ALLOWED_HOSTS`),
 * checked on the address the socket actually connects to, for every redirect hop. A refused
 * address fails the upload with the permanent `SourceNotAllowed`, naming the address and the
 * variable that would allow it.
 */
import {
  AddressNotAllowedError,
  createGuardedFetch,
  OutboundPolicy,
  RedirectRefusedError,
  type HttpFetch,
  type ResolveHost,
} from '../../net/guarded-fetch';
import { permanentFailure, transientFailure, UploadFailureType } from '../../upload/errors';
import type { SourceDescriptor } from '../../upload/request';
import type { ByteSource, SourceResolver, SourceStat } from './byte-source';

/** The variable that allows non-public URL sources (named in refusals). */
export const URL_ALLOWED_HOSTS_VARIABLE = 'UPLOAD_SAGA_URL_ALLOWED_HOSTS';

/** Options of {@link HttpUrlResolver}. */
export interface HttpSourceOptions {
  /** Per-request timeout. @default 60000 */
  timeoutMs?: number;
  /**
   * Non-public hosts URL sources may reach anyway: IPs, CIDR ranges or host names, each optionally
   * with `:port` (see `OutboundPolicyOptions.allowedHosts` in src/net/address-policy.ts). @default [] (public addresses only)
   */
  allowedHosts?: readonly string[];
  /** How host names are resolved (tests inject one). @default the system resolver */
  resolve?: ResolveHost;
  /** Redirects followed per request, each hop checked. @default 5 */
  maxRedirects?: number;
}

/** A refused destination as the permanent `SourceNotAllowed`; any other error unchanged. */
function refusalFailure(shown: string, err: unknown): Error | undefined {
  if (err instanceof AddressNotAllowedError || err instanceof RedirectRefusedError) {
    return permanentFailure(UploadFailureType.SourceNotAllowed, `URL ${shown}: ${err.message}`);
  }
  return undefined;
}

interface Identity {
  size: number;
  etag?: string;
  lastModified?: string;
  ranges: boolean;
}

function strongETag(etag: string | undefined): string | undefined {
  return etag && !etag.startsWith('W/') ? etag : undefined;
}

class HttpUrlSource implements ByteSource {
  readonly description: string;
  private sequential: { reader: ReadableStreamDefaultReader<Uint8Array>; position: number; pending: Buffer } | undefined;
  /** Sequential reads arrive from several workers; they are served one after another, in call order. */
  private sequentialQueue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly url: string,
    private readonly identity: Identity,
    private readonly fetchImpl: HttpFetch,
    private readonly timeoutMs: number,
  ) {
    const shown = new URL(url);
    this.description = `URL ${shown.origin}${shown.pathname}`; // never echo query strings: they may carry tokens
  }

  async stat(): Promise<SourceStat> {
    const now = await probe(this.url, this.fetchImpl, this.timeoutMs);
    return { size: now.size, version: versionOf(now) };
  }

  read(offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Promise.resolve(Buffer.alloc(0));
    return this.identity.ranges ? this.readRange(offset, length) : this.readSequential(offset, length);
  }

  async close(): Promise<void> {
    await this.sequential?.reader.cancel().catch(() => undefined);
    this.sequential = undefined;
  }

  private changed(why: string): Error {
    return permanentFailure(UploadFailureType.SourceChanged, `${this.description} changed during the upload: ${why}`);
  }

  private async readRange(offset: number, length: number): Promise<Buffer> {
    const headers: Record<string, string> = { Range: `bytes=${offset}-${offset + length - 1}` };
    const etag = strongETag(this.identity.etag);
    if (etag) headers['If-Match'] = etag;
    else if (this.identity.lastModified) headers['If-Unmodified-Since'] = this.identity.lastModified;
    const response = await this.get(headers);
    if (response.status === 412) throw this.changed('the server says the precondition (ETag / Last-Modified) no longer holds');
    if (response.status !== 206) {
      await response.body?.cancel();
      throw this.changed(`a ranged GET answered HTTP ${response.status} instead of 206`);
    }
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
    if (
      !range ||
      Number(range[1]) !== offset ||
      Number(range[2]) !== offset + length - 1 ||
      (range[3] !== '*' && Number(range[3]) !== this.identity.size)
    ) {
      await response.body?.cancel();
      throw this.changed(
        `asked for bytes ${offset}-${offset + length - 1} of ${this.identity.size}, got Content-Range "${response.headers.get('content-range')}"`,
      );
    }
    const body = Buffer.from(await response.arrayBuffer());
    if (body.length !== length) throw this.changed(`expected ${length} bytes at ${offset}, got ${body.length}`);
    return body;
  }

  /** Serves reads in offset order from one streaming GET. */
  private readSequential(offset: number, length: number): Promise<Buffer> {
    const run = async () => {
      if (!this.sequential || this.sequential.position > offset) {
        await this.close();
        const response = await this.get({});
        if (!response.ok || !response.body)
          throw transientFailure(UploadFailureType.SourceUnreadable, `${this.description} answered HTTP ${response.status}`);
        this.sequential = { reader: response.body.getReader(), position: 0, pending: Buffer.alloc(0) };
      }
      const s = this.sequential;
      const chunks: Buffer[] = [];
      let skip = offset - s.position;
      let need = length;
      while (need > 0 || skip > 0) {
        if (s.pending.length === 0) {
          const { value, done } = await s.reader.read();
          if (done)
            throw this.changed(
              `the stream ended at byte ${s.position + chunks.reduce((n, c) => n + c.length, 0)}, before ${offset + length}`,
            );
          s.pending = Buffer.from(value);
        }
        if (skip > 0) {
          const dropped = Math.min(skip, s.pending.length);
          s.pending = s.pending.subarray(dropped);
          s.position += dropped;
          skip -= dropped;
          continue;
        }
        const take = Math.min(need, s.pending.length);
        chunks.push(s.pending.subarray(0, take));
        s.pending = s.pending.subarray(take);
        s.position += take;
        need -= take;
      }
      return Buffer.concat(chunks, length);
    };
    const result = this.sequentialQueue.then(run);
    this.sequentialQueue = result.catch(() => undefined);
    return result;
  }

  private async get(headers: Record<string, string>): Promise<Response> {
    try {
      return await this.fetchImpl(this.url, { headers, signal: AbortSignal.timeout(this.timeoutMs), redirect: 'follow' });
    } catch (err) {
      throw (
        refusalFailure(this.description.replace(/^URL /, ''), err) ??
        transientFailure(UploadFailureType.SourceUnreadable, `${this.description} unreachable: ${(err as Error).message}`)
      );
    }
  }
}

function versionOf(identity: Identity): string {
  return `${identity.size}:${identity.etag ?? ''}:${identity.lastModified ?? ''}`;
}

async function probe(url: string, fetchImpl: HttpFetch, timeoutMs: number): Promise<Identity> {
  const shown = `${new URL(url).origin}${new URL(url).pathname}`;
  let response: Response;
  try {
    response = await fetchImpl(url, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    throw (
      refusalFailure(shown, err) ??
      transientFailure(UploadFailureType.SourceUnreadable, `URL ${shown} unreachable: ${(err as Error).message}`)
    );
  }
  if (response.status === 404 || response.status === 410)
    throw permanentFailure(UploadFailureType.SourceNotFound, `URL ${shown} answered HTTP ${response.status}`);
  if (response.status >= 500 || response.status === 429 || response.status === 408) {
    throw transientFailure(UploadFailureType.SourceUnreadable, `URL ${shown} answered HTTP ${response.status}`);
  }
  if (!response.ok) throw permanentFailure(UploadFailureType.SourceUnreadable, `URL ${shown} answered HTTP ${response.status}`);
  const length = response.headers.get('content-length');
  if (length === null || !/^\d+$/.test(length)) {
    throw permanentFailure(
      UploadFailureType.SourceUnreadable,
      `URL ${shown} does not declare a Content-Length; the upload needs the size in advance`,
    );
  }
  return {
    size: Number(length),
    ...(response.headers.get('etag') ? { etag: response.headers.get('etag')! } : {}),
    ...(response.headers.get('last-modified') ? { lastModified: response.headers.get('last-modified')! } : {}),
    ranges: (response.headers.get('accept-ranges') ?? '').toLowerCase().includes('bytes'),
  };
}

/** Opens `url` sources through the guarded client; see the module comment. */
export class HttpUrlResolver implements SourceResolver {
  private readonly fetchImpl: HttpFetch;
  private readonly timeoutMs: number;

  /** @throws TypeError when an `allowedHosts` entry is malformed */
  constructor(options: HttpSourceOptions = {}) {
    const policy = new OutboundPolicy({
      allowedHosts: options.allowedHosts ?? [],
      subject: 'URL sources',
      variable: URL_ALLOWED_HOSTS_VARIABLE,
    });
    this.fetchImpl = createGuardedFetch({
      policy,
      ...(options.resolve ? { resolve: options.resolve } : {}),
      ...(options.maxRedirects !== undefined ? { maxRedirects: options.maxRedirects } : {}),
    });
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  /** Opens an http(s) URL on an allowed host. */
  async open(source: SourceDescriptor): Promise<ByteSource> {
    if (source.type !== 'url') throw new TypeError(`HttpUrlResolver cannot open ${source.type} sources`);
    const identity = await probe(source.url, this.fetchImpl, this.timeoutMs);
    return new HttpUrlSource(source.url, identity, this.fetchImpl, this.timeoutMs);
  }
}
