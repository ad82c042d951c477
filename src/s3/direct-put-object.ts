/**
 * PutObject of a small in-memory body below the AWS SDK's middleware: the request is signed with
 * the client's own credentials, region, clock offset and SigV4 signer, and sent on a keep-alive
 * socket of Node's HTTP agent. It is what a batch stores each of its small files with.
 *
 * Why: the SDK's command path (schema serialization, endpoint rules, a dozen middlewares, its
 * HTTP handler) costs about 0.7 ms of CPU per PutObject above the signature and the socket write,
 * measured against a local HTTP sink: more than everything else the worker does for a 64 KiB
 * file. A batch sends one PutObject per small file, so that path is most of its per-file cost.
 *
 * The fast path is one attempt and answers only success. Anything else — an S3 error answer, a
 * connection that fails or stalls — sends the same PutObject again through the SDK
 * ({@link putSmallObject}), whose retries, error parsing, clock-skew correction and failure metrics
 * then decide, exactly as if the fast path had not been tried. A PutObject is idempotent (same key,
 * same bytes); one with `If-None-Match: *` whose first attempt stored the object gets 412 on the
 * second, which its caller already treats as "maybe ours" (the same happens to the SDK's own retries).
 *
 * Middleware added to the client by its owner is honoured: a client whose stack holds anything
 * beyond the SDK's own and this project's span and failure-count middleware always goes through
 * the SDK. This project's failure counter (src/metrics/s3-middleware.ts) and circuit breaker
 * (src/s3/circuit-breaker.ts) see a failure only once the SDK's attempt fails too; while the
 * breaker of the client's endpoint is open or half-open, the fast path is not taken at all. The
 * fast path records a span of its own per PutObject.
 *
 * What it addresses: only a client with a custom endpoint (MinIO, an S3-compatible store, a VPC
 * endpoint) and path-style addressing, where the object's URL is the endpoint, the bucket and the
 * key. Any other client (AWS's own endpoints, virtual-hosted style, FIPS, dual-stack, accelerate)
 * goes through the SDK, whose endpoint rules know them.
 *
 * The body's signature follows src/s3/payload-signature.ts: the body is hashed into the signature
 * over plain HTTP, and sent as `UNSIGNED-PAYLOAD` over HTTPS, where TLS covers it; every request
 * carries its own signed `x-amz-checksum-*` header, which the store checks the body against.
 */
import http from 'node:http';
import https from 'node:https';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { SignatureV4 } from '@smithy/signature-v4';
import { S3_METRICS_MIDDLEWARE } from '../metrics/s3-middleware';
import { onBreakerStateChange } from '../resilience/circuit-breakers';
import { TRACER_NAME } from '../telemetry/tracing';
import { TRACE_MIDDLEWARE } from '../telemetry/s3-spans';
import { S3_BREAKER_MIDDLEWARE, s3BreakerTarget } from './circuit-breaker';
import type { ChecksumAlgorithm } from '../upload/request-types';
import { checksumField } from './checksums';

/** One small object to store. */
export interface SmallPutObjectInput {
  bucket: string;
  key: string;
  body: Buffer;
  contentType: string;
  /** User metadata (`x-amz-meta-*`): names in lower case, values in ASCII. */
  metadata: Record<string, string>;
  checksumAlgorithm: ChecksumAlgorithm;
  /** The body's checksum, base64, as S3 prints it. */
  checksum: string;
  /** `If-None-Match: *`: store only when no object is at the key. */
  ifNoneMatch?: boolean;
}

/** What the store answered. */
export interface SmallPutObjectOutput {
  /** The checksum the store echoed, when it echoed one. */
  checksum?: string;
}

type SignerInit = ConstructorParameters<typeof SignatureV4>[0];

/** The parts of the SDK client's resolved configuration the fast path signs and sends with. */
interface ResolvedS3Config {
  region: () => Promise<string>;
  endpoint?: () => Promise<{ protocol: string; hostname: string; port?: number; path: string }>;
  isCustomEndpoint?: boolean;
  forcePathStyle?: boolean;
  credentials: SignerInit['credentials'];
  sha256: SignerInit['sha256'];
  systemClockOffset?: number;
}

