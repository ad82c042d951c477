/**
 * The gateway-upload domain, pure: what a gateway upload is (bytes sent by a browser or a
 * phone through the HTTP gateway, rather than read by a worker), its durable state, and the rules
 * every state change must obey.
 *
 * Why it is built this way: the workflow holds the durable state (offset, parts, staged tail,
 * expiry) and the gateway holds none, so every change a gateway proposes is checked against the
 * workflow's state by {@link chunkRecordProblem} — a pure function, deterministic, so it can run
 * as an Update validator inside the workflow (a rejected update leaves no trace in history) and
 * be tested on its own. Offsets are the currency: a chunk that does not start at the recorded
 * offset is rejected, which makes a PATCH retried after a gateway died harmless.
 *
 * No bytes and no per-part list live here: parts are identified by a running fingerprint over
 * their checksums (see src/s3/parts-fingerprint.ts), which verify recomputes from
 * ListParts.
 */
import type { QuotaUsage } from '../quota/ledger';
import type { SagaFailureReport } from '../saga/workflow';
import type { UploadOutcomeKind, UploadPhase, UploadResult } from './outcome';
import type { ChecksumAlgorithm } from './request';
import type { PauseExpiry, PauseState } from './pause';

/** How the bytes reach S3: through the gateway (tus), or straight from the client with presigned URLs. */
export type GatewayUploadMode = 'tus' | 'presigned';

/* tus concatenation: what an upload is in one (the rules are in concatenation.ts). */
/** What a gateway upload is in a tus concatenation, as its input carries it. */
export type GatewayConcat = { kind: 'partial' } | { kind: 'final'; partials: JoinSource[] };

/** A partial as the final joins it: its upload and workflow ids, and the stored object's key, size and ETag. */
export interface JoinSource {
  uploadId: string;
  workflowId: string;
  key: string;
  size: number;
  etag: string;
}

/** A partial's or a final's concatenation state, as the workflow reports it. */
export type ConcatState =
  | {
      kind: 'partial';
      /** Once its bytes are stored as a temporary object (phase `await-join`). */
      stored?: { size: number; etag: string };
      /** The final that claimed it, while the claim holds. */
      claimedBy?: string;
      /** The final it was joined into. */
      joinedInto?: string;
      /** A tus DELETE is terminating it: no final may claim it any more (its cancellation follows). */
      withdrawn?: true;
    }
  | { kind: 'final'; partials: string[] };

/** Failure types specific to gateway uploads (besides the upload's own, see errors.ts). */
export const GatewayUploadFailureType = {
  /** The upload was not finished before its expiry; it was compensated. */
  UploadExpired: 'UploadExpired',
  /** The parts in S3 are not the ones the client or the gateway recorded. */
  PartsMismatch: 'PartsMismatch',
  /** The parts add up to more than the tenant may upload. */
  UploadTooLarge: 'UploadTooLarge',
} as const;
export type GatewayUploadFailureType = (typeof GatewayUploadFailureType)[keyof typeof GatewayUploadFailureType];

/** Rejections of a proposed state change (Update validators); the gateway maps them to HTTP statuses. */
export const ChunkRejection = {
  /** The chunk does not start where the upload stands (409). */
  OffsetConflict: 'OffsetConflict',
  /** The upload expired (410). */
  UploadExpired: 'UploadExpired',
  /** The upload no longer receives bytes: finished, cancelled, or of the other mode (409). */
  NotReceiving: 'NotReceiving',
  /** The proposed state breaks a rule (400: a gateway bug or a forged request). */
  InvalidChunk: 'InvalidChunk',
  /** The upload is paused: nothing new starts until it is resumed (423). */
  Paused: 'UploadPaused',
} as const;
export type ChunkRejection = (typeof ChunkRejection)[keyof typeof ChunkRejection];

/** At most this many staged segments per upload; the gateway folds them into one beyond that. */
export const MAX_STAGED_SEGMENTS = 16;

/** Bytes `[start, end)` of the upload, staged as one temporary object under the staging prefix. */
export interface StagedSegment {
  start: number;
  end: number;
}

