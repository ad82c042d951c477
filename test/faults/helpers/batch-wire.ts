/**
 * What the S3 gate saw of a batch, for the batch scenarios' evidence: its files' PutObjects and
 * its child uploads' UploadParts, which were answered before a moment (a kill, an outage), which
 * were in flight then, and how many bytes were sent more than once.
 *
 * Why it is built this way: "no file already stored is sent again" and "bytes sent again ≤ parts
 * in flight" are claims about the wire, so they are read from the requests the gate forwarded —
 * independently of the batch's own counters.
 */
import type { GateRequest } from '../s3-gate';

/** One object write of a batch on the wire: a file's PutObject, or one part of a child upload. */
export interface WireWrite {
  /** `key` for a PutObject, `key#part` for an UploadPart. */
  readonly target: string;
  readonly request: GateRequest;
}

/** The path of a request without its query, decoded: `/bucket/key`. */
const pathOf = (request: GateRequest) => decodeURIComponent(request.path.split('?')[0]!);

/** The batch's writes under `/<bucket>/<prefix>` (its manifests, under the saga's prefix, are not among them). */
export function batchWrites(seen: readonly GateRequest[], bucket: string, prefix: string): WireWrite[] {
  const under = `/${bucket}/${prefix}`;
  return seen.flatMap((request) => {
    const where = pathOf(request);
    if (!where.startsWith(under)) return [];
    if (request.operation === 'PutObject') return [{ target: where.slice(bucket.length + 2), request }];
    if (request.operation === 'UploadPart') {
      const part = new URL(request.path, 'http://gate').searchParams.get('partNumber');
      return [{ target: `${where.slice(bucket.length + 2)}#${part}`, request }];
    }
    return [];
  });
}

/** Writes MinIO had answered with success by `at`. */
export function storedBy(writes: readonly WireWrite[], at: number): WireWrite[] {
  return writes.filter((w) => w.request.status !== undefined && w.request.status < 300 && (w.request.answeredAt ?? Infinity) <= at);
}

/** Writes that had arrived by `at` but were not answered then: in flight (or held). */
export function inFlightAt(writes: readonly WireWrite[], at: number): WireWrite[] {
  return writes.filter((w) => w.request.at <= at && (w.request.answeredAt === undefined || w.request.answeredAt > at));
}

/** Bytes sent for targets that had been sent before: every send of a target after its first. */
export function bytesSentAgain(writes: readonly WireWrite[]): number {
  const seen = new Set<string>();
  let again = 0;
  for (const w of writes) {
    if (seen.has(w.target)) again += w.request.bytes;
    seen.add(w.target);
  }
  return again;
}

/** Targets stored (answered 2xx) by `at` that were sent again afterwards. */
export function storedThenSentAgain(writes: readonly WireWrite[], at: number): string[] {
  const stored = new Set(storedBy(writes, at).map((w) => w.target));
  return [...new Set(writes.filter((w) => w.request.at > at && stored.has(w.target)).map((w) => w.target))];
}

/** The sum of the bytes of `writes`. */
export const bytesOf = (writes: readonly WireWrite[]) => writes.reduce((sum, w) => sum + w.request.bytes, 0);
