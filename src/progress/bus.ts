/**
 * Carrying progress observations between gateway replicas and from workers: the replica that serves
 * a stream is usually not the one that receives the bytes, and an upload started from application
 * code moves its bytes in a worker (which publishes through src/progress/publisher.ts). Whoever sees a change publishes an observation on a
 * per-upload channel (`<prefix>progress:<tenant>:<uploadId>`); every replica with a subscriber for
 * that upload receives it. With Redis: one subscriber connection per replica, channels subscribed
 * while at least one stream watches them. Without Redis (one replica) the same bus runs in memory.
 *
 * Invariants: the channel name carries the tenant, so a stream never receives another tenant's
 * observations; publishing never rejects (a Redis outage costs promptness, never a request).
 */
import type { Redis } from 'ioredis';
import type { ProgressObservation } from './view';

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

/** The default prefix of channel names. */
export const DEFAULT_CHANNEL_PREFIX = 'upload-saga:';

/** The channel of one upload's observations: `<prefix>progress:<tenant>:<uploadId>`. */
export function progressChannel(prefix: string, tenant: string, uploadId: string): string {
  return `${prefix}progress:${tenant}:${uploadId}`;
}
const channelOf = progressChannel;

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
    this.prefix = options.channelPrefix ?? DEFAULT_CHANNEL_PREFIX;
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