/** The key of a staged segment: derived from its byte range, so it needs no list of its own. */
export function stagedSegmentKey(stagingPrefix: string, segment: StagedSegment): string {
  return `${stagingPrefix}segment-${String(segment.start).padStart(16, '0')}-${String(segment.end).padStart(16, '0')}`;
}

/** What the workflow is asked to run: one gateway upload. Built by the gateway's uploads service. */
export interface GatewayUploadInput {
  tenant: string;
  /** The upload's id; the workflow id is `upload:<tenant>:<uploadId>`. */
  uploadId: string;
  mode: GatewayUploadMode;
  bucket: string;
  /** Always under `<tenant>/`. */
  key: string;
  /**
   * Total bytes, when known at creation. Without it, a tus upload's length is deferred (declared by
   * a later PATCH, see {@link lengthDeclarationProblem}) and the tenant's maximum is reserved until
   * then; a presigned upload reserves its verified size once the parts are verified.
   */
  length?: number;
  /** The tenant's maximum upload size: the verified size must not exceed it. */
  maxLength: number;
  filename?: string;
  contentType: string;
  /** User metadata stored with the object (`x-amz-meta-*`). */
  metadata: Record<string, string>;
  /**
   * tus: the `Upload-Metadata` header as the client sent it at creation, which HEAD echoes (the
   * spec: "MUST include the Upload-Metadata header and its value as specified by the Client").
   */
  tusMetadata?: string;
  /** Every part but the last has exactly this size (presigned: the size part URLs bind, when the length is declared). */
  partSize: number;
  /** tus: the per-part checksum S3 verifies on receipt. Presigned parts carry none. */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** Epoch ms after which an unfinished upload is compensated (a pause with expiry `stops` moves it on at resume). */
  expiresAt: number;
  /**
   * Whether the expiry clock runs or stops while paused, when the pause request does not say (the
   * gateway's `UPLOAD_SAGA_GATEWAY_PAUSE_EXPIRY` at creation).
   * @default 'runs'
   */
  pauseExpiry?: PauseExpiry;
  /**
   * The longest the upload's pauses with the expiry clock stopped last in all, in ms (the gateway's
   * `UPLOAD_SAGA_GATEWAY_MAX_PAUSE` at creation): past it the upload expires and is compensated as
   * expired. Runs before the patch `gateway-pause-bound-total` bounded each pause on its own. Unset
   * (uploads created before it existed): such a pause lasts until resumed or cancelled.
   */
  maxPauseMs?: number;
  /** Receives `upload.completed` / `upload.failed` / `upload.cancelled`. */
  webhookUrl?: string;
  /**
   * Updates one run handles before it continues as new (carrying its small state), bounding history.
   * @default 500
   */
  updatesPerRun?: number;
  /** Set when a run continues as new: what the previous runs established. */
  carried?: CarriedState;
  /** tus concatenation: a partial upload, or a final joining partials (see src/upload/concatenation.ts). */
  concat?: GatewayConcat;
}

/** The state a run hands to the next when it continues as new. */
export interface CarriedState {
  createdAt: number;
  /** The ledger's answer to reserve-space, when it ran (it runs after verify when the length was unknown). */
  reservation?: QuotaUsage;
  multipartUploadId: string;
  offset: number;
  partsCompleted: number;
  /** tus, in a run that takes parts of varying size: the bytes parts 1..partsCompleted cover (see {@link GatewayUploadState.partsBytes}). */
  partsBytes?: number;
  fingerprint: string;
  staged: StagedSegment[];
  runs: number;
  /** Presigned: the parts the client reported (see {@link GatewayUploadState.reportedParts}), when any. */
  reportedParts?: PartRanges;
  /** tus: the length a client declared after creation (deferred length); the reservation was shrunk to it. */
  declaredLength?: number;
  /** The time the upload's pauses with the expiry clock stopped have held so far, in ms (absent: none). */
  stoppedPausesMs?: number;
}

/** Phases of a gateway upload, as shown by the `UploadPhase` search attribute and queries. */
export type GatewayUploadPhase = Extract<
  UploadPhase,
  | 'reserve-space'
  | 'open-multipart'
  | 'receive-parts'
  | 'verify'
  | 'merge'
  | 'delete-staged'
  | 'store-partial'
  | 'await-join'
  | 'join-partials'
  | 'settle-partials'
  | 'commit-quota'
  | 'notify'
  | 'compensating'
  | 'done'
