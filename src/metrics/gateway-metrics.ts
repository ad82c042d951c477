/**
 * The gateway's metrics, on prom-client, in a registry of its own per gateway: HTTP requests by
 * route pattern and status, bytes received, uploads by protocol and outcome, 413/429 answers,
 * open progress streams, request bodies being received and those refused or ended idle, Redis
 * errors, pauses and resumes through the gateway's routes.
 *
 * Invariants:
 * - `route` is fastify's route pattern (`/s3/multipart/:uploadId`), never the raw URL (which
 *   carries upload ids and tokens); requests that match no route are `route="unmatched"`.
 * - No tenant label unless the operator opts in; no label ever carries a token or key.
 * - The recording hook is one `onResponse` per request over pre-declared metrics.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Progress stream protocols the open-streams gauge distinguishes. */
export type StreamProtocol = 'sse' | 'websocket';
/** Upload protocols of the gateway. */
export type GatewayUploadProtocol = 'tus' | 's3-multipart';

/** What the pause routes do, as the pauses counter labels it. */
export type PauseAction = 'pause' | 'resume';
const PAUSE_ACTIONS: readonly PauseAction[] = ['pause', 'resume'];

/** Options of {@link GatewayMetrics}. */
export interface GatewayMetricsOptions {
  /** Add a `tenant` label to upload counters. @default false */
  tenantLabel?: boolean;
  /** The registry to register into (a host app's own). @default a new Registry */
  registry?: Registry;
}

/** Request-duration buckets: 1 ms to 2 min (a PATCH of a large tus part, or the final one waiting for the merge). */
const REQUEST_SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Every metric of one gateway, and the calls that record them. */
export class GatewayMetrics {
  readonly registry: Registry;
  readonly tenantLabel: boolean;
  readonly httpRequests: Counter<string>;
  readonly httpRequestDuration: Histogram<string>;
  readonly receivedBytes: Counter<string>;
  readonly uploads: Counter<string>;
  readonly rejectedRequests: Counter<string>;
  readonly openStreams: Gauge<string>;
  readonly redisErrors: Counter<string>;
  readonly bodyStreams: Gauge<string>;
  readonly bodyStreamsRefused: Counter<string>;
  readonly bodyStreamsIdleEnded: Counter<string>;
  readonly pauses: Counter<string>;

  constructor(options: GatewayMetricsOptions = {}) {
    const registers = [(this.registry = options.registry ?? new Registry())];
    this.tenantLabel = options.tenantLabel ?? false;
    const tenant = this.tenantLabel ? ['tenant'] : [];
    this.httpRequests = new Counter({
      name: 'upload_saga_gateway_http_requests_total',
      help: 'HTTP requests the gateway answered, by route pattern, method and status code',
      labelNames: ['route', 'method', 'status'],
      registers,
    });
    this.httpRequestDuration = new Histogram({
      name: 'upload_saga_gateway_http_request_duration_seconds',
      help: 'Time from receiving a request to the end of its answer, by route pattern and method',
      labelNames: ['route', 'method'],
      buckets: REQUEST_SECONDS_BUCKETS,
      registers,
    });
    this.receivedBytes = new Counter({
      name: 'upload_saga_gateway_received_bytes_total',
      help: 'Request body bytes the gateway received (by Content-Length), by protocol (tus, s3-multipart, other)',
      labelNames: ['protocol'],
      registers,
    });
    this.uploads = new Counter({
      name: 'upload_saga_gateway_uploads_total',
      help: 'Gateway uploads by protocol and outcome: created, then completed, compensated, failed, expired, cancelled or running (answered before the merge ended) when the last byte arrived, or aborted',
      labelNames: ['protocol', 'outcome', ...tenant],
      registers,
    });
    this.rejectedRequests = new Counter({
      name: 'upload_saga_gateway_rejected_requests_total',
      help: "Requests refused for size (413), or for rate or the tenant's body-stream cap (429), by status code",
      labelNames: ['status'],
      registers,
    });
    this.openStreams = new Gauge({
      name: 'upload_saga_gateway_open_streams',
      help: 'Progress streams open now, by protocol (sse, websocket)',
      labelNames: ['protocol'],
      registers,
    });
    this.redisErrors = new Counter({
      name: 'upload_saga_gateway_redis_errors_total',
      help: "Errors of the gateway's Redis connections (connection lost, refused, command failures reported by the client)",
      registers,
    });
    this.bodyStreams = new Gauge({
      name: 'upload_saga_gateway_body_streams',
      help: 'Request bodies (tus PATCH, creation-with-upload POST) this replica is receiving now; at most UPLOAD_SAGA_GATEWAY_BODY_STREAMS',
      registers,
    });
    this.bodyStreamsRefused = new Counter({
      name: 'upload_saga_gateway_body_streams_refused_total',
      help: 'Request bodies refused before they were read, by whose cap was reached: tenant (429) or replica (503)',
      labelNames: ['scope'],
      registers,
    });
    this.bodyStreamsIdleEnded = new Counter({
      name: 'upload_saga_gateway_body_streams_idle_ended_total',
      help: 'Request bodies ended because they sent nothing for UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT (what arrived was kept)',
      registers,
    });
    this.pauses = new Counter({
      name: 'upload_saga_gateway_pauses_total',
      help: "Uploads paused and resumed through the gateway's routes (POST /uploads/:id/pause and /resume answered 200), by action (pause, resume)",
      labelNames: ['action', ...tenant],
      registers,
    });
    for (const protocol of ['sse', 'websocket']) this.openStreams.set({ protocol }, 0);
    if (!this.tenantLabel) for (const action of PAUSE_ACTIONS) this.pauses.inc({ action }, 0);
    for (const scope of ['tenant', 'replica']) this.bodyStreamsRefused.inc({ scope }, 0);
  }

