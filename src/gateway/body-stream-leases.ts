/**
 * Counting a tenant's request bodies being received, across replicas: a lease per body stream,
 * taken before the body is read (refused when the tenant holds its cap) and given back when the
 * request ends.
 *
 * Why it is built this way: with Redis, a tenant's leases are the members of one sorted set scored
 * by their expiry on Redis's own clock (`TIME`), so replicas with skewed clocks agree. Taking a
 * lease is one script — drop expired members, count, add — atomic without a lock. Each replica
 * renews every lease it holds in one call per `renewEveryMs`; a replica that dies stops renewing,
 * and its leases stop counting after `ttlMs`. Every call goes through `redisCall`, bounded in
 * time: taking a lease while Redis is away answers 503 with Retry-After; a failed renewal or
 * release is left to the TTL. Without Redis, leases are counted in process memory (one replica).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { redisCall } from './redis-call';

/** A tenant's body-stream leases. */
export interface BodyStreamLeases {
  /** A lease for one more body stream of `tenant`, or undefined when it holds `cap` already. */
  acquire(tenant: string, cap: number): Promise<string | undefined>;
  /** Gives a lease back (best effort: a lease not given back expires). */
  release(tenant: string, lease: string): Promise<void>;
  /** Stops renewing; leases still held expire. */
  close(): void;
}

/** Leases in process memory: each replica counts its own (run one replica without Redis). */
export class MemoryBodyStreamLeases implements BodyStreamLeases {
  private readonly held = new Map<string, Set<string>>();

  async acquire(tenant: string, cap: number): Promise<string | undefined> {
    const leases = this.held.get(tenant) ?? new Set<string>();
    if (leases.size >= cap) return undefined;
    const lease = randomUUID();
    leases.add(lease);
    this.held.set(tenant, leases);
    return lease;
  }

  async release(tenant: string, lease: string): Promise<void> {
    const leases = this.held.get(tenant);
    leases?.delete(lease);
    if (leases?.size === 0) this.held.delete(tenant);
  }

  close(): void {}
}

/** Drops expired leases, counts, adds one unless the cap is reached: 1 when added, else 0. */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** Moves the expiry of leases still present (KEYS[i], ARGV[i + 1]) to now + ttl (ARGV[1]). */
const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, 'XX', now + ttl, ARGV[i + 1])
  redis.call('PEXPIRE', key, ttl)
end
return #KEYS`;

/** Options of {@link RedisBodyStreamLeases}. */
export interface RedisBodyStreamLeasesOptions {
  /** A lease not renewed for this long stops counting (a replica died). @default 30000 */
  ttlMs?: number;
  /** How often a replica renews the leases it holds, in one call. @default ttlMs / 3 */
  renewEveryMs?: number;
  /** @default 'upload-saga:body-streams:' */
  keyPrefix?: string;
}

/** Leases in Redis, shared by every replica. */
export class RedisBodyStreamLeases implements BodyStreamLeases {
  private readonly ttlMs: number;
  private readonly keyPrefix: string;
  /** Leases this replica holds: lease → its tenant's key. */
  private readonly held = new Map<string, string>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    options: RedisBodyStreamLeasesOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 30_000;
    this.keyPrefix = options.keyPrefix ?? 'upload-saga:body-streams:';
    this.timer = setInterval(() => void this.renew(), options.renewEveryMs ?? Math.ceil(this.ttlMs / 3));
    this.timer.unref();
  }

  async acquire(tenant: string, cap: number): Promise<string | undefined> {
    const key = `${this.keyPrefix}${tenant}`;
    const lease = randomUUID();
    const added = await redisCall('body stream cap', () => this.redis.eval(ACQUIRE, 1, key, cap, this.ttlMs, lease));
    if (Number(added) !== 1) return undefined;
    this.held.set(lease, key);
    return lease;
  }

  async release(tenant: string, lease: string): Promise<void> {
    this.held.delete(lease);
    await redisCall('body stream cap', () => this.redis.zrem(`${this.keyPrefix}${tenant}`, lease)).catch(() => undefined);
  }

  close(): void {
    clearInterval(this.timer);
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    const leases = [...this.held];
    await redisCall('body stream cap', () =>
      this.redis.eval(RENEW, leases.length, ...leases.map(([, key]) => key), this.ttlMs, ...leases.map(([lease]) => lease)),
    ).catch(() => undefined);
  }
}