>;

/** The durable state of one gateway upload, as the workflow reports it (query `clientUploadState`, its wire name). */
export interface GatewayUploadState {
  tenant: string;
  uploadId: string;
  workflowId: string;
  mode: GatewayUploadMode;
  bucket: string;
  key: string;
  filename?: string;
  contentType: string;
  metadata: Record<string, string>;
  /** tus: the creation's `Upload-Metadata`, verbatim (see {@link GatewayUploadInput.tusMetadata}). */
  tusMetadata?: string;
  length?: number;
  /**
   * Bytes durably received. tus: parts completed plus staged segments. Presigned: the bytes of the
   * parts the client reported finished (each confirmed by ListParts); 0 for a client that reports none.
   */
  offset: number;
  /** Every part but the last has exactly this size (presigned: what part URLs bind when the length is declared). */
  partSize: number;
  /** tus: parts 1..partsCompleted are in S3. Presigned: how many distinct parts the client reported. */
  partsCompleted: number;
  /**
   * tus: the bytes parts 1..partsCompleted cover, present when the run takes parts of varying size
   * (patch `gateway-tail-parts`): a PATCH may fold the remainder at its end into its last part, so
   * a part may be longer than `partSize`. Absent (runs started before the patch, presigned
   * uploads): every part has `partSize` bytes, see {@link partsBytesOf}.
   */
  partsBytes?: number;
  /** Presigned: the numbers of the parts the client reported, as ranges; absent before the first report. */
  reportedParts?: PartRanges;
  /** Running fingerprint over the completed parts' checksums (tus); '' before the first part. */
  fingerprint: string;
  staged: StagedSegment[];
  checksumAlgorithm?: ChecksumAlgorithm;
  /** S3's id of the multipart upload, once opened. */
  multipartUploadId?: string;
  phase: GatewayUploadPhase;
  outcome: UploadOutcomeKind;
  createdAt: number;
  expiresAt: number;
  /** Runs so far (continue-as-new). */
  runs: number;
  /**
   * Set once the merge (the pivot) completed: the object is in S3 and no compensation removes it;
   * the steps after it (delete-staged, commit-quota, settle-partials, notify) only go forward, so
   * the upload completes (outcome `completed`) unless its workflow is terminated. Absent before,
   * for a partial (concatenation), and in states of workers of earlier versions.
   */
  merged?: true;
  /** Once completed. */
  result?: UploadResult;
  /** Once failed, compensated, expired or cancelled. */
  failure?: SagaFailureReport;
  /** tus concatenation: what this upload is in one (absent for an ordinary upload). */
  concat?: ConcatState;
  /** While paused (and after a resume until the next change): the pause (see src/upload/pause.ts). Absent for uploads never paused. */
  pause?: PauseState;
}

/**
 * What a new tus upload's workflow will answer once its multipart upload is open, except the
 * multipart upload id (and `createdAt`, the caller's clock): what a gateway writes a first PATCH
 * from while the saga still opens (UploadsService.createStarted). A guess, like every state a
 * gateway keeps: it is compared with the workflow's answer before any byte goes to S3 (see
 * `openedAsExpected` in src/gateway/tus-state-cache.ts). Mirrors the first state of `gatewayUploadWorkflow` for a run of the current
 * version (parts of varying size); a test holds the two together.
 */
export function expectedOpenState(input: GatewayUploadInput, workflowId: string, createdAt: number): GatewayUploadState {
  if (input.mode !== 'tus' || input.carried !== undefined || input.concat?.kind === 'final')
    throw new Error('expectedOpenState: only for a new tus upload that receives bytes');
  return {
    tenant: input.tenant,
    uploadId: input.uploadId,
    workflowId,
    mode: input.mode,
    bucket: input.bucket,
    key: input.key,
    ...(input.filename !== undefined ? { filename: input.filename } : {}),
    contentType: input.contentType,
    metadata: input.metadata,
    ...(input.tusMetadata !== undefined ? { tusMetadata: input.tusMetadata } : {}),
    ...(input.length !== undefined ? { length: input.length } : {}),
    offset: 0,
    partSize: input.partSize,
    partsCompleted: 0,
    partsBytes: 0,
    fingerprint: '',
    staged: [],
    ...(input.checksumAlgorithm ? { checksumAlgorithm: input.checksumAlgorithm } : {}),
    phase: 'receive-parts',
    outcome: 'running',
    createdAt,
    expiresAt: input.expiresAt,
    runs: 1,
    ...(input.concat?.kind === 'partial' ? { concat: { kind: 'partial' } } : {}),
  };
}

