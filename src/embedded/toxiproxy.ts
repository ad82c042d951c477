/**
 * Runs toxiproxy (Shopify's TCP fault proxy) as a child process, and a small typed client for its
 * HTTP API: the network faults of the fault-injection suite (latency, bandwidth limits,
 * connection resets, stalled connections) happen on real sockets between a worker and S3.
 *
 * Why it is built this way:
 * - Real faults, not mocks: the worker's S3 client talks to a proxy listening on a local port,
 *   and toxics added or removed over the API change what its sockets experience — including
 *   connections already open, so a fault can start and end in the middle of an upload.
 * - The binary comes from the same place as the other servers (`ensureServerBinary`: env var →
 *   PATH → cache → `go install`), so a fresh machine needs nothing but Go.
 * - The client is a thin wrapper over `fetch` (no library: the official JS clients are
 *   unmaintained and untyped). Toxics are a literal union, so an attribute typo is a type
 *   error, and every API error names the call and quotes toxiproxy's answer.
 * - Proxies listen on `127.0.0.1:0` by default: toxiproxy picks the port and reports it, so
 *   no port can be taken between choosing it and binding it.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { ensureServerBinary, type EnsureServerBinaryOptions } from './binaries';
import { EmbeddedStackError } from './errors';
import { findFreePort } from './free-port';
import { ManagedProcess, type ProcessExit, type RunningServerProcess } from './managed-process';

/** Direction a toxic applies to: `upstream` is client → server, `downstream` server → client. */
export type ToxicStream = 'upstream' | 'downstream';

/**
 * A toxic and its attributes, as toxiproxy names them (times in milliseconds unless stated).
 * - `latency`: delay every chunk by `latency` ± `jitter`.
 * - `bandwidth`: at most `rate` KB/s.
 * - `reset_peer`: after the first data and `timeout` ms, close with TCP RST.
 * - `timeout`: stop all data; close the connection after `timeout` ms, or never when 0 (a stall).
 * - `slicer`: cut data into chunks of `average_size` ± `size_variation` bytes, `delay` µs apart.
 * - `slow_close`: delay the close by `delay` ms.
 * - `limit_data`: close the connection after `bytes` bytes.
 */
export type ToxicSpec =
  | { readonly type: 'latency'; readonly attributes: { readonly latency: number; readonly jitter?: number } }
  | { readonly type: 'bandwidth'; readonly attributes: { readonly rate: number } }
  | { readonly type: 'reset_peer'; readonly attributes: { readonly timeout: number } }
  | { readonly type: 'timeout'; readonly attributes: { readonly timeout: number } }
  | {
      readonly type: 'slicer';
      readonly attributes: { readonly average_size: number; readonly size_variation?: number; readonly delay?: number };
    }
  | { readonly type: 'slow_close'; readonly attributes: { readonly delay: number } }
  | { readonly type: 'limit_data'; readonly attributes: { readonly bytes: number } };

/** The type names of {@link ToxicSpec}. */
export type ToxicType = ToxicSpec['type'];

/** Options of {@link ToxiproxyProxy.addToxic}. */
export interface AddToxicOptions {
  /**
   * Name of the toxic, unique within its proxy (needed to update or remove it).
   * @default `<type>_<stream>`
   */
  readonly name?: string;
  /**
   * Which direction it applies to.
   * @default 'downstream' (toxiproxy's default)
   */
  readonly stream?: ToxicStream;
  /**
   * Probability (0–1) that a new connection gets the toxic.
   * @default 1
   */
  readonly toxicity?: number;
}

/** A toxic as toxiproxy reports it. */
export interface Toxic {
  readonly name: string;
  readonly type: ToxicType;
  readonly stream: ToxicStream;
  readonly toxicity: number;
  readonly attributes: Record<string, number>;
}

/** A proxy as toxiproxy reports it. */
export interface ProxyState {
  readonly name: string;
  /** `host:port` the proxy listens on (the real port, also when created with port 0). */
  readonly listen: string;
  /** `host:port` it forwards to. */
  readonly upstream: string;
  readonly enabled: boolean;
  readonly toxics: readonly Toxic[];
}

/** Options of {@link ToxiproxyClient.createProxy}. */
export interface CreateProxyOptions {
  /** Unique proxy name. */
  readonly name: string;
  /** `host:port` to forward to. */
  readonly upstream: string;
  /**
   * `host:port` to listen on.
   * @default '127.0.0.1:0' (toxiproxy picks a free port and reports it)
   */
  readonly listen?: string;
  /**
   * Accept connections right away.
   * @default true
   */
  readonly enabled?: boolean;
}

/** Options of {@link ToxiproxyClient}. */
export interface ToxiproxyClientOptions {
  /**
   * Timeout of one API call (toxiproxy's own handler timeout is 25 s).
   * @default 30_000
   */
  readonly timeoutMs?: number;
}

