/**
 * Live progress of client uploads: `GET /uploads/:id/events`, a Server-Sent Events stream of
 * `{ phase, bytes, totalBytes, rateBytesPerSecond, outcome }` that ends with one final event once
 * the outcome is known (with the object on success, the cause otherwise).
 *
 * Why it is built this way:
 * - The gateway is stateless and runs as several replicas, so the replica that serves a stream is
 *   usually not the one that receives the bytes. Whoever sees a change — the replica that recorded
 *   a tus chunk, opened, completed or cancelled an upload — publishes an *observation* on a
 *   per-upload Redis channel (`<prefix>progress:<tenant>:<uploadId>`); every replica with a
 *   subscriber for that upload receives it. One subscriber connection per replica, channels
 *   subscribed while at least one stream watches them. Without Redis (one replica) the same bus
 *   runs in memory.
 * - Some phases no gateway sees: verify, merge, notify, compensation and expiry happen in the
 *   workflow, and presigned parts go straight from the client to S3. So each stream also polls at a
 *   low rate (default every 2 s, only while someone watches): the workflow's state query, and for a
 *   presigned upload still receiving parts, ListParts (the bytes S3 holds). The workflow is the
 *   truth; the bus only makes the stream prompt.
 * - Tenant scoping: the stream is opened only after the uploads service found the upload under the
 *   caller's tenant (another tenant's upload is a 404, as everywhere), and the channel name carries
 *   the tenant, so a stream can never receive another tenant's observations.
 * - Rate is computed where it is shown, over a sliding window of byte counts (observations carry
 *   the time they were made), so it needs no shared state and decays to 0 when bytes stop.
 * - Publishing never fails a request: a Redis outage costs promptness (the poll still delivers),
 *   never an upload.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import { listAllParts } from '../activities/s3/list-parts';
import type { ClientUploadPhase, ClientUploadState } from '../upload/client-upload';
import type { UploadOutcomeKind } from '../upload/outcome';
import { UnauthorizedError } from './errors';
import type { GatewayPlugin } from './plugin-types';

/** One event of the stream (`event: progress`, `data:` this as JSON). */
export interface ProgressEvent {
  uploadId: string;
  phase: ClientUploadPhase;
  /** Bytes received so far (tus: the durable offset; presigned: the parts S3 holds); the size once verified. */
  bytes: number;
  /** The upload's length, when known (tus: always; presigned: once verified). */
  totalBytes?: number;
  /** Bytes per second over the last {@link ProgressStreamOptions.rateWindowMs}; 0 when nothing moves. */
  rateBytesPerSecond: number;
  /** `running` until the last event. */
  outcome: UploadOutcomeKind;
  /** The stored object, on the final event of a completed upload. */
  object?: { bucket: string; key: string; etag: string; size: number; versionId?: string };
  /** Why the upload ended without an object, on the final event (`<type>: <message>`). */
  error?: string;
  /** Epoch ms of the observation this event reflects. */
  at: number;
}

/** What one replica saw of an upload; fields left out are unknown to it. */
export interface ProgressObservation {
  tenant: string;
  uploadId: string;
  /** Epoch ms when it was observed. */
  at: number;
  phase?: ClientUploadPhase;
  bytes?: number;
  totalBytes?: number;
  outcome?: UploadOutcomeKind;
  object?: ProgressEvent['object'];
  error?: string;
}

/** Carries observations from the replica that made them to every replica with a stream for the upload. */
export interface ProgressBus {
  /** Sends an observation; resolves `false` (never rejects) when it could not be sent. */
  publish(observation: ProgressObservation): Promise<boolean>;
  /** Calls `listener` with every observation of the upload until the returned function is called. */
  subscribe(tenant: string, uploadId: string, listener: (observation: ProgressObservation) => void): Promise<() => Promise<void>>;
  /** Stops delivering and closes connections. */
  close(): Promise<void>;
}

