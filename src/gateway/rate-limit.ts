/**
 * Per-tenant request rate limits: a fixed one-second window per tenant.
 *
 * Why it is built this way: the limit must hold across gateway replicas, so with Redis the count
 * lives there (`INCR` on a key per tenant and second, expiring after two seconds: one round trip,
 * no script). Without Redis the same window is counted in process memory, which limits each
 * replica separately (documented: run one replica without Redis). A fixed window lets a burst of
 * up to twice the limit straddle a second boundary; for protecting the gateway and Temporal from
 * a runaway client that is enough, and it is the same arithmetic in both places.
 */
import type { Redis } from 'ioredis';
import { redisCall } from './redis-call';

/** The answer for one request. */
export interface RateDecision {
  allowed: boolean;
  /** Seconds until the window resets (for Retry-After). */
  retryAfterSeconds: number;
}

/** Counts requests per tenant. */
export interface RateLimiter {
  take(tenant: string, perSecond: number): Promise<RateDecision>;
}

/** The window in process memory (one replica). */
export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { second: number; count: number }>();

  async take(tenant: string, perSecond: number): Promise<RateDecision> {
    const second = Math.floor(Date.now() / 1000);
    const window = this.windows.get(tenant);
    if (!window || window.second !== second) {
      this.windows.set(tenant, { second, count: 1 });
      if (this.windows.size > 10_000) for (const [t, w] of this.windows) if (w.second < second) this.windows.delete(t);
      return { allowed: 1 <= perSecond, retryAfterSeconds: 1 };
    }
    window.count++;
    return { allowed: window.count <= perSecond, retryAfterSeconds: 1 };
  }
}

/** The window in Redis, shared by every replica. */
export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: Redis,
    /** @default 'upload-saga:rate:' */
    private readonly keyPrefix = 'upload-saga:rate:',
  ) {}

  async take(tenant: string, perSecond: number): Promise<RateDecision> {
    const key = `${this.keyPrefix}${tenant}:${Math.floor(Date.now() / 1000)}`;
    const results = await redisCall('rate limit', () => this.redis.multi().incr(key).pexpire(key, 2000).exec());
    const count = Number(results?.[0]?.[1] ?? 0);
    return { allowed: count <= perSecond, retryAfterSeconds: 1 };
  }
}
