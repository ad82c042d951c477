/**
 * Which upload each upload token created: a token allows ONE upload (upload-token.ts), so the
 * first creation binds the token's id to the new upload's id before anything is created, and
 * every later request with the token must name that upload.
 *
 * Invariants: a binding is set only if none exists (Redis `SET NX`, one winner across replicas),
 * so two concurrent creations with one token cannot both succeed; it lives as long as the token
 * can be valid, then expires on its own. Only the token's id (`jti`, not a secret) is stored.
 */
import type { Redis } from 'ioredis';
import { redisCall } from './redis-call';

/** Where bindings live: shared by all replicas (Redis) or one process (memory). */
export interface UploadTokenBindings {
  /**
   * Binds `tokenId` to `uploadId` unless it is bound already.
   * @returns the upload the token is bound to now: `uploadId`, or the one it was bound to before
   */
  bind(tokenId: string, uploadId: string, expiresAt: number): Promise<string>;
  /** The upload `tokenId` is bound to, if any. */
  boundUpload(tokenId: string): Promise<string | undefined>;
  /** Drops the binding of `tokenId` to `uploadId` (the creation it was made for failed). */
  release(tokenId: string, uploadId: string): Promise<void>;
}

/** Bindings in this process: right for one replica. */
export class MemoryUploadTokenBindings implements UploadTokenBindings {
  private readonly bindings = new Map<string, { uploadId: string; expiresAt: number }>();
  async bind(tokenId: string, uploadId: string, expiresAt: number): Promise<string> {
    const now = Date.now();
    for (const [id, binding] of this.bindings) if (binding.expiresAt <= now) this.bindings.delete(id);
    const existing = this.bindings.get(tokenId);
    if (existing) return existing.uploadId;
    this.bindings.set(tokenId, { uploadId, expiresAt });
    return uploadId;
  }
  async boundUpload(tokenId: string): Promise<string | undefined> {
    const binding = this.bindings.get(tokenId);
    return binding && binding.expiresAt > Date.now() ? binding.uploadId : undefined;
  }
  async release(tokenId: string, uploadId: string): Promise<void> {
    if (this.bindings.get(tokenId)?.uploadId === uploadId) this.bindings.delete(tokenId);
  }
}

/** Bindings in Redis (`<prefix>upload-token:<jti>` → upload id, expiring with the token): valid on every replica. */
export class RedisUploadTokenBindings implements UploadTokenBindings {
  constructor(
    /** The gateway's connection; not closed here. */
    private readonly redis: Redis,
    /** @default 'upload-saga:' */
    private readonly prefix = 'upload-saga:',
  ) {}
  private keyOf(tokenId: string): string {
    return `${this.prefix}upload-token:${tokenId}`;
  }
  async bind(tokenId: string, uploadId: string, expiresAt: number): Promise<string> {
    // A minute beyond the token's expiry, so that clock differences never let a binding lapse first.
    const ttlMs = Math.max(1, expiresAt - Date.now()) + 60_000;
    // Twice at most: a binding that expires between the SET and the GET leaves the field free again.
    for (let attempt = 0; ; attempt++) {
      const set = await redisCall('upload token', () => this.redis.set(this.keyOf(tokenId), uploadId, 'PX', ttlMs, 'NX'));
      if (set === 'OK') return uploadId;
      const bound = await this.boundUpload(tokenId);
      if (bound !== undefined || attempt > 0) return bound ?? uploadId;
    }
  }
  async boundUpload(tokenId: string): Promise<string | undefined> {
    return (await redisCall('upload token', () => this.redis.get(this.keyOf(tokenId)))) ?? undefined;
  }
  async release(tokenId: string, uploadId: string): Promise<void> {
    if ((await this.boundUpload(tokenId)) === uploadId) await redisCall('upload token', () => this.redis.del(this.keyOf(tokenId)));
  }
}