/** A toxiproxy API call answered with an error status, or could not be made. */
export class ToxiproxyApiError extends EmbeddedStackError {
  constructor(
    readonly method: string,
    readonly apiPath: string,
    readonly status: number | undefined,
    detail: string,
    cause?: unknown,
  ) {
    super(`toxiproxy ${method} ${apiPath} ${status === undefined ? 'failed' : `answered HTTP ${status}`}: ${detail}`, { cause });
  }
}

/** Client for one toxiproxy server's HTTP API. */
export class ToxiproxyClient {
  private readonly timeoutMs: number;

  /** @param apiUrl - base URL of the API, e.g. `http://127.0.0.1:8474` */
  constructor(
    readonly apiUrl: string,
    options: ToxiproxyClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** The server's version string (`git` for a `go install` build, which stamps no version). */
  async version(): Promise<string> {
    const text = (await this.request<string>('GET', '/version', undefined, 'text')).trim();
    try {
      // v2.6+ answer {"version": "…"}; older servers the bare string.
      return String((JSON.parse(text) as { version?: unknown }).version ?? text);
    } catch {
      return text;
    }
  }

  /** Creates a proxy; with the default `listen`, toxiproxy picks the port. */
  async createProxy(options: CreateProxyOptions): Promise<ToxiproxyProxy> {
    const state = await this.request<ProxyState>('POST', '/proxies', {
      name: options.name,
      upstream: options.upstream,
      listen: options.listen ?? '127.0.0.1:0',
      enabled: options.enabled ?? true,
    });
    return new ToxiproxyProxy(this, state);
  }

  /** Every proxy, by name. */
  async proxies(): Promise<Record<string, ProxyState>> {
    return this.request<Record<string, ProxyState>>('GET', '/proxies');
  }

  /** Enables every proxy and removes every toxic. */
  async reset(): Promise<void> {
    await this.request('POST', '/reset', undefined, 'none');
  }

  /** @internal one API call; `expect` says how to read the answer. */
  async request<T>(method: string, apiPath: string, body?: unknown, expect: 'json' | 'text' | 'none' = 'json'): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.apiUrl}${apiPath}`, {
        method,
        headers: { 'Content-Type': 'application/json', 'User-Agent': 'upload-saga' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new ToxiproxyApiError(method, apiPath, undefined, error instanceof Error ? error.message : String(error), error);
    }
    const text = await response.text();
    if (!response.ok) {
      let detail = text.trim();
      try {
        detail = (JSON.parse(text) as { error?: string }).error ?? detail;
      } catch {
        // not JSON: quote as-is
      }
      throw new ToxiproxyApiError(method, apiPath, response.status, detail || '(empty answer)');
    }
    if (expect === 'none') return undefined as T;
    if (expect === 'text') return text as T;
    return JSON.parse(text) as T;
  }
}

/** One proxy: its address, and its faults. */
export class ToxiproxyProxy {
  constructor(
    private readonly client: ToxiproxyClient,
    private current: ProxyState,
  ) {}

  /** The proxy's name. */
  get name(): string {
    return this.current.name;
  }

  /** `host:port` the proxy listens on. */
  get listen(): string {
    return this.current.listen;
  }

  /** `http://<listen>`: point an HTTP client (e.g. `S3_ENDPOINT`) here. */
  get url(): string {
    return `http://${this.current.listen}`;
  }

  /** The state as last read from the server. */
  get state(): ProxyState {
    return this.current;
  }

  private get apiPath(): string {
    return `/proxies/${encodeURIComponent(this.current.name)}`;
  }

  /** Adds a toxic; it applies to new and to open connections. */
  async addToxic(spec: ToxicSpec, options: AddToxicOptions = {}): Promise<Toxic> {
    const stream = options.stream ?? 'downstream';
    return this.client.request<Toxic>('POST', `${this.apiPath}/toxics`, {
      name: options.name ?? `${spec.type}_${stream}`,
      type: spec.type,
      stream,
      toxicity: options.toxicity ?? 1,
      attributes: spec.attributes,
    });
  }

  /** Changes the attributes of an existing toxic. */
  async updateToxic(name: string, attributes: Readonly<Record<string, number>>): Promise<Toxic> {
    return this.client.request<Toxic>('POST', `${this.apiPath}/toxics/${encodeURIComponent(name)}`, { attributes });
  }

  /** Removes a toxic; data held back by it flows again. */
  async removeToxic(name: string): Promise<void> {
    await this.client.request('DELETE', `${this.apiPath}/toxics/${encodeURIComponent(name)}`, undefined, 'none');
  }