/** Options of {@link createProgressBus}. */
export interface ProgressBusOptions {
  /**
   * Redis for fan-out across replicas: publishes on it, subscribes on a duplicate connection the
   * bus owns. Not closed by the bus.
   * @default undefined: in memory, one replica only
   */
  redis?: Redis;
  /** Prefix of the channel names, to share one Redis between deployments. @default 'upload-saga:' */
  channelPrefix?: string;
  /** Receives bus errors (a Redis outage); they never reach a request. @default ignore */
  onError?: (error: Error) => void;
}

/** A Redis-backed bus when `redis` is given, else an in-memory one. */
export function createProgressBus(options: ProgressBusOptions = {}): ProgressBus {
  return options.redis ? new RedisProgressBus({ ...options, redis: options.redis }) : new LocalProgressBus();
}

const channelOf = (prefix: string, tenant: string, uploadId: string) => `${prefix}progress:${tenant}:${uploadId}`;

/** Channels and their listeners, shared by both buses. */
class Listeners {
  private readonly byChannel = new Map<string, Set<(o: ProgressObservation) => void>>();
  /** Adds a listener; true when it is the channel's first. */
  add(channel: string, listener: (o: ProgressObservation) => void): boolean {
    const set = this.byChannel.get(channel) ?? new Set();
    set.add(listener);
    this.byChannel.set(channel, set);
    return set.size === 1;
  }
  /** Removes a listener; true when the channel has none left. */
  remove(channel: string, listener: (o: ProgressObservation) => void): boolean {
    const set = this.byChannel.get(channel);
    if (!set) return false;
    set.delete(listener);
    if (set.size > 0) return false;
    this.byChannel.delete(channel);
    return true;
  }
  dispatch(channel: string, observation: ProgressObservation): void {
    for (const listener of this.byChannel.get(channel) ?? []) listener(observation);
  }
  clear(): void {
    this.byChannel.clear();
  }
}

/** In-process bus: correct for one gateway replica. */
export class LocalProgressBus implements ProgressBus {
  private readonly listeners = new Listeners();
  async publish(observation: ProgressObservation): Promise<boolean> {
    const channel = channelOf('', observation.tenant, observation.uploadId);
    // Asynchronously, as over Redis: a publisher never runs subscribers' code in its own request.
    queueMicrotask(() => this.listeners.dispatch(channel, observation));
    return true;
  }
  async subscribe(tenant: string, uploadId: string, listener: (o: ProgressObservation) => void): Promise<() => Promise<void>> {
    const channel = channelOf('', tenant, uploadId);
    this.listeners.add(channel, listener);
    return async () => void this.listeners.remove(channel, listener);
  }
  async close(): Promise<void> {
    this.listeners.clear();
  }
}

/** Redis pub/sub bus: publishes on the gateway's connection, subscribes on one duplicate per replica. */
export class RedisProgressBus implements ProgressBus {
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly listeners = new Listeners();
  private readonly prefix: string;
  private readonly onError: (error: Error) => void;

  constructor(options: ProgressBusOptions & { redis: Redis }) {
    this.prefix = options.channelPrefix ?? 'upload-saga:';
    this.onError = options.onError ?? (() => undefined);
    this.publisher = options.redis;
    // A connection in subscriber mode can do nothing else: it is the bus's own.
    this.subscriber = options.redis.duplicate();
    this.subscriber.on('error', (err: Error) => this.onError(err));
    this.subscriber.on('message', (channel: string, message: string) => {
      let observation: ProgressObservation;
      try {
        observation = JSON.parse(message) as ProgressObservation;
      } catch {
        return; // not ours
      }
      // The channel names tenant and upload: a payload naming others is dropped.
      if (channelOf(this.prefix, observation.tenant, observation.uploadId) === channel) this.listeners.dispatch(channel, observation);
    });
  }

  async publish(observation: ProgressObservation): Promise<boolean> {
    try {
      await this.publisher.publish(channelOf(this.prefix, observation.tenant, observation.uploadId), JSON.stringify(observation));
      return true;
    } catch (err) {
      this.onError(err instanceof Error ? err : new Error(String(err)));
      return false;
    }
  }