  /** An upload reached `outcome`. */
  uploadOutcome(protocol: GatewayUploadProtocol, outcome: string, tenant?: string): void {
    this.uploads.inc(this.tenantLabel ? { protocol, outcome, tenant: tenant ?? '' } : { protocol, outcome });
  }

  /**
   * A progress stream opened: returns the function to call once when it closes (extra calls do
   * nothing). For the SSE route and the WebSocket endpoint.
   */
  streamOpened(protocol: StreamProtocol): () => void {
    this.openStreams.inc({ protocol });
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.openStreams.dec({ protocol });
    };
  }

  /** An upload was paused or resumed through the gateway's route. */
  pauseAction(action: PauseAction, tenant?: string): void {
    this.pauses.inc(this.tenantLabel ? { action, tenant: tenant ?? '' } : { action });
  }

  /** A Redis error happened (an ioredis `error` event or a failed command). */
  redisError(): void {
    this.redisErrors.inc();
  }

  /** Every metric's exposition text. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/** The protocol of a gateway route pattern, for bytes and uploads. */
function protocolOf(route: string, tusPath: string): GatewayUploadProtocol | 'other' {
  if (route === tusPath || route.startsWith(`${tusPath}/`)) return 'tus';
  if (route.includes('/s3/multipart') || route.endsWith('/s3/params') || route.endsWith('/s3/empty/:uploadId')) return 's3-multipart';
  return 'other';
}

/** What a request to a gateway route says about an upload's life, from its route, method and status. */
function uploadEventOf(protocol: GatewayUploadProtocol | 'other', route: string, method: string, status: number): string | undefined {
  if (protocol === 'tus') {
    if (method === 'POST' && status === 201) return 'created';
    if (method === 'DELETE' && status === 204) return 'aborted';
    return undefined;
  }
  if (protocol === 's3-multipart') {
    if (method === 'POST' && route.endsWith('/s3/multipart') && status < 300) return 'created';
    // An empty file: created by Uppy's params request, completed by its form.
    if (method === 'GET' && route.endsWith('/s3/params') && status === 200) return 'created';
    if (method === 'POST' && route.endsWith('/s3/empty/:uploadId'))
      return status === 201 ? 'completed' : status === 202 ? 'running' : undefined;
    if (method === 'POST' && route.endsWith('/complete')) return status === 200 ? 'completed' : status === 202 ? 'running' : undefined;
    if (method === 'DELETE' && status < 300) return 'aborted';
  }
  return undefined;
}

/** The action of a pause route's pattern (`…/uploads/:id/pause`, `…/uploads/:id/resume`), or undefined. */
function pauseActionOf(route: string): PauseAction | undefined {
  return PAUSE_ACTIONS.find((action) => route.endsWith(`/uploads/:id/${action}`));
}

/**
 * Adds the recording hook to the (encapsulated) gateway instance: only the gateway's routes are
 * counted. `tusPath` is the tus endpoint's full path (prefix included).
 */
export function recordGatewayRequests(app: FastifyInstance, metrics: GatewayMetrics, tusPath: string): void {
  app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const method = request.method;
    const status = reply.statusCode;
    metrics.httpRequests.inc({ route, method, status: String(status) });
    metrics.httpRequestDuration.observe({ route, method }, reply.elapsedTime / 1000);
    if (status === 413 || status === 429) metrics.rejectedRequests.inc({ status: String(status) });
    const protocol = protocolOf(route, tusPath);
    const length = Number(request.headers['content-length']);
    if (length > 0) metrics.receivedBytes.inc({ protocol }, length);
    const event = uploadEventOf(protocol, route, method, status);
    if (event && protocol !== 'other') metrics.uploadOutcome(protocol, event, request.tenant);
    const pause = method === 'POST' && status === 200 ? pauseActionOf(route) : undefined;
    if (pause) metrics.pauseAction(pause, request.tenant);
  });
}