  /** The proxy's toxics. */
  async toxics(): Promise<Toxic[]> {
    return this.client.request<Toxic[]>('GET', `${this.apiPath}/toxics`);
  }

  /** Refuses new connections and closes the open ones. */
  async disable(): Promise<void> {
    this.current = await this.client.request<ProxyState>('POST', this.apiPath, { enabled: false });
  }

  /** Accepts connections again (on the same port). */
  async enable(): Promise<void> {
    this.current = await this.client.request<ProxyState>('POST', this.apiPath, { enabled: true });
  }

  /** Deletes the proxy and closes its connections. */
  async delete(): Promise<void> {
    await this.client.request('DELETE', this.apiPath, undefined, 'none');
  }
}

/** Options of {@link startToxiproxyServer}. */
export interface ToxiproxyServerOptions {
  /** Directory for the log file (`<dataDir>/toxiproxy.log`). */
  readonly dataDir: string;
  /**
   * The `toxiproxy-server` executable.
   * @default the result of `ensureServerBinary('toxiproxy-server', binary)`
   */
  readonly binaryPath?: string;
  /**
   * Options for finding/building the binary when `binaryPath` is not given.
   * @default {}
   */
  readonly binary?: EnsureServerBinaryOptions;
  /**
   * Interface the API binds to.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * API port.
   * @default a free port
   */
  readonly port?: number;
  /**
   * How long to wait for the API to answer.
   * @default 30_000
   */
  readonly readyTimeoutMs?: number;
  /**
   * How long `stop()` waits after SIGTERM before SIGKILL.
   * @default 5_000
   */
  readonly stopGraceMs?: number;
}

/** A running toxiproxy server. */
export interface ToxiproxyServer extends RunningServerProcess {
  /** API base URL, e.g. `http://127.0.0.1:40123`. */
  readonly apiUrl: string;
  /** A client for the API. */
  readonly client: ToxiproxyClient;
}

/** The toxiproxy process exited before its API answered. */
export class ToxiproxyServerExitedError extends EmbeddedStackError {
  constructor(
    readonly exit: ProcessExit,
    readonly logTail: string,
  ) {
    super(
      `toxiproxy-server exited before becoming ready (code ${String(exit.code)}, signal ${String(exit.signal)}). Log tail:\n${logTail}`,
    );
  }
}

/** The toxiproxy API did not answer within `readyTimeoutMs`. */
export class ToxiproxyServerTimeoutError extends EmbeddedStackError {
  constructor(
    readonly timeoutMs: number,
    readonly logTail: string,
  ) {
    super(`toxiproxy-server did not answer GET /version within ${timeoutMs} ms. Log tail:\n${logTail}`);
  }
}

/**
 * Starts `toxiproxy-server` on a free local port and waits until its API answers.
 *
 * @throws {@link ToxiproxyServerExitedError} if the process dies during start-up
 * @throws {@link ToxiproxyServerTimeoutError} if the API does not answer in time (the process is killed)
 */
export async function startToxiproxyServer(options: ToxiproxyServerOptions): Promise<ToxiproxyServer> {
  const binary = options.binaryPath ?? (await ensureServerBinary('toxiproxy-server', options.binary));
  const host = options.host ?? '127.0.0.1';
  const dataDir = path.resolve(options.dataDir);
  await fsp.mkdir(dataDir, { recursive: true });
  const logFile = path.join(dataDir, 'toxiproxy.log');

  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await findFreePort(host));
    const child = await ManagedProcess.start({ command: binary, args: ['-host', host, '-port', String(port)], logFile });
    const client = new ToxiproxyClient(`http://${host}:${port}`, { timeoutMs: 2_000 });
    try {
      await waitUntilReady(child, client, options.readyTimeoutMs ?? 30_000);
    } catch (error) {
      await child.stop({ graceMs: 2_000 });
      const portTaken = error instanceof ToxiproxyServerExitedError && /address already in use/i.test(error.logTail);
      if (portTaken && options.port === undefined && attempt < 3) continue;
      throw error;
    }
    const apiUrl = `http://${host}:${port}`;
    return {
      apiUrl,
      client: new ToxiproxyClient(apiUrl),
      logFile,
      pid: child.pid,
      exited: child.exited,
      stop: async () => {
        await child.stop({ graceMs: options.stopGraceMs ?? 5_000 });
      },
    };
  }
}

async function waitUntilReady(child: ManagedProcess, client: ToxiproxyClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const exit = child.exit;
    if (exit) throw new ToxiproxyServerExitedError(exit, await child.logTail());
    try {
      await client.version();
      return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new ToxiproxyServerTimeoutError(timeoutMs, await child.logTail());
    await Promise.race([new Promise((resolve) => setTimeout(resolve, 100)), child.exited]);
  }
}