  async subscribe(tenant: string, uploadId: string, listener: (o: ProgressObservation) => void): Promise<() => Promise<void>> {
    const channel = channelOf(this.prefix, tenant, uploadId);
    if (this.listeners.add(channel, listener)) {
      try {
        await this.subscriber.subscribe(channel);
      } catch (err) {
        this.listeners.remove(channel, listener);
        throw err;
      }
    }
    return async () => {
      if (this.listeners.remove(channel, listener))
        await this.subscriber.unsubscribe(channel).catch((err: unknown) => this.onError(err as Error));
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.subscriber.quit().catch(() => undefined);
  }
}

/** What the uploads service's state says about progress (bytes: the tus offset, or the verified size). */
export function observationOfState(state: ClientUploadState, at: number = Date.now()): ProgressObservation {
  const result = state.result;
  return {
    tenant: state.tenant,
    uploadId: state.uploadId,
    at,
    phase: state.phase,
    outcome: state.outcome,
    ...(result ? { bytes: result.size, totalBytes: result.size } : { bytes: state.offset }),
    ...(!result && state.length !== undefined ? { totalBytes: state.length } : {}),
    ...(result
      ? {
          object: {
            bucket: result.bucket,
            key: result.key,
            etag: result.etag,
            size: result.size,
            ...(result.versionId ? { versionId: result.versionId } : {}),
          },
        }
      : {}),
    ...(state.failure ? { error: `${state.failure.cause.type}: ${state.failure.cause.message}` } : {}),
  };
}

/**
 * Bytes per second over a sliding window of (time, bytes) samples. Pure: time is passed in.
 */
export class RateMeter {
  private samples: { at: number; bytes: number }[] = [];
  /** @param windowMs how far back samples count. @default 5000 */
  constructor(private readonly windowMs = 5_000) {}

  /** Records that `bytes` had been received at `at` (epoch ms). Out-of-order samples are dropped. */
  add(at: number, bytes: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && at < last.at) return;
    if (last && at === last.at) last.bytes = Math.max(last.bytes, bytes);
    else this.samples.push({ at, bytes });
    this.prune(at);
  }

  /** The rate as of `now`: bytes gained within the window divided by the window's span (0 with fewer than two samples). */
  rate(now: number): number {
    this.prune(now);
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last) return 0;
    // Time since the last sample counts too: when bytes stop, the rate falls towards 0.
    const span = Math.max(now, last.at) - first.at;
    if (span <= 0) return 0;
    return Math.max(0, Math.round(((last.bytes - first.bytes) * 1000) / span));
  }

  private prune(now: number): void {
    // Keep one sample older than the window as the baseline.
    while (this.samples.length > 2 && this.samples[1]!.at <= now - this.windowMs) this.samples.shift();
    if (this.samples.length === 2 && this.samples[1]!.at <= now - this.windowMs) this.samples.shift();
  }
}

/** Merges observations into the state a stream shows; pure apart from the rate meter it owns. */
export class ProgressView {
  private phase: ClientUploadPhase;
  private bytes = 0;
  private totalBytes: number | undefined;
  private outcome: UploadOutcomeKind = 'running';
  private object: ProgressEvent['object'];
  private error: string | undefined;
  private lastAt = 0;
  private readonly meter: RateMeter;
  private lastSent: string | undefined;

  constructor(
    private readonly uploadId: string,
    first: ProgressObservation,
    rateWindowMs?: number,
  ) {
    this.meter = new RateMeter(rateWindowMs);
    this.phase = first.phase ?? 'receive-parts';
    this.apply(first);
  }

  /** True once the outcome is known: the next event is the last. */
  get ended(): boolean {
    return this.outcome !== 'running';
  }

  /** Takes in an observation. Stale phases (older than what is shown) are ignored; bytes never go back while running. */
  apply(o: ProgressObservation): void {
    if (this.ended) return;
    const fresh = o.at >= this.lastAt;
    if (o.outcome && o.outcome !== 'running') {
      // An outcome is final whatever its age.
      this.outcome = o.outcome;
      this.phase = o.phase ?? 'done';
      if (o.object) this.object = o.object;
      if (o.error) this.error = o.error;
    } else if (fresh && o.phase) {
      this.phase = o.phase;
    }
    if (o.totalBytes !== undefined) this.totalBytes = o.totalBytes;
    if (o.bytes !== undefined && (o.bytes >= this.bytes || this.ended)) {
      this.bytes = o.bytes;
      this.meter.add(o.at, o.bytes);
    }
    if (fresh) this.lastAt = o.at;
  }