/**
 * A state change a tus gateway proposes after it sent bytes to S3: the upload stood at
 * `from` (as the gateway read it), and now stands at the rest. Parts are 1..partsCompleted and
 * cover bytes `[0, partsBytes)`; bytes `[partsBytes, offset)` are the staged segments, in order.
 * Without `partsBytes` (gateways from before parts of varying size) every part has `partSize` bytes.
 */
export interface ChunkRecord {
  from: { offset: number; partsCompleted: number };
  offset: number;
  partsCompleted: number;
  partsBytes?: number;
  fingerprint: string;
  staged: StagedSegment[];
}

/**
 * The bytes parts 1..partsCompleted cover: `partsBytes` when the run takes parts of varying size,
 * else partsCompleted × partSize (every part but the last of the upload has `partSize` bytes).
 */
export function partsBytesOf(state: Pick<GatewayUploadState, 'partsCompleted' | 'partSize' | 'partsBytes'>): number {
  return state.partsBytes ?? state.partsCompleted * state.partSize;
}

/**
 * Whether every byte of a tus upload is in its parts: the length reached, nothing staged, and at
 * least one part (a zero-byte upload has one empty part). Parts of equal size: exactly
 * {@link partCountOf} parts.
 */
export function tusBytesReceived(
  state: Pick<GatewayUploadState, 'length' | 'offset' | 'partsCompleted' | 'partSize' | 'partsBytes' | 'staged'>,
): boolean {
  if (state.length === undefined || state.offset !== state.length) return false;
  if (state.partsBytes === undefined) return state.partsCompleted === partCountOf(state.length, state.partSize);
  return state.partsBytes === state.length && state.partsCompleted >= 1 && state.staged.length === 0;
}

/** A part the client sent straight to S3 (presigned mode), as it reports it on completion. */
export interface GatewayPart {
  partNumber: number;
  etag: string;
}

/**
 * A part a presigned client reports finished (`POST …/:partNumber/done`), after the gateway found
 * it in ListParts with the ETag and size the client claims.
 */
export interface PartReport {
  partNumber: number;
  /** Its size as S3 lists it. */
  size: number;
}

/**
 * A set of part numbers as ascending, disjoint, non-touching ranges `[first, last]`: parts sent in
 * order (as clients do) stay one range, so the set carried across continue-as-new stays small.
 */
export type PartRanges = [first: number, last: number][];

/** Whether part `n` is in `ranges`. */
export function hasPart(ranges: PartRanges, n: number): boolean {
  return ranges.some(([first, last]) => first <= n && n <= last);
}

/** `ranges` with part `n` added, merging neighbours. Pure: `ranges` is not changed. */
export function withPart(ranges: PartRanges, n: number): PartRanges {
  const all: PartRanges = [...ranges.map(([first, last]): [number, number] => [first, last]), [n, n]];
  all.sort((a, b) => a[0] - b[0]);
  const merged: PartRanges = [];
  for (const [first, last] of all) {
    const previous = merged[merged.length - 1];
    if (previous && first <= previous[1] + 1) previous[1] = Math.max(previous[1], last);
    else merged.push([first, last]);
  }
  return merged;
}

/** S3's most parts per upload. */
const MAX_PARTS = 10_000;

/**
 * The parts a tus upload of known length will have: exact once every byte is in a part; before,
 * the parts so far and those the rest needs in parts of `partSize` (an upper bound when a PATCH
 * folds its remainder into its last part). Undefined while the length is unknown.
 */