/** Sockets per fast-path agent, as many as the SDK client's (src/connections.ts). */
const MAX_SOCKETS = 128;
/** A connection that moves no byte for this long is given up (and the SDK's path takes over). */
const IDLE_TIMEOUT_MS = 60_000;
/** `!'()*` are left alone by encodeURIComponent but escaped by S3's canonical URI encoding. */
const EXTRA_ESCAPES = /[!'()*]/g;

function encodeKey(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(EXTRA_ESCAPES, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/** The fast path's failure: not an answer of the store's to act on, only a reason to use the SDK. */
class FastPathMissed extends Error {}

class DirectPutObject {
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private readonly signer: Promise<SignatureV4>;
  private readonly basePath: string;
  /** The circuit breaker the SDK's path of this client goes through (see {@link breakerClosed}). */
  readonly breakerTarget: string;

  constructor(
    private readonly config: ResolvedS3Config,
    private readonly endpoint: { protocol: string; hostname: string; port?: number; path: string },
  ) {
    const tls = endpoint.protocol === 'https:';
    this.transport = tls ? https : http;
    this.agent = new this.transport.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });
    this.basePath = endpoint.path.replace(/\/+$/, '');
    const port = endpoint.port === undefined ? '' : `:${endpoint.port}`;
    this.breakerTarget = s3BreakerTarget({ endpoint: `${endpoint.protocol}//${endpoint.hostname}${port}`, region: '' });
    this.signer = config.region().then(
      (region) =>
        new SignatureV4({
          service: 's3',
          region,
          credentials: config.credentials,
          sha256: config.sha256,
          uriEscapePath: false,
          applyChecksum: true,
        }),
    );
  }

  async send(input: SmallPutObjectInput, signal: AbortSignal | undefined): Promise<SmallPutObjectOutput> {
    const { hostname, port, protocol } = this.endpoint;
    const headers: Record<string, string> = {
      host: port === undefined ? hostname : `${hostname}:${port}`,
      'content-length': String(input.body.length),
      'content-type': input.contentType,
      'x-amz-sdk-checksum-algorithm': input.checksumAlgorithm,
      [`x-amz-checksum-${input.checksumAlgorithm.toLowerCase()}`]: input.checksum,
    };
    for (const [name, value] of Object.entries(input.metadata)) headers[`x-amz-meta-${name}`] = value;
    if (input.ifNoneMatch) headers['if-none-match'] = '*';
    if (protocol === 'https:') headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    const path = `${this.basePath}/${input.bucket}/${encodeKey(input.key)}`;
    const signer = await this.signer;
    const signed = await signer.sign(
      { method: 'PUT', protocol, hostname, port, path, query: {}, headers, body: input.body },
      { signingDate: new Date(Date.now() + (this.config.systemClockOffset ?? 0)) },
    );
    const echoHeader = `x-amz-checksum-${input.checksumAlgorithm.toLowerCase()}`;
    return new Promise<SmallPutObjectOutput>((resolve, reject) => {
      const request = this.transport.request(
        { agent: this.agent, method: 'PUT', hostname, port, path, headers: signed.headers, signal, timeout: IDLE_TIMEOUT_MS },
        (response) => {
          response.resume();
          const status = response.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            reject(new FastPathMissed(`HTTP ${status}`));
            return;
          }
          const echoed = response.headers[echoHeader];
          response.on('end', () => resolve({ ...(typeof echoed === 'string' ? { checksum: echoed } : {}) }));
          response.on('error', (err) => reject(new FastPathMissed(err.message)));
        },
      );
      request.on('timeout', () => request.destroy(new FastPathMissed('the connection was idle too long')));
      request.on('error', (err) => reject(signal?.aborted ? err : new FastPathMissed(err.message)));
      request.end(input.body);
    });
  }
}

/** Middleware this project adds to its clients, which the fast path may pass by (see {@link onlyKnownMiddleware}). */
const OWN_MIDDLEWARE = [TRACE_MIDDLEWARE, S3_METRICS_MIDDLEWARE, S3_BREAKER_MIDDLEWARE];
/** The SDK's own middleware of an S3 client, as `identify()` names it. */
let sdkMiddleware: Set<string> | undefined;