  /** The event to send now, or undefined when nothing a client would notice changed since the last one. */
  next(now: number): ProgressEvent | undefined {
    const rate = this.ended ? 0 : this.meter.rate(now);
    const event: ProgressEvent = {
      uploadId: this.uploadId,
      phase: this.phase,
      bytes: this.bytes,
      ...(this.totalBytes !== undefined ? { totalBytes: this.totalBytes } : {}),
      rateBytesPerSecond: rate,
      outcome: this.outcome,
      ...(this.object ? { object: this.object } : {}),
      ...(this.error ? { error: this.error } : {}),
      at: Math.max(this.lastAt, 0),
    };
    // Rates within 1 % (or under 1 KiB/s apart) are the same to a reader.
    const signature = JSON.stringify({ ...event, at: 0, rateBytesPerSecond: Math.round(Math.log2(rate + 1024) * 100) });
    if (signature === this.lastSent) return undefined;
    this.lastSent = signature;
    return event;
  }
}

/** Reads an upload's progress from the workflow (and S3, for presigned parts). */
export interface ProgressSource {
  /**
   * The upload's state for the tenant.
   * @throws UploadNotFoundError (404) for unknown ids and other tenants' uploads
   */
  state(tenant: string, uploadId: string): Promise<ClientUploadState>;
}

/** An observation from the workflow, with ListParts bytes for a presigned upload not yet merged. */
export async function pollObservation(
  source: ProgressSource,
  s3: S3Client | undefined,
  tenant: string,
  uploadId: string,
): Promise<ProgressObservation> {
  const at = Date.now();
  const state = await source.state(tenant, uploadId);
  const observation = observationOfState(state, at);
  // Until the merge, the parts S3 holds are the bytes received (the workflow learns the size at verify).
  if (
    s3 &&
    state.mode === 'presigned' &&
    state.outcome === 'running' &&
    (state.phase === 'receive-parts' || state.phase === 'verify') &&
    state.multipartUploadId
  ) {
    try {
      const parts = await listAllParts(
        s3,
        { bucket: state.bucket, key: state.key, uploadId: state.multipartUploadId },
        AbortSignal.timeout(10_000),
      );
      observation.bytes = parts.reduce((sum, part) => sum + (part.Size ?? 0), 0);
    } catch {
      // Aborted meanwhile (completed, cancelled, expired): the next poll shows the outcome.
    }
  }
  return observation;
}

/** Options of {@link progressPlugin}; every field has a default. */
export interface ProgressPluginOptions {
  /**
   * Carries observations between replicas.
   * @default a {@link RedisProgressBus} on the gateway's Redis, else a {@link LocalProgressBus}
   */
  bus?: ProgressBus;
  /** Channel prefix of the default bus. @default 'upload-saga:' */
  channelPrefix?: string;
  /** How often a stream asks the workflow (and S3) while someone watches. @default 2000 */
  pollIntervalMs?: number;
  /** Interval of SSE comments that keep idle connections open through proxies. @default 15000 */
  keepAliveMs?: number;
  /** Window of the rate. @default 5000 */
  rateWindowMs?: number;
  /** Longest a stream stays open. @default 24 h */
  maxStreamMs?: number;
}

/**
 * The progress stream as a gateway plugin: `GET /uploads/:id/events` (authenticated by the
 * gateway's bearer hook, tenant-scoped), and publishing of every state change the uploads service
 * makes on this replica (create, tus chunk, complete, cancel).
 */
export function progressPlugin(pluginOptions: ProgressPluginOptions = {}): GatewayPlugin {
  return async (app, { uploads, s3, redis }) => {
    const bus =
      pluginOptions.bus ??
      createProgressBus({
        ...(redis ? { redis } : {}),
        ...(pluginOptions.channelPrefix ? { channelPrefix: pluginOptions.channelPrefix } : {}),
        onError: (err) => app.log.warn({ err }, 'progress bus'),
      });
    const stopObserving = uploads.observe((state) => void bus.publish(observationOfState(state)));
    app.addHook('onClose', async () => {
      stopObserving();
      if (!pluginOptions.bus) await bus.close();
    });
    registerProgressRoute(app, { ...pluginOptions, bus, uploads, s3 });
  };
}

