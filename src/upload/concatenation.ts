/**
 * tus concatenation (parallel uploads), pure: what a partial and a final upload are, the rules a
 * claim on a partial obeys, and how a final's parts are cut from its partials.
 *
 * Why it is built this way: a partial upload exists — and sends its bytes — before any final
 * names it, so its bytes cannot already be parts of the final's multipart upload (S3 cannot move
 * parts between multipart uploads). Each partial is therefore its own saga that stores its bytes
 * as a temporary object under its staging prefix, holds its quota reservation, and waits to be
 * claimed by one final. The final's saga joins the partials into its own multipart upload: a
 * stretch of at least 5 MiB is one UploadPartCopy (no byte through the worker); shorter stretches
 * are read through the worker and sent as one part of at least 5 MiB (S3's rule for every part
 * but the last) — {@link planJoin}. Quota is counted once: the partials keep their reservations
 * and commit them when the final tells them it merged; the final reserves nothing.
 */
import { S3_LIMITS } from './part-plan';
import { ChunkRejection, type GatewayUploadState } from './gateway-upload';

export type { ConcatState, GatewayConcat, JoinSource } from './gateway-upload';

/** How long a claim holds when the final neither joins nor releases it (a final that was terminated). */
export const CLAIM_LEASE_MS = 24 * 60 * 60 * 1000;

/** Why a final may not claim the partial in `state` now, or undefined. Pure: the claim Update's validator. */
export function claimProblem(
  state: Pick<GatewayUploadState, 'phase' | 'outcome' | 'concat' | 'expiresAt' | 'uploadId'>,
  finalUploadId: unknown,
  now: number,
): { type: ChunkRejection; message: string } | undefined {
  const invalid = (message: string) => ({ type: ChunkRejection.InvalidChunk, message });
  if (typeof finalUploadId !== 'string' || finalUploadId.length === 0) return invalid('the final upload id must be a non-empty string');
  const concat = state.concat;
  if (concat?.kind !== 'partial')
    return invalid(`upload ${state.uploadId} is not a partial upload (created without Upload-Concat: partial)`);
  if (concat.joinedInto !== undefined)
    return invalid(`partial upload ${state.uploadId} was already joined into upload ${concat.joinedInto}`);
  if (concat.withdrawn)
    return { type: ChunkRejection.OffsetConflict, message: `partial upload ${state.uploadId} is being terminated (tus DELETE)` };
  if (state.outcome !== 'running' || state.phase !== 'await-join' || concat.stored === undefined)
    return invalid(
      `partial upload ${state.uploadId} is not finished (phase ${state.phase}, outcome ${state.outcome}); send all its bytes first`,
    );
  if (concat.claimedBy !== undefined && concat.claimedBy !== finalUploadId)
    return {
      type: ChunkRejection.OffsetConflict,
      message: `partial upload ${state.uploadId} is being joined into upload ${concat.claimedBy}`,
    };
  if (concat.claimedBy === undefined && now >= state.expiresAt)
    return {
      type: ChunkRejection.UploadExpired,
      message: `partial upload ${state.uploadId} expired at ${new Date(state.expiresAt).toISOString()}`,
    };
  return undefined;
}

/**
 * Why a tus DELETE may not terminate the partial in `state` now, or undefined. Pure: the
 * withdrawPartial Update's validator, and the gateway's check before it. A final that claimed a
 * partial copies from its stored object and, once merged, has the partial commit its reservation:
 * cancelling it then would fail the join or leave the final's bytes out of the tenant's quota.
 */
export function withdrawProblem(
  state: Pick<GatewayUploadState, 'outcome' | 'concat' | 'uploadId'>,
): { type: ChunkRejection; message: string } | undefined {
  const concat = state.concat;
  if (concat?.kind !== 'partial') return { type: ChunkRejection.InvalidChunk, message: `upload ${state.uploadId} is not a partial upload` };
  if (state.outcome !== 'running') return undefined;
  const final = concat.joinedInto ?? concat.claimedBy;
  if (final !== undefined)
    return {
      type: ChunkRejection.OffsetConflict,
      message: `partial upload ${state.uploadId} is being joined by final upload ${final}: it cannot be terminated while a final joins it`,
    };
  return undefined;
}

/** A byte range `[start, end)` of one partial (by index in the final's list). */
export interface SourceRange {
  source: number;
  start: number;
  end: number;
}

/** One part of the final: copied server-side from one range, or assembled by the worker from several. */
export type JoinPart = { kind: 'copy'; range: SourceRange } | { kind: 'assemble'; ranges: SourceRange[] };

/** Part-size rules the plan obeys (S3's by default). */
export interface JoinLimits {
  minPartSize: number;
  maxPartSize: number;
  maxParts: number;
}

/**
 * The parts of a final, in order, from its partials' sizes. Every part but the last has at least
 * `minPartSize` bytes and none more than `maxPartSize`; a partial's stretch of at least
 * `minPartSize` bytes is copied server-side (split into near-equal copies when it exceeds
 * `maxPartSize`), shorter stretches are assembled with the bytes around them into parts of at
 * least `minPartSize` (at most twice that, so the worker holds little). All-empty partials give
 * one empty assembled part (S3 needs a part to complete).
 * @throws RangeError when the parts would exceed `maxParts`
 */
export function planJoin(sizes: readonly number[], limits: JoinLimits = S3_LIMITS): JoinPart[] {
  const parts: JoinPart[] = [];
  let pending: SourceRange[] = [];
  let pendingBytes = 0;
  const flush = () => {
    parts.push({ kind: 'assemble', ranges: pending });
    pending = [];
    pendingBytes = 0;
  };
  sizes.forEach((size, source) => {
    let at = 0;
    if (pendingBytes > 0 && size > 0) {
      const take = Math.min(size, limits.minPartSize - pendingBytes);
      pending.push({ source, start: 0, end: take });
      pendingBytes += take;
      at = take;
      if (pendingBytes >= limits.minPartSize) flush();
    }
    const rest = size - at;
    if (rest >= limits.minPartSize) {
      const copies = Math.ceil(rest / limits.maxPartSize);
      const each = Math.ceil(rest / copies);
      for (let start = at; start < size; start += each)
        parts.push({ kind: 'copy', range: { source, start, end: Math.min(size, start + each) } });
    } else if (rest > 0) {
      pending.push({ source, start: at, end: size });
      pendingBytes += rest;
      if (pendingBytes >= limits.minPartSize) flush();
    }
  });
  if (pendingBytes > 0 || parts.length === 0) flush();
  if (parts.length > limits.maxParts)
    throw new RangeError(`joining these partial uploads needs ${parts.length} parts; S3 allows ${limits.maxParts}`);
  return parts;
}