/**
 * Whether the client's middleware stack holds only the SDK's own and this project's. Middleware
 * someone added to the client (a header for server-side encryption, a request counter, a
 * rewrite of the request) would be passed by on the fast path, so such a client always goes
 * through the SDK. The stack is looked at once per client, on its first PutObject here.
 */
function onlyKnownMiddleware(s3: S3Client): boolean {
  sdkMiddleware ??= new Set(new S3Client({ region: 'us-east-1' }).middlewareStack.identify());
  return s3.middlewareStack
    .identify()
    .every((entry) => sdkMiddleware!.has(entry) || OWN_MIDDLEWARE.some((name) => entry.startsWith(`${name} - `)));
}

/** Breaker targets (src/s3/circuit-breaker.ts) not closed now: open or half-open. */
const breakersNotClosed = new Set<string>();
let watchingBreakers = false;

/** Whether the circuit breaker of `target` is closed (or was never used): the fast path is not taken past an open one. */
function breakerClosed(target: string): boolean {
  if (!watchingBreakers) {
    onBreakerStateChange(
      (changed, state) => void (state === 'closed' ? breakersNotClosed.delete(changed) : breakersNotClosed.add(changed)),
    );
    watchingBreakers = true;
  }
  return !breakersNotClosed.has(target);
}

/** One fast path per client (its agent's sockets are reused across calls); null: the client's endpoint is not one it addresses. */
const fastPaths = new WeakMap<S3Client, Promise<DirectPutObject | null>>();

function fastPathOf(s3: S3Client): Promise<DirectPutObject | null> {
  let found = fastPaths.get(s3);
  if (!found) {
    const config = s3.config as unknown as ResolvedS3Config;
    found = (async () => {
      if (!config.isCustomEndpoint || !config.forcePathStyle || !config.endpoint) return null;
      if (!onlyKnownMiddleware(s3)) return null;
      const endpoint = await config.endpoint();
      if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') return null;
      return new DirectPutObject(config, endpoint);
    })().catch(() => null);
    fastPaths.set(s3, found);
  }
  return found;
}

/**
 * Stores `input` with one PutObject: on the fast path when the client's endpoint allows it (see
 * the module comment), through the SDK's `PutObjectCommand` otherwise and whenever the fast path
 * did not get a success. Errors are the SDK's (S3 exceptions, `AbortError`), never the fast path's.
 */
export async function putSmallObject(s3: S3Client, input: SmallPutObjectInput, signal?: AbortSignal): Promise<SmallPutObjectOutput> {
  const fast = await fastPathOf(s3);
  if (fast && breakerClosed(fast.breakerTarget)) {
    const tracer = trace.getTracer(TRACER_NAME);
    const stored = await tracer.startActiveSpan(
      'S3.PutObject',
      {
        kind: SpanKind.CLIENT,
        attributes: { 'rpc.system': 'aws-api', 'rpc.service': 'S3', 'rpc.method': 'PutObject', 'aws.s3.bucket': input.bucket },
      },
      async (span) => {
        try {
          const output = await fast.send(input, signal);
          span.setAttribute('http.response.status_code', 200);
          return output;
        } catch (err) {
          span.setStatus({
            code: SpanStatusCode.ERROR,
            message: err instanceof FastPathMissed ? 'FastPathMissed' : ((err as Error).name ?? 'Error'),
          });
          if (!(err instanceof FastPathMissed)) throw err;
          return undefined;
        } finally {
          span.end();
        }
      },
    );
    if (stored) return stored;
  }
  const field = checksumField(input.checksumAlgorithm);
  const put = await s3.send(
    new PutObjectCommand({
      Bucket: input.bucket,
      Key: input.key,
      Body: input.body,
      ContentLength: input.body.length,
      ContentType: input.contentType,
      Metadata: input.metadata,
      ChecksumAlgorithm: input.checksumAlgorithm,
      [field]: input.checksum,
      ...(input.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
    }),
    { abortSignal: signal },
  );
  const echoed = put[field];
  return echoed === undefined ? {} : { checksum: echoed };
}