/** What {@link registerProgressRoute} needs. */
export interface ProgressRouteOptions extends ProgressPluginOptions {
  bus: ProgressBus;
  uploads: ProgressSource;
  /** For the bytes of presigned uploads still receiving parts (ListParts). @default undefined: bytes appear once verified */
  s3?: S3Client;
}

/** Writes one SSE event. */
function writeEvent(reply: FastifyReply, id: number, event: ProgressEvent): void {
  reply.raw.write(`id: ${id}\nevent: progress\ndata: ${JSON.stringify(event)}\n\n`);
}

/** `GET /uploads/:id/events`: the upload's progress as Server-Sent Events, until its outcome is known. */
export function registerProgressRoute(app: FastifyInstance, options: ProgressRouteOptions): void {
  const pollIntervalMs = options.pollIntervalMs ?? 2_000;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const maxStreamMs = options.maxStreamMs ?? 24 * 3_600_000;
  // Streams are long-lived hijacked responses: a gateway that stops ends them first, or its close would wait for them.
  const openStreams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const close of [...openStreams]) close();
  });

  app.get<{ Params: { id: string } }>('/uploads/:id/events', async (request, reply) => {
    const tenant = request.tenant;
    if (!tenant) throw new UnauthorizedError();
    const uploadId = request.params.id;
    const pending: ProgressObservation[] = [];
    // Created once the first state is read; observations arriving before wait in `pending`.
    const stream: { view?: ProgressView } = {};
    let eventId = 0;
    let closed = false;
    const timers: NodeJS.Timeout[] = [];
    let unsubscribe: (() => Promise<void>) | undefined;

    const close = () => {
      if (closed) return;
      closed = true;
      openStreams.delete(close);
      for (const timer of timers) clearTimeout(timer);
      void unsubscribe?.().catch(() => undefined);
      if (!reply.raw.writableEnded) reply.raw.end();
    };
    const flush = () => {
      const view = stream.view;
      if (closed || !view) return;
      const event = view.next(Date.now());
      if (event) writeEvent(reply, ++eventId, event);
      if (view.ended) close();
    };
    const onObservation = (observation: ProgressObservation) => {
      if (!stream.view) pending.push(observation);
      else {
        stream.view.apply(observation);
        flush();
      }
    };

    // Read the state first: another tenant's or an unknown upload is a 404 before anything is subscribed.
    let first = await pollObservation(options.uploads, options.s3, tenant, uploadId);
    try {
      unsubscribe = await options.bus.subscribe(tenant, uploadId, onObservation);
      // Whatever changed between the read and the subscription: read again.
      first = await pollObservation(options.uploads, options.s3, tenant, uploadId);
    } catch (err) {
      // The bus is down: the stream still works from the poll alone.
      request.log.warn({ err }, 'progress stream without the bus');
    }

    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx and similar proxies would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    // The response's 'close' is the connection's end (the request's fires once its body is read).
    reply.raw.on('close', close);
    openStreams.add(close);
    if (reply.raw.destroyed) close();
    const view = new ProgressView(uploadId, first, options.rateWindowMs);
    for (const observation of pending.splice(0)) view.apply(observation);
    stream.view = view;
    flush();
    if (closed) return reply;

    let polling = false;
    timers.push(
      setInterval(() => {
        if (polling || closed) return;
        polling = true;
        pollObservation(options.uploads, options.s3, tenant, uploadId)
          .then(onObservation)
          .catch(() => undefined) // Temporal briefly away: the next poll tries again
          .finally(() => (polling = false));
      }, pollIntervalMs),
      setInterval(() => {
        if (!closed) reply.raw.write(': keep-alive\n\n');
      }, keepAliveMs),
      setTimeout(close, maxStreamMs),
    );
    return reply;
  });
}
