/**
 * Browser sessions of the S3 multipart endpoints: @uppy/aws-s3 v6 sends no headers to a
 * Companion endpoint, so a browser cannot present its bearer token there. `POST /uppy/sessions`
 * (bearer) issues a short-lived session whose token is part of the endpoint path.
 *
 * Invariant: only the token's SHA-256 is stored (in Redis with a TTL across replicas, else in
 * memory), so a leaked store does not leak a usable session.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { redisCall } from './redis-call';

/** A session issued to a browser: the tenant it acts for, until when. */
export interface BrowserSession {
  /** The secret that goes into the endpoint path. Shown once, stored only as its SHA-256. */
  token: string;
  tenant: string;
  /** Epoch ms. */
  expiresAt: number;
}

/** Where sessions live: shared by all replicas (Redis) or one process (memory). */
export interface SessionStore {
  issue(tenant: string, ttlMs: number): Promise<BrowserSession>;
  /** The tenant of a valid, unexpired session token, else undefined. */
  resolve(token: string): Promise<string | undefined>;
  close(): Promise<void>;
}

const SESSION_TOKEN = /^[A-Za-z0-9_-]{43}$/;
const hashOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');
const newToken = () => randomBytes(32).toString('base64url');

/** Sessions in this process: right for one replica. */
export class MemorySessionStore implements SessionStore {
  private readonly sessions = new Map<string, { tenant: string; expiresAt: number }>();
  async issue(tenant: string, ttlMs: number): Promise<BrowserSession> {
    const token = newToken();
    const expiresAt = Date.now() + ttlMs;
    const now = Date.now();
    for (const [hash, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(hash);
    this.sessions.set(hashOf(token), { tenant, expiresAt });
    return { token, tenant, expiresAt };
  }
  async resolve(token: string): Promise<string | undefined> {
    if (!SESSION_TOKEN.test(token)) return undefined;
    const session = this.sessions.get(hashOf(token));
    return session && session.expiresAt > Date.now() ? session.tenant : undefined;
  }
  async close(): Promise<void> {
    this.sessions.clear();
  }
}

/** Sessions in Redis (`<prefix>session:<sha256>` → tenant, with a TTL): valid on every replica. */
export class RedisSessionStore implements SessionStore {
  constructor(
    /** The gateway's connection; not closed by the store. */
    private readonly redis: Redis,
    /** @default 'upload-saga:' */
    private readonly prefix = 'upload-saga:',
  ) {}
  async issue(tenant: string, ttlMs: number): Promise<BrowserSession> {
    const token = newToken();
    await redisCall('upload session', () => this.redis.set(`${this.prefix}session:${hashOf(token)}`, tenant, 'PX', ttlMs));
    return { token, tenant, expiresAt: Date.now() + ttlMs };
  }
  async resolve(token: string): Promise<string | undefined> {
    if (!SESSION_TOKEN.test(token)) return undefined;
    return (await redisCall('upload session', () => this.redis.get(`${this.prefix}session:${hashOf(token)}`))) ?? undefined;
  }
  async close(): Promise<void> {
    // the connection is the gateway's
  }
}
