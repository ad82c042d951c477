/**
 * One scrape endpoint per process: `GET /metrics` answers the exposition text of every source
 * given — a worker's prom-client registry and the Temporal SDK's own Prometheus exporter, or the
 * gateway's registry — concatenated.
 *
 * Why merging is sound: both sources write the Prometheus text format (0.0.4), their metric
 * families never share a name (`upload_saga_*` against `temporal_*`), and each family's lines stay
 * together, so the concatenation is one valid exposition. The SDK's exporter listens on loopback
 * only ({@link sdkExporterBindAddress}); Prometheus is given this one target per worker.
 *
 * Invariants: a source that fails (the SDK exporter not answering within its timeout) is left out
 * of that scrape and logged, rather than failing the whole scrape; only GET/HEAD `/metrics` exists.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { listenForUrl } from '../net/listen';
import { describeFailure } from '../health';

/** The exposition text format both prom-client and the SDK exporter write. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A named producer of exposition text. */
export interface MetricsSource {
  /** Names the source in the warning logged when it fails. */
  name: string;
  /** Its exposition text now. */
  collect(): Promise<string>;
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  sources: MetricsSource[];
  logger?: Logger;
}

/** A listening metrics server. */
export interface MetricsServer {
  /** `http://host:port` (the scrape URL is this plus `/metrics`). */
  url: string;
  /** Stops listening and ends open connections. */
  close(): Promise<void>;
}

/** A source that reads another exporter's `/metrics` (the Temporal SDK's, on loopback). */
export function httpMetricsSource(name: string, url: string, timeoutMs = 2000): MetricsSource {
  return {
    name,
    async collect() {
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!response.ok) throw new Error(`${url} answered HTTP ${response.status}`);
      return response.text();
    },
  };
}

/** Every source's text, one after another; failed sources left out and logged. */
export async function collectAll(sources: readonly MetricsSource[], logger?: Logger): Promise<string> {
  const texts = await Promise.all(
    sources.map((source) =>
      source.collect().catch((err: unknown) => {
        logger?.warn({ source: source.name, error: describeFailure(err) }, 'metrics source failed; left out of this scrape');
        return '';
      }),
    ),
  );
  return texts.map((text) => (text && !text.endsWith('\n') ? `${text}\n` : text)).join('');
}

/** Starts the `/metrics` server. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      return response.end('metrics are at /metrics\n');
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' });
      return response.end();
    }
    void collectAll(options.sources, options.logger).then((text) => {
      response.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : text);
    });
  });
  const url = await listenForUrl(server, options.port, options.host);
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
