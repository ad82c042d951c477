/**
 * Marks of uploads known merged, so that a read of such an upload (tus HEAD, the draft's HEAD, a
 * progress stream's first reads) is answered without a workflow query. After the merge, the saga
 * runs commit-quota and notify as local activities; a query waits while the workflow task that
 * runs them is held (a slow webhook: up to the task's heartbeat, 8 s).
 *
 * Invariants:
 * - A mark is a state the workflow answered with `merged: true` and outcome `running`. Past the
 *   merge (the pivot) only forward steps remain: the offset and length never change again and the
 *   upload no longer expires; it completes with the same offset and length. So a mark stays a
 *   truthful answer to "where does this upload stand" until the upload is deleted. Once the upload
 *   is seen completed, its mark (if it has one) is replaced by that state ({@link MergedMarks.settle}),
 *   so a read after the end learns the end (and the object) without a query either; until someone
 *   sees the end, the mark still says `running`, which a HEAD answers truthfully (the same offset,
 *   length, no expiry) and a progress stream corrects with its next query.
 * - A deletion withdraws the mark before anything is deleted ({@link MergedMarks.withdraw}), and a
 *   withdrawn mark is never set again: marks are set only where none was (`SET NX`), and the
 *   withdrawal is itself a value (a tombstone) that outlives any read that could set one. So a mark
 *   set late (by a read that raced the deletion) never brings back a deleted upload.
 * - Shared by every replica that may serve the upload: in Redis when the gateway has Redis (a
 *   replica that did not see the merge reads the mark the finishing replica set; and a DELETE on
 *   any replica withdraws it for all), in memory only when this replica is the only one.
 * - Marks lapse after {@link MERGED_MARK_TTL_MS}: then reads ask the workflow again (slower while
 *   notify is held, never wrong). The one end a mark does not learn is a workflow terminated by hand
 *   after the merge (the object stays in S3): reads answer from the mark until it lapses. Setting a mark never fails a request; reading one that cannot be
 *   read means asking the workflow; only a withdrawal must succeed (its failure fails the DELETE).
 * - What a mark holds is what a state query answers (without a pause, which a merged upload no
 *   longer has): the object's key, the client's metadata, once completed the result. No secret (a
 *   webhook's URL and secret are in the workflow's input, not its state). They are kept in plain
 *   text, so a gateway whose Temporal client has a payload codec (encryption) keeps no marks in
 *   Redis (`mergedMarksFor`); `mergedMarks: undefined` on the uploads service goes without marks.
 */
import type { Redis } from 'ioredis';
import type { GatewayUploadState } from '../upload/gateway-upload';
import { redisCall } from './redis-call';

/** How long a mark (or a withdrawal) lasts: well beyond a notify held by a slow webhook; reads ask the workflow after it. */
export const MERGED_MARK_TTL_MS = 10 * 60_000;
/**
 * At most this many marks in memory (each well under 1 KiB for tus metadata of usual size); the
 * oldest go first. A withdrawal evicted that way could let a mark set late back in, which takes
 * this many newer marks within the few seconds a read that raced the deletion is in flight.
 */
