/**
 * The upload states a gateway replica last saw, so that a PATCH does not have to ask the workflow
 * where its upload stands before it reads the body.
 *
 * Invariants:
 * - The workflow's state is the truth; an entry is only a guess of it. An entry is what the
 *   workflow answered to this replica (HEAD, a record, a declared length), or, for an upload this
 *   replica created whose saga still opens it, the state expected once open (its `opening` settles
 *   with the workflow's, which then replaces it); any failure of a request on the upload forgets
 *   it, and so does an upload that stops receiving bytes.
 * - How far a guess is trusted is the store's decision (tus-store.ts): with `trusted`, only this
 *   replica changes its uploads (an in-process lock serialises their requests, so no other replica
 *   may serve them), and an entry equals the workflow's state except for what the workflow does by
 *   itself (expiry, cancellation), which its Update validator refuses; otherwise the store confirms
 *   the entry with a query that runs while the body is received, before the first byte is written.
 * - Bounded: at most `capacity` entries (each a few hundred bytes); the oldest go first.
 */
import type { GatewayUploadState } from '../upload/gateway-upload';

/** The states one replica last saw of its uploads (see the module's invariants). */
export class UploadStateCache {
  private readonly entries = new Map<string, GatewayUploadState>();
  /** Uploads this replica created whose saga still opens them: the workflow's state once open. */
  private readonly openings = new Map<string, Promise<GatewayUploadState>>();

  constructor(private readonly capacity = 10_000) {}

  /**
   * Keeps the state a new upload will have once open (`expectedOpenState`) as its guess until
   * `opened` settles: then the workflow's state replaces it (unless something newer did), or the
   * upload is forgotten when it could not open.
   */
  rememberOpening(expected: GatewayUploadState, opened: Promise<GatewayUploadState>): void {
    const key = keyOf(expected.tenant, expected.uploadId);
    this.remember(expected);
    this.openings.set(key, opened);
    opened
      .then(
        (state) => this.entries.get(key) === expected && this.remember(state),
        () => this.entries.get(key) === expected && this.entries.delete(key),
      )
      .finally(() => this.openings.get(key) === opened && this.openings.delete(key));
  }

  /** The workflow's state once open, for an upload this replica created whose saga still opens it. */
  opening(tenant: string, uploadId: string): Promise<GatewayUploadState> | undefined {
    return this.openings.get(keyOf(tenant, uploadId));
  }

  /** The last state of `uploadId` this replica saw, when it still receives bytes. */
  get(tenant: string, uploadId: string): GatewayUploadState | undefined {
    return this.entries.get(keyOf(tenant, uploadId));
  }

  /** Keeps `state` as the upload's guess, or forgets the upload when it does not receive bytes any more. */
  remember(state: GatewayUploadState): void {
    const key = keyOf(state.tenant, state.uploadId);
    this.entries.delete(key);
    const receiving =
      state.outcome === 'running' &&
      state.phase === 'receive-parts' &&
      state.mode === 'tus' &&
      // A paused upload refuses PATCHes until resumed: its state is asked again then.
      !state.pause?.paused &&
      !(state.length !== undefined && state.offset === state.length);
    if (!receiving) return;
    this.entries.set(key, state);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Forgets the upload: the next PATCH asks the workflow. */
  forget(tenant: string, uploadId: string): void {
    this.entries.delete(keyOf(tenant, uploadId));
  }
}

const keyOf = (tenant: string, uploadId: string) => `${tenant}\n${uploadId}`;

/**
 * Whether two states of one upload stand at the same place: what a PATCH writes from (offset,
 * parts, fingerprint, staged segments, length) and whether it still receives bytes.
 */
export function sameWritePosition(a: GatewayUploadState, b: GatewayUploadState): boolean {
  return (
    a.offset === b.offset &&
    a.partsCompleted === b.partsCompleted &&
    a.partsBytes === b.partsBytes &&
    a.fingerprint === b.fingerprint &&
    a.length === b.length &&
    a.phase === b.phase &&
    a.outcome === b.outcome &&
    a.multipartUploadId === b.multipartUploadId &&
    a.staged.length === b.staged.length &&
    a.staged.every((s, i) => s.start === b.staged[i]!.start && s.end === b.staged[i]!.end)
  );
}

/**
 * Whether the workflow's state once open is the one a gateway expected (`expectedOpenState`) in
 * everything a PATCH writes by: where it stands (as {@link sameWritePosition}, the multipart upload
 * id aside, which only the workflow knows), how parts are cut and checksummed, and where they go.
 */
export function openedAsExpected(opened: GatewayUploadState, expected: GatewayUploadState): boolean {
  return (
    opened.uploadId === expected.uploadId &&
    opened.multipartUploadId !== undefined &&
    sameWritePosition({ ...opened, multipartUploadId: expected.multipartUploadId }, expected) &&
    opened.partSize === expected.partSize &&
    opened.checksumAlgorithm === expected.checksumAlgorithm &&
    opened.bucket === expected.bucket &&
    opened.key === expected.key
  );
}
