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
 */
import { permanentFailure, transientFailure, UploadFailureType } from '../../upload/errors';
import type { SourceDescriptor } from '../../upload/request';
import type { ByteSource, SourceResolver, SourceStat } from './byte-source';

export interface HttpSourceOptions {
  /** Per-request timeout. @default 60000 */
  timeoutMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
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
    private readonly fetchImpl: typeof fetch,
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
    if (!range || Number(range[1]) !== offset || Number(range[2]) !== offset + length - 1 || (range[3] !== '*' && Number(range[3]) !== this.identity.size)) {
      await response.body?.cancel();
      throw this.changed(`asked for bytes ${offset}-${offset + length - 1} of ${this.identity.size}, got Content-Range "${response.headers.get('content-range')}"`);
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
        if (!response.ok || !response.body) throw transientFailure(UploadFailureType.SourceUnreadable, `${this.description} answered HTTP ${response.status}`);
        this.sequential = { reader: response.body.getReader(), position: 0, pending: Buffer.alloc(0) };
      }
      const s = this.sequential;
      const chunks: Buffer[] = [];
      let skip = offset - s.position;
      let need = length;
      while (need > 0 || skip > 0) {
        if (s.pending.length === 0) {
          const { value, done } = await s.reader.read();
          if (done) throw this.changed(`the stream ended at byte ${s.position + chunks.reduce((n, c) => n + c.length, 0)}, before ${offset + length}`);
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
      throw transientFailure(UploadFailureType.SourceUnreadable, `${this.description} unreachable: ${(err as Error).message}`);
    }
  }
}

function versionOf(identity: Identity): string {
  return `${identity.size}:${identity.etag ?? ''}:${identity.lastModified ?? ''}`;
}

async function probe(url: string, fetchImpl: typeof fetch, timeoutMs: number): Promise<Identity> {
  const shown = `${new URL(url).origin}${new URL(url).pathname}`;
  let response: Response;
  try {
    response = await fetchImpl(url, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (err) {
    throw transientFailure(UploadFailureType.SourceUnreadable, `URL ${shown} unreachable: ${(err as Error).message}`);
  }
  if (response.status === 404 || response.status === 410) throw permanentFailure(UploadFailureType.SourceNotFound, `URL ${shown} answered HTTP ${response.status}`);
  if (response.status >= 500 || response.status === 429 || response.status === 408) {
    throw transientFailure(UploadFailureType.SourceUnreadable, `URL ${shown} answered HTTP ${response.status}`);
  }
  if (!response.ok) throw permanentFailure(UploadFailureType.SourceUnreadable, `URL ${shown} answered HTTP ${response.status}`);
  const length = response.headers.get('content-length');
  if (length === null || !/^\d+$/.test(length)) {
    throw permanentFailure(UploadFailureType.SourceUnreadable, `URL ${shown} does not declare a Content-Length; the upload needs the size in advance`);
  }
  return {
    size: Number(length),
    ...(response.headers.get('etag') ? { etag: response.headers.get('etag')! } : {}),
    ...(response.headers.get('last-modified') ? { lastModified: response.headers.get('last-modified')! } : {}),
    ranges: (response.headers.get('accept-ranges') ?? '').toLowerCase().includes('bytes'),
  };
}

export class HttpUrlResolver implements SourceResolver {
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;

  constructor(options: HttpSourceOptions = {}) {
    this.fetchImpl = options.fetch ?? globalThis.fetch;
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  async open(source: SourceDescriptor): Promise<ByteSource> {
    if (source.type !== 'url') throw new TypeError(`HttpUrlResolver cannot open ${source.type} sources`);
    const identity = await probe(source.url, this.fetchImpl, this.timeoutMs);
    return new HttpUrlSource(source.url, identity, this.fetchImpl, this.timeoutMs);
  }
}
