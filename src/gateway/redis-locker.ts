/**
 * A tus {@link Locker} on Redis, so that two gateway replicas never write the same upload at once.
 *
 * Why it is built this way: @tus/server serialises requests on one upload with a lock, and asks
 * the holder to let go when another request wants it (`cancelReq`) — that is how a client that
 * reconnects after a half-open connection takes over from its own dead PATCH. The built-in
 * MemoryLocker does both inside one process only. Here:
 * - the lock is `SET key token NX PX ttl`, renewed while held (a gateway that dies lets it lapse
 *   after `ttlMs`), released only by its holder (compare-and-delete in a Lua script);
 * - "please release" travels over one pub/sub channel; the replica that holds the lock calls the
 *   holder's `cancelReq`, and the PATCH ends gracefully (what it received is staged and recorded);
 * - a waiting request retries every `retryMs` until it gets the lock, its request is aborted, or
 *   `acquireTimeoutMs` passes (then tus answers 500 "failed to acquire lock before timeout");
 * - every call that takes or asks for a lock is bounded (redis-call.ts): Redis away answers 503
 *   with `Retry-After`, never a hang; a release that fails is only logged, the lock lapses by
 *   its TTL (the bytes of the request were recorded before it).
 * Lock keys carry the tenant (see tus.ts), so one tenant can never disturb another's upload.
 */
import { randomUUID } from 'node:crypto';
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/server';
import type { Redis } from 'ioredis';
import { redisCall } from './redis-call';
import { tusRequestContext } from './tus-request-context';

/** @see RedisLocker */
export interface RedisLockerOptions {
  /** Connection for commands. Not closed by the locker. */
  redis: Redis;
  /** A second connection the locker subscribes with (a subscribed connection cannot send commands); closed by {@link RedisLocker.close}. */
  subscriber: Redis;
  /** @default 'upload-saga:tus-lock:' */
  keyPrefix?: string;
  /** Lock lifetime without renewal. @default 30000 */
  ttlMs?: number;
  /** Longest wait for a lock. @default 30000 */
  acquireTimeoutMs?: number;
  /** Pause between attempts. @default 100 */
  retryMs?: number;
}

const RELEASE_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
const RENEW_SCRIPT = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

export class RedisLocker implements Locker {
  /** Release requests by lock key, for the locks this process holds. */
  private readonly holders = new Map<string, RequestRelease>();
  private readonly channel: string;
  readonly ttlMs: number;
  readonly acquireTimeoutMs: number;
  readonly retryMs: number;
  readonly keyPrefix: string;

  private constructor(readonly options: RedisLockerOptions) {
    this.keyPrefix = options.keyPrefix ?? 'upload-saga:tus-lock:';
    this.channel = `${this.keyPrefix}release`;
    this.ttlMs = options.ttlMs ?? 30_000;
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 30_000;
    this.retryMs = options.retryMs ?? 100;
  }

  /** Creates the locker and subscribes to release requests. */
  static async create(options: RedisLockerOptions): Promise<RedisLocker> {
    const locker = new RedisLocker(options);
    // Its errors are the command connection's too (same server), reported by its owner; it reconnects and resubscribes by itself.
    options.subscriber.on('error', () => undefined);
    options.subscriber.on('message', (channel: string, key: string) => {
      if (channel === locker.channel) void Promise.resolve(locker.holders.get(key)?.()).catch(() => undefined);
    });
    await options.subscriber.subscribe(locker.channel);
    return locker;
  }

  newLock(id: string): Lock {
    return new RedisLock(this, `${this.keyPrefix}${id}`);
  }

  /** @internal */
  hold(key: string, release: RequestRelease): void {
    this.holders.set(key, release);
  }

  /** @internal */
  letGo(key: string): void {
    this.holders.delete(key);
  }

  /** @internal Asks whoever holds `key` (in any replica) to release it. */
  async requestRelease(key: string): Promise<void> {
    await redisCall('upload lock', () => this.options.redis.publish(this.channel, key));
  }

  /** Unsubscribes and closes the subscriber connection. */
  async close(): Promise<void> {
    await this.options.subscriber.quit().catch(() => undefined);
  }
}

class RedisLock implements Lock {
  private readonly token = randomUUID();
  private renewal: NodeJS.Timeout | undefined;

  constructor(
    private readonly locker: RedisLocker,
    private readonly key: string,
  ) {}

  async lock(signal: AbortSignal, cancelReq: RequestRelease): Promise<void> {
    const { redis } = this.locker.options;
    const deadline = Date.now() + this.locker.acquireTimeoutMs;
    let asked = false;
    for (;;) {
      if (signal.aborted) throw ERRORS.ABORTED;
      const acquired = await redisCall('upload lock', () => redis.set(this.key, this.token, 'PX', this.locker.ttlMs, 'NX'));
      if (acquired === 'OK') break;
      if (!asked) {
        await this.locker.requestRelease(this.key);
        asked = true;
      }
      if (Date.now() > deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
      await new Promise((resolve) => setTimeout(resolve, this.locker.retryMs));
    }
    this.locker.hold(this.key, cancelReq);
    this.renewal = setInterval(
      () => {
        void redis.eval(RENEW_SCRIPT, 1, this.key, this.token, String(this.locker.ttlMs)).catch(() => undefined);
      },
      Math.max(1000, this.locker.ttlMs / 3),
    );
    this.renewal.unref();
  }

  async unlock(): Promise<void> {
    clearInterval(this.renewal);
    this.locker.letGo(this.key);
    try {
      await redisCall('upload lock', () => this.locker.options.redis.eval(RELEASE_SCRIPT, 1, this.key, this.token));
    } catch (err) {
      // The request's work is done and recorded; the lock lapses after its TTL.
      tusRequestContext
        .getStore()
        ?.log?.warn({ err, lock: this.key }, 'could not release an upload lock (Redis unavailable); it lapses by its TTL');
    }
  }
}