export function tusPartsPlanned(
  state: Pick<GatewayUploadState, 'length' | 'partsCompleted' | 'partSize' | 'partsBytes'>,
): number | undefined {
  if (state.length === undefined) return undefined;
  if (state.partsBytes === undefined) return partCountOf(state.length, state.partSize);
  const rest = state.length - state.partsBytes;
  return rest > 0 ? state.partsCompleted + Math.ceil(rest / state.partSize) : Math.max(1, state.partsCompleted);
}

/** S3's smallest part but the last. */
export const MIN_PART_BYTES = 5 * 1024 ** 2;

/** Parts an upload of `length` bytes has at `partSize` (a zero-byte upload has one empty part). */
export function partCountOf(length: number, partSize: number): number {
  return Math.max(1, Math.ceil(length / partSize));
}

/** Why a tus upload takes no state change any more (ended, past receive-parts, expired), or undefined. */
function notReceivingProblem(
  state: Pick<GatewayUploadState, 'mode' | 'phase' | 'outcome' | 'expiresAt'>,
  now: number,
): { type: ChunkRejection; message: string } | undefined {
  if (state.outcome !== 'running' || state.phase !== 'receive-parts' || state.mode !== 'tus') {
    return {
      type: ChunkRejection.NotReceiving,
      message: `the upload does not receive bytes any more (phase ${state.phase}, outcome ${state.outcome})`,
    };
  }
  if (now >= state.expiresAt) {
    return { type: ChunkRejection.UploadExpired, message: `the upload expired at ${new Date(state.expiresAt).toISOString()}` };
  }
  return undefined;
}

/**
 * Why `record` cannot be applied to `state`, or undefined when it can. Pure and deterministic:
 * the workflow's Update validator. `now` is workflow time.
 */
export function chunkRecordProblem(
  state: Pick<
    GatewayUploadState,
    'mode' | 'phase' | 'outcome' | 'offset' | 'partsCompleted' | 'partsBytes' | 'fingerprint' | 'length' | 'partSize' | 'expiresAt'
  >,
  record: ChunkRecord,
  now: number,
): { type: ChunkRejection; message: string } | undefined {
  const invalid = (message: string) => ({ type: ChunkRejection.InvalidChunk, message });
  const closed = notReceivingProblem(state, now);
  if (closed) return closed;
  if (record.from.offset !== state.offset || record.from.partsCompleted !== state.partsCompleted) {
    return {
      type: ChunkRejection.OffsetConflict,
      message: `the chunk was written from offset ${record.from.offset} (${record.from.partsCompleted} parts), but the upload stands at ${state.offset} (${state.partsCompleted} parts)`,
    };
  }
  const whole = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!whole(record.offset) || !whole(record.partsCompleted)) return invalid('offset and partsCompleted must be whole numbers ≥ 0');
  if (record.offset < state.offset) return invalid(`the offset may not go back (from ${state.offset} to ${record.offset})`);
  if (record.partsCompleted < state.partsCompleted)
    return invalid(`completed parts may not go back (from ${state.partsCompleted} to ${record.partsCompleted})`);
  if (state.length !== undefined && record.offset > state.length)
    return invalid(`offset ${record.offset} is beyond the upload's length ${state.length}`);
  if (record.partsCompleted > MAX_PARTS) return invalid(`an upload has at most ${MAX_PARTS} parts`);
  if (typeof record.fingerprint !== 'string' || record.fingerprint.length > 128)
    return invalid('fingerprint must be a string of at most 128 characters');
  if ((record.partsCompleted === state.partsCompleted) !== (record.fingerprint === state.fingerprint)) {
    return invalid('the fingerprint must change exactly when parts were completed');
  }
  if (!Array.isArray(record.staged) || record.staged.length > MAX_STAGED_SEGMENTS)
    return invalid(`at most ${MAX_STAGED_SEGMENTS} staged segments`);

  if (state.partsBytes !== undefined) return varyingPartsProblem({ ...state, partsBytes: state.partsBytes }, record);

  const final = state.length !== undefined && record.offset === state.length;
  if (final) {
    const parts = partCountOf(state.length!, state.partSize);
    if (record.partsCompleted !== parts || record.staged.length > 0) {
      return invalid(`at the end of the upload all ${parts} parts must be completed and nothing staged`);
    }
    return undefined;
  }
  const partsEnd = record.partsCompleted * state.partSize;
  if (partsEnd > record.offset)
    return invalid(`${record.partsCompleted} parts of ${state.partSize} bytes end beyond the offset ${record.offset}`);
  return stagedProblem(record, partsEnd, state.partSize);
}

