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
 * A group's partials count against the token's `maxBytes` together (`addBytes`); each is noted as
 * a member with its bytes (`addMember`), so that a partial that ended without being joined can give
 * them back (`giveBack`, once per member).
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
  /** Notes that the token's partial `uploadId` holds `bytes` of its count (so they can be given back if it ends unjoined). */
  addMember(tokenId: string, uploadId: string, bytes: number, expiresAt: number): Promise<void>;
  /** The partials noted with `addMember` whose bytes the count still holds. */
  members(tokenId: string): Promise<{ uploadId: string; bytes: number }[]>;
  /**
   * Gives back the bytes of member `uploadId` (it ended without being joined) and forgets it, once:
   * of concurrent calls for one member, one gives back.
   * @returns whether this call gave them back
   */
  giveBack(tokenId: string, uploadId: string): Promise<boolean>;
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
  private readonly memberBytes = new Map<string, { members: Map<string, number>; expiresAt: number }>();
  async addMember(tokenId: string, uploadId: string, bytes: number, expiresAt: number): Promise<void> {
    const now = Date.now();
    for (const [id, group] of this.memberBytes) if (group.expiresAt <= now) this.memberBytes.delete(id);
    const group = this.memberBytes.get(tokenId) ?? { members: new Map<string, number>(), expiresAt };
    group.members.set(uploadId, bytes);
    this.memberBytes.set(tokenId, group);
  }
  async members(tokenId: string): Promise<{ uploadId: string; bytes: number }[]> {
    const group = this.memberBytes.get(tokenId);
    if (!group || group.expiresAt <= Date.now()) return [];
    return [...group.members].map(([uploadId, bytes]) => ({ uploadId, bytes }));
  }
  async giveBack(tokenId: string, uploadId: string): Promise<boolean> {
    const group = this.memberBytes.get(tokenId);
    const bytes = group?.members.get(uploadId);
    if (!group || bytes === undefined) return false;
    group.members.delete(uploadId);
    const count = this.bytes.get(tokenId);
    if (count) count.bytes = Math.max(0, count.bytes - bytes);
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

/** Forgets a member and takes its bytes off the count, once. KEYS[1] members hash, KEYS[2] count; ARGV upload id. */
const GIVE_BACK_SCRIPT = `
local bytes = redis.call('HGET', KEYS[1], ARGV[1])
if not bytes then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local held = redis.call('DECRBY', KEYS[2], bytes)
if held < 0 then redis.call('SET', KEYS[2], 0, 'KEEPTTL') end
return 1
`;

/**
 * Bindings in Redis (`<prefix>upload-token:<jti>` → upload id or group, `…:bytes` → what a group's
 * partials hold, `…:members` → each partial's bytes; all expiring with the token): valid on every
 * replica.
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
  async addMember(tokenId: string, uploadId: string, bytes: number, expiresAt: number): Promise<void> {
    const ttlMs = Math.max(1, expiresAt - Date.now()) + 60_000;
    const key = `${this.keyOf(tokenId)}:members`;
    await redisCall('upload token', () => this.redis.multi().hset(key, uploadId, bytes).pexpire(key, ttlMs).exec());
  }
  async members(tokenId: string): Promise<{ uploadId: string; bytes: number }[]> {
    const all = await redisCall('upload token', () => this.redis.hgetall(`${this.keyOf(tokenId)}:members`));
    return Object.entries(all).map(([uploadId, bytes]) => ({ uploadId, bytes: Number(bytes) }));
  }
  async giveBack(tokenId: string, uploadId: string): Promise<boolean> {
    const given = await redisCall('upload token', () =>
      this.redis.eval(GIVE_BACK_SCRIPT, 2, `${this.keyOf(tokenId)}:members`, `${this.keyOf(tokenId)}:bytes`, uploadId),
    );
    return given === 1;
  }
}