const MEMORY_CAPACITY = 10_000;
/** The value of a withdrawn mark. */
const WITHDRAWN = 'withdrawn';
/** Replaces a mark that exists and is not withdrawn (KEYS[1]) with ARGV[1], keeping its time to live. */
const SETTLE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if not current or current == ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
return 1
`;

/** Where marks of merged uploads live: Redis (every replica) or memory (one replica). */
export interface MergedMarks {
  /** Marks `state` (merged, running) unless its upload has a mark or a withdrawal already. Never throws. */
  mark(state: GatewayUploadState): Promise<void>;
  /** Replaces the upload's mark, if it has one (not withdrawn), with `state`, the upload completed. Never throws. */
  settle(state: GatewayUploadState): Promise<void>;
  /**
   * The marked state of the upload (merged and running, or completed), or undefined (none,
   * withdrawn, lapsed, or unreadable). Never throws.
   */
  read(tenant: string, uploadId: string): Promise<GatewayUploadState | undefined>;
  /**
   * Withdraws the upload's mark for good (it is being deleted): from the answer on, no replica
   * reads a mark of it.
   * @throws RedisUnavailableError when the withdrawal cannot be stored
   */
  withdraw(tenant: string, uploadId: string): Promise<void>;
}

/** Whether `state` may be marked: merged, its saga still running the steps after the merge. */
export function markable(state: GatewayUploadState): boolean {
  return state.merged === true && state.outcome === 'running';
}

/** Whether `state` may replace a mark: its upload completed. */
function settled(state: GatewayUploadState): boolean {
  return state.outcome === 'completed' && state.result !== undefined;
}

/** Whether a mark read back is one: merged and running, or completed. */
const isMark = (state: GatewayUploadState) => markable(state) || settled(state);

/** What a mark holds of a state: everything a read answers with; a pause or failure (a merged upload has neither) never. */
function markOf(state: GatewayUploadState): GatewayUploadState {
  const { pause: _pause, failure: _failure, ...marked } = state;
  return marked;
}

/** Marks in process memory: valid only when this replica is the only one serving its uploads. */
export class MemoryMergedMarks implements MergedMarks {
  private readonly entries = new Map<string, { state?: GatewayUploadState; until: number }>();

  constructor(
    private readonly ttlMs = MERGED_MARK_TTL_MS,
    private readonly capacity = MEMORY_CAPACITY,
  ) {}

  async mark(state: GatewayUploadState): Promise<void> {
    if (!markable(state)) return;
    const key = keyOf(state.tenant, state.uploadId);
    if (this.live(key)) return;
    this.put(key, { state: markOf(state), until: Date.now() + this.ttlMs });
  }

  async settle(state: GatewayUploadState): Promise<void> {
    if (!settled(state)) return;
    const key = keyOf(state.tenant, state.uploadId);
    const entry = this.live(key);
    if (entry?.state) entry.state = markOf(state);
  }

  async read(tenant: string, uploadId: string): Promise<GatewayUploadState | undefined> {
    return this.live(keyOf(tenant, uploadId))?.state;
  }

  async withdraw(tenant: string, uploadId: string): Promise<void> {
    this.put(keyOf(tenant, uploadId), { until: Date.now() + this.ttlMs });
  }

  private live(key: string) {
    const entry = this.entries.get(key);
    if (entry && entry.until <= Date.now()) this.entries.delete(key);
    return entry && entry.until > Date.now() ? entry : undefined;
  }

  private put(key: string, entry: { state?: GatewayUploadState; until: number }): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}

/** Marks in Redis (`<prefix><tenant>:<uploadId>` → the state as JSON, or `withdrawn`), seen by every replica. */
export class RedisMergedMarks implements MergedMarks {
  constructor(
    /** The gateway's connection; not closed here. */
    private readonly redis: Redis,
    private readonly options: { keyPrefix?: string; ttlMs?: number; onError?: (err: unknown) => void } = {},
  ) {}

  private keyOf(tenant: string, uploadId: string): string {
    // Tenants and upload ids contain no ':' (their patterns in uploads-service.ts): the key is unambiguous.
    return `${this.options.keyPrefix ?? 'upload-saga:merged:'}${tenant}:${uploadId}`;
  }

  async mark(state: GatewayUploadState): Promise<void> {
    if (!markable(state)) return;
    const value = JSON.stringify(markOf(state));
    await redisCall('merged mark', () => this.redis.set(this.keyOf(state.tenant, state.uploadId), value, 'PX', this.ttlMs, 'NX')).catch(
      (err: unknown) => this.options.onError?.(err),
    );
  }

  async settle(state: GatewayUploadState): Promise<void> {
    if (!settled(state)) return;
    const value = JSON.stringify(markOf(state));
    await redisCall('merged mark', () =>
      this.redis.eval(SETTLE_SCRIPT, 1, this.keyOf(state.tenant, state.uploadId), value, WITHDRAWN),
    ).catch((err: unknown) => this.options.onError?.(err));
  }

  async read(tenant: string, uploadId: string): Promise<GatewayUploadState | undefined> {
    const value = await redisCall('merged mark', () => this.redis.get(this.keyOf(tenant, uploadId))).catch((err: unknown) => {
      this.options.onError?.(err);
      return null;
    });
    if (value === null || value === WITHDRAWN) return undefined;
    let state: GatewayUploadState;
    try {
      state = JSON.parse(value) as GatewayUploadState;
    } catch (err) {
      this.options.onError?.(err);
      return undefined;
    }
    // A mark names its upload: one that does not (a key written by something else) is not used.
    return state.tenant === tenant && state.uploadId === uploadId && isMark(state) ? state : undefined;
  }

  async withdraw(tenant: string, uploadId: string): Promise<void> {
    await redisCall('merged mark', () => this.redis.set(this.keyOf(tenant, uploadId), WITHDRAWN, 'PX', this.ttlMs));
  }

  private get ttlMs(): number {
    return this.options.ttlMs ?? MERGED_MARK_TTL_MS;
  }
}

const keyOf = (tenant: string, uploadId: string) => `${tenant}\n${uploadId}`;