/** Why the staged segments of `record` do not cover `[partsEnd, offset)` with fewer bytes than a part, or undefined. */
function stagedProblem(record: ChunkRecord, partsEnd: number, partSize: number): { type: ChunkRejection; message: string } | undefined {
  const invalid = (message: string) => ({ type: ChunkRejection.InvalidChunk, message });
  const whole = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  let at = partsEnd;
  for (const segment of record.staged) {
    if (!whole(segment?.start) || !whole(segment?.end) || segment.start !== at || segment.end <= segment.start) {
      return invalid(`staged segments must be non-empty and contiguous from byte ${partsEnd}`);
    }
    at = segment.end;
  }
  if (at !== record.offset) return invalid(`staged segments end at byte ${at}, but the offset is ${record.offset}`);
  if (record.offset - partsEnd >= partSize) return invalid('staged bytes must be fewer than one part: a full part is uploaded, not staged');
  return undefined;
}

/**
 * The rules of a record in a run that takes parts of varying size (patch `gateway-tail-parts`),
 * after the checks common to both kinds of run. The parts may have any size S3 takes, as long as
 * every part but the last of the upload has at least `partSize` bytes: the upload then has at most
 * {@link partCountOf} parts, as with equal parts, and every part but the last has S3's minimum.
 * A record without `partsBytes` (an older gateway, which cuts equal parts) is read as equal parts
 * and taken only while the upload's parts are all of `partSize` bytes.
 */
function varyingPartsProblem(
  state: Pick<GatewayUploadState, 'partsCompleted' | 'fingerprint' | 'length' | 'partSize'> & { partsBytes: number },
  record: ChunkRecord,
): { type: ChunkRejection; message: string } | undefined {
  const invalid = (message: string) => ({ type: ChunkRejection.InvalidChunk, message });
  let partsBytes = record.partsBytes;
  if (partsBytes === undefined) {
    if (state.partsBytes !== state.partsCompleted * state.partSize)
      return invalid(
        `this upload has parts of varying size (${state.partsBytes} bytes in ${state.partsCompleted} parts): the record must say partsBytes`,
      );
    partsBytes = record.partsCompleted * state.partSize;
  }
  if (typeof partsBytes !== 'number' || !Number.isSafeInteger(partsBytes) || partsBytes < 0)
    return invalid('partsBytes must be a whole number ≥ 0');
  if (partsBytes > record.offset) return invalid(`the parts end at byte ${partsBytes}, beyond the offset ${record.offset}`);
  const newParts = record.partsCompleted - state.partsCompleted;
  const newBytes = partsBytes - state.partsBytes;
  if (newParts === 0 && newBytes !== 0) return invalid('the bytes in parts may change only when parts were completed');
  if (newBytes < 0) return invalid(`the bytes in parts may not go back (from ${state.partsBytes} to ${partsBytes})`);
  if (newBytes > newParts * MAX_PART_BYTES)
    return invalid(`${newParts} parts cannot hold ${newBytes} bytes: a part has at most ${MAX_PART_BYTES}`);
  const final = state.length !== undefined && record.offset === state.length;
  // Every new part but the upload's last holds at least a part size.
  const fullParts = final ? newParts - 1 : newParts;
  if (newParts > 0 && newBytes < fullParts * state.partSize)
    return invalid(`${newParts} new parts hold ${newBytes} bytes, but every part but the last needs at least ${state.partSize}`);
  if (state.length !== undefined && record.partsCompleted > partCountOf(state.length, state.partSize))
    return invalid(
      `${state.length} bytes in parts of at least ${state.partSize} are at most ${partCountOf(state.length, state.partSize)} parts`,
    );
  if (final) {
    if (partsBytes !== state.length || record.partsCompleted < 1 || record.staged.length > 0)
      return invalid('at the end of the upload every byte must be in a part and nothing staged');
    return undefined;
  }
  return stagedProblem(record, partsBytes, state.partSize);
}

