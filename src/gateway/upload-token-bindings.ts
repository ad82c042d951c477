/**
 * Which upload each upload token created: a token allows ONE upload (upload-token.ts), so the
 * first creation binds the token's id to the new upload's id before anything is created, and
 * every later request with the token must name that upload.
 *
 * One upload sent in parallel (tus concatenation) is several tus uploads: partials and the final
 * that joins them. A token whose first creation is a partial is bound to a *group* instead
 * (`+<group>`, see `groupBinding`): the group's id is that partial's id, and every later
 * partial and the final it creates get an id inside the group (`<group>.<suffix>`), so the one
 * binding covers them all ({@link bindingCovers}) and no id outside it.
 *
 * Invariants: a binding is set only if none exists (Redis `SET NX`, one winner across replicas),
 * so two concurrent creations with one token cannot both succeed; it lives as long as the token
 * can be valid, then expires on its own. Only the token's id (`jti`, not a secret) is stored.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { redisCall } from './redis-call';

/** The binding of a token that sends one upload in parallel: it covers the upload `groupId` and every `<groupId>.<suffix>`. */
export function groupBinding(groupId: string): string {
  return `+${groupId}`;
}

/** The group a binding names, or undefined for a binding to one upload. Upload ids never contain `+`. */
export function groupOf(bound: string): string | undefined {
  return bound.startsWith('+') ? bound.slice(1) : undefined;
}

/** The id of a new upload inside a group (a later partial, or the final). */
export function groupMemberId(groupId: string): string {
  return `${groupId}.${randomBytes(8).toString('hex')}`;
}

/** Whether a token bound as `bound` may act on `uploadId`: that upload, or (a group) any upload of the group. */
export function bindingCovers(bound: string, uploadId: string): boolean {
  const group = groupOf(bound);
  if (group === undefined) return bound === uploadId;
  const suffix = uploadId.startsWith(`${group}.`) ? uploadId.slice(group.length + 1) : undefined;
  return uploadId === group || (suffix !== undefined && suffix.length > 0 && !suffix.includes('.'));
}

/** Where bindings live: shared by all replicas (Redis) or one process (memory). */
export interface UploadTokenBindings {
  /**
   * Binds `tokenId` to `uploadId` (or a `groupBinding`) unless it is bound already.
   * @returns the binding the token has now: `uploadId`, or the one it had before
   */
  bind(tokenId: string, uploadId: string, expiresAt: number): Promise<string>;
  /** The upload `tokenId` is bound to, if any. */
  boundUpload(tokenId: string): Promise<string | undefined>;
  /** Drops the binding of `tokenId` to `uploadId` (the creation it was made for failed). */
  release(tokenId: string, uploadId: string): Promise<void>;
  /**
   * A group's partials count against the token's limit together: adds `bytes` to what the token's
   * partials hold unless that would exceed `limit` (negative `bytes` give back what a failed
   * creation took). The count expires with the binding.
   * @returns whether the bytes were added
   */
  addBytes(tokenId: string, bytes: number, limit: number, expiresAt: number): Promise<boolean>;
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
  private readonly bytes = new Map<string, { bytes: number; expiresAt: number }>();
  async addBytes(tokenId: string, bytes: number, limit: number, expiresAt: number): Promise<boolean> {
    const now = Date.now();
    for (const [id, count] of this.bytes) if (count.expiresAt <= now) this.bytes.delete(id);
    const held = this.bytes.get(tokenId)?.bytes ?? 0;
    if (bytes > 0 && held + bytes > limit) return false;
    this.bytes.set(tokenId, { bytes: Math.max(0, held + bytes), expiresAt });
    return true;
  }
}

/** INCRBY unless the sum exceeds the limit; the count expires with the binding. KEYS[1] count, ARGV bytes, limit, ttl (ms). */
const ADD_BYTES_SCRIPT = `
local held = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[1]) > 0 and held > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

/**
 * Bindings in Redis (`<prefix>upload-token:<jti>` → upload id or group, and `…:bytes` → what a
 * group's partials hold; both expiring with the token): valid on every replica.
 */
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
  async addBytes(tokenId: string, bytes: number, limit: number, expiresAt: number): Promise<boolean> {
    const ttlMs = Math.max(1, expiresAt - Date.now()) + 60_000;
    const added = await redisCall('upload token', () =>
      this.redis.eval(ADD_BYTES_SCRIPT, 1, `${this.keyOf(tokenId)}:bytes`, bytes, limit, ttlMs),
    );
    return added === 1;
  }
}