/**
 * Why `report` cannot be recorded on `state`, or undefined when it can. Pure and deterministic:
 * the workflow's Update validator. A part reported again is accepted (and changes nothing).
 */
export function partReportProblem(
  state: Pick<GatewayUploadState, 'mode' | 'phase' | 'outcome' | 'length' | 'partSize' | 'expiresAt'>,
  report: PartReport,
  now: number,
): { type: ChunkRejection; message: string } | undefined {
  if (state.outcome !== 'running' || state.phase !== 'receive-parts' || state.mode !== 'presigned') {
    return {
      type: ChunkRejection.NotReceiving,
      message:
        state.mode !== 'presigned'
          ? 'a tus upload records the chunks its gateway wrote, not reported parts'
          : `the upload does not receive parts any more (phase ${state.phase}, outcome ${state.outcome})`,
    };
  }
  if (now >= state.expiresAt) {
    return { type: ChunkRejection.UploadExpired, message: `the upload expired at ${new Date(state.expiresAt).toISOString()}` };
  }
  const n = report?.partNumber;
  const partLimit = state.length !== undefined ? partCountOf(state.length, state.partSize) : MAX_PARTS;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > partLimit)
    return { type: ChunkRejection.InvalidChunk, message: `partNumber must be a whole number 1–${partLimit}, got ${String(n)}` };
  const size = report.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || size > MAX_PART_BYTES)
    return { type: ChunkRejection.InvalidChunk, message: `size must be a whole number of bytes 0–${MAX_PART_BYTES}, got ${String(size)}` };
  return undefined;
}

/** S3's largest part. */
const MAX_PART_BYTES = 5 * 1024 ** 3;

/**
 * Why a tus upload created with a deferred length cannot take `length` as its length now, or
 * undefined when it can. Pure and deterministic: the workflow's Update validator.
 * `maxLength` is the most the upload may have (the tenant's maximum).
 */
export function lengthDeclarationProblem(
  state: Pick<GatewayUploadState, 'mode' | 'phase' | 'outcome' | 'offset' | 'length' | 'partSize' | 'expiresAt'>,
  length: unknown,
  maxLength: number,
  now: number,
): { type: ChunkRejection; message: string } | undefined {
  const invalid = (message: string) => ({ type: ChunkRejection.InvalidChunk, message });
  const closed = notReceivingProblem(state, now);
  if (closed) return closed;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0)
    return invalid('Upload-Length must be a whole number of bytes ≥ 0');
  if (state.length !== undefined)
    return invalid(`the upload's length is already ${state.length} bytes; Upload-Length may only be sent while the length is deferred`);
  if (length < state.offset) return invalid(`Upload-Length ${length} is below the upload's offset ${state.offset}`);
  if (length > maxLength) return invalid(`Upload-Length ${length} exceeds the maximum upload size of ${maxLength} bytes`);
  if (partCountOf(length, state.partSize) > MAX_PARTS)
    return invalid(`Upload-Length ${length} needs more than ${MAX_PARTS} parts of ${state.partSize} bytes`);
  return undefined;
}

/** Why a presigned upload's part list cannot complete it, or undefined. Pure. */
export function gatewayPartsProblem(parts: unknown): string | undefined {
  if (!Array.isArray(parts) || parts.length === 0) return 'parts must be a non-empty list of { partNumber, etag }';
  if (parts.length > MAX_PARTS) return `at most ${MAX_PARTS} parts`;
  let previous = 0;
  for (const part of parts as Partial<GatewayPart>[]) {
    const n = part?.partNumber;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_PARTS)
      return `partNumber must be a whole number 1–${MAX_PARTS}, got ${String(n)}`;
    if (n <= previous) return 'parts must be in ascending order of partNumber, without repeats';
    if (typeof part.etag !== 'string' || part.etag.length === 0 || part.etag.length > 128)
      return `part ${n}: etag must be a non-empty string (at most 128 characters)`;
    previous = n;
  }
  return undefined;
}
