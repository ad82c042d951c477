/**
 * The uploads service: the protocol-neutral API both gateway protocols (tus, S3 presigned
 * multipart) use. Every upload is one `clientUploadWorkflow` (src/workflows/gateway-upload-workflow.ts);
 * this class only talks to Temporal, so the gateway itself keeps no state.
 *
 * CONTRACT (for protocol handlers; keep it stable):
 * - Every method takes the authenticated tenant first. An id is only ever looked up as
 *   `upload:<tenant>:<id>`, so another tenant's upload is indistinguishable from a missing one:
 *   both throw {@link UploadNotFoundError} (404). Never build workflow ids anywhere else.
 * - Failures are {@link GatewayError}s carrying the HTTP status: 400 InvalidRequestError,
 *   404 UploadNotFoundError, 409 UploadConflictError (wrong offset; upload not receiving),
 *   410 UploadGoneError (expired, cancelled, compensated), 413 UploadTooLargeError (over the
 *   tenant's maximum upload size or its quota), 422 UploadNotStoredError (verify found a mismatch),
 *   503 GatewayUnavailableError (Temporal did not answer in time). Anything else is a bug (500).
 * - `create` returns once the multipart upload is open: `state.multipartUploadId` is S3's
 *   upload id (presign UploadPart URLs with it), `state.key` the object key (always under
 *   `<tenant>/`), `state.expiresAt` the expiry (epoch ms). Space is reserved first when the
 *   length is given, and for tus without one the tenant's maximum (413 when the quota does not
 *   allow it); `declareLength` lowers that reservation to the length a later PATCH declares.
 * - `state` reports any upload of the tenant, ended ones included (`outcome` says how);
 *   `get` is for protocol requests on a live upload: it throws 410 for an upload that ended
 *   without an object.
 * - `recordChunk` and `declareLength` are tus-only (the gateway wrote bytes to S3 itself).
 *   `recordPart` and `complete` are presigned-only: `recordPart` records a part the client reports
 *   finished (confirmed by the caller with ListParts), `complete` takes the client's `{ partNumber, etag }` list; the workflow checks it against ListParts, merges,
 *   and `complete` waits (up to `waitMs`) for that, returning the final state (`result`) or
 *   throwing 422 with the failure report's message.
 * - `cancel` cancels the saga (tus DELETE, Uppy abort) and waits (up to `waitMs`) until the
 *   compensations ran: then nothing of the upload is left in S3 and its reservation is released.
 *   Cancelling a completed upload changes nothing (the object stays; after the merge nothing is undone).
 * - `pause` and `resume` send the `pause`/`resume` Updates (src/upload/pause.ts); while paused,
 *   the state carries `pause` and the protocols refuse new bytes with 423 UploadPausedError.
 *   A refusal (ended, past verify, not paused) is 409 with the workflow's reason.
 * - Calls are bounded by `callTimeoutMs`; a worker that is down yields 503, never a hung request.
 *
 * The one thing an instance remembers: the partials it saw stored (their finishing PATCH), so a
 * final naming them starts with its claims instead of reading them first. A hint only: what it
 * holds of a stored partial (key, size, ETag, expiry) no longer changes, and the claim's validator
 * in the partial's workflow decides; a final created through another replica reads them.
 *
 * With `mergedMarks`, states read or waited for with `merged: true` are also marked where every
 * replica sees them (merged-marks.ts), and settled once seen completed; {@link UploadsService.mergedState}
 * answers reads of such an upload from its mark; `deleteStored` withdraws the mark before it deletes anything.
 */
import { WIRE_NAMES } from '../upload/wire-names';
import { randomBytes } from 'node:crypto';
import {
  QueryNotRegisteredError,
  WithStartWorkflowOperation,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import {
  ChunkRejection,
  expectedOpenState,
  type ChunkRecord,
  type GatewayPart,
  type GatewayUploadInput,
  type GatewayUploadMode,
  type GatewayUploadState,
  type PartReport,
} from '../upload/gateway-upload';
import { MiB } from '../upload/part-plan';
import {
  MAX_METADATA_BYTES,
  METADATA_LIMIT_REASON,
  objectKeyProblem,
  SAGA_METADATA_PREFIX,
  uploadWorkflowId,
  type ChecksumAlgorithm,
} from '../upload/request';
import type { UploadOutcomeKind, UploadProgress, UploadResult } from '../upload/outcome';
import {
  gatewayUploadStateQuery,
  completeUpdate,
  declareLengthUpdate,
  recordChunkUpdate,
  recordPartUpdate,
  waitUntilMergedUpdate,
  waitUntilOpenUpdate,
  waitUntilStoredUpdate,
  claimPartialUpdate,
  withdrawPartialUpdate,
  releasePartialSignal,
  type GatewayUploadWorkflow,
} from '../upload/gateway-upload-messages';
import { tenantAndObjectAttributes, UploadOutcome, UploadPhase, UploadSizeBytes, UploadTenant } from '../upload/search-attributes';
import { claimProblem, withdrawProblem, type GatewayConcat, type JoinSource } from '../upload/concatenation';
import { partialObjectKeyOf } from '../upload/staging';
import { uploadDeleteWorkflowId, type DeleteResult } from '../upload/delete-request';
import { startDeleteWorkflow } from '../delete-start';
import { markable, type MergedMarks } from './merged-marks';
import { tenantSettings, type GatewayConfig } from './config';
import {
  GatewayError,
  GatewayUnavailableError,
  InvalidRequestError,
  ObjectNotDeletedError,
  UploadConflictError,
  UploadNotStoredError,
  UploadGoneError,
  UploadNotFoundError,
  UploadTooLargeError,
  UploadPausedError,
} from './errors';
import {
  DEFAULT_MAX_PAUSE_MS,
  MAX_PAUSE_REASON,
  PAUSE_REFUSED,
  pauseExpiryProblem,
  pauseUpdate,
  resumeUpdate,
  type PauseRequest,
  type PauseState,
} from '../upload/pause';

/** A creation answered once Temporal started its saga (see {@link UploadsService.createStarted}). */
export interface StartedUpload {
  /** The state the upload will have once open, without the multipart upload id. */
  state: GatewayUploadState;
  /** The workflow's state once open; rejects when the saga could not open it (413 for quota). */
  opened: Promise<GatewayUploadState>;
}

/** What a protocol asks for when a client starts an upload. */
export interface CreateUploadRequest {
  tenant: string;
  /** @default a random 32-hex-digit id */
  uploadId?: string;
  /**
   * Total bytes. A tus upload without it has a deferred length: the tenant's maximum is reserved
   * until {@link UploadsService.declareLength}; a presigned upload without it reserves after verify.
   */
  length?: number;
  /** The most this upload may have, when less than the tenant's maximum (an upload token's limit). */
  maxLength?: number;
  /** The client's file name; the default key is `<tenant>/<uploadId>/<filename>`. */
  filename?: string;
  /** @default 'application/octet-stream' (also for an invalid one) */
  contentType?: string;
  /** Stored as `x-amz-meta-*`: keys letters, digits and "-"; printable ASCII values; 2 KiB in all. */
  metadata?: Record<string, string>;
  /** tus: the `Upload-Metadata` header verbatim, echoed by HEAD. */
  tusMetadata?: string;
  mode: GatewayUploadMode;
  /** @default the gateway's `uploadExpiryMs` */
  expiresInMs?: number;
  /** Object key below the tenant's prefix (`<tenant>/`). @default `<uploadId>/<filename or "file">` */
  key?: string;
  /**
   * Presigned: every part but the last has exactly this size (what part URLs bind). tus uses the
   * gateway's part size.
   * @default 5 MiB
   */
  partSize?: number;
  /** tus concatenation: a partial upload (stored apart until a final joins it); finals are made by {@link UploadsService.createFinal}. */
  concat?: 'partial';
}

/** What a tus client asks for when it joins partial uploads (`Upload-Concat: final;…`). */
export interface CreateFinalUploadRequest extends Pick<
  CreateUploadRequest,
  'tenant' | 'uploadId' | 'filename' | 'contentType' | 'metadata' | 'tusMetadata' | 'maxLength' | 'key'
> {
  /** The partial uploads' ids, in order. */
  partials: string[];
}

/** @see UploadsService */
/** Options of {@link UploadsService}. */
export interface UploadsServiceOptions {
  /** Temporal client, with the deployment's data converter. */
  client: Client;
  /** The task queue of the upload workers. */
  taskQueue: string;
  /** The gateway settings the service applies (bucket, part size, expiry, tenant limits). */
  config: Pick<GatewayConfig, 'bucket' | 'partSize' | 'uploadExpiryMs' | 'defaults' | 'tenants' | 'pauseExpiry' | 'maxPauseMs'>;
  /**
   * Longest wait for one Temporal call (query, update); beyond it the request fails with 503.
   * @default 30000
   */
  callTimeoutMs?: number;
  /**
   * Updates one workflow run handles before continuing as new.
   * @default 500 (the workflow's default)
   */
  updatesPerRun?: number;
  /** Per-part checksum of tus parts. @default 'CRC32C' */
  checksumAlgorithm?: ChecksumAlgorithm;
  /**
   * Where a tenant's objects go: `{tenant}` is replaced by the tenant (the worker's
   * `UPLOAD_SAGA_TENANT_KEY_PREFIX` when set). Must contain `{tenant}`.
   * @default '{tenant}/'
   */
  tenantKeyPrefix?: string;
  /**
   * Set the `UploadBucket` and `UploadKey` search attributes (never encrypted: the server indexes them).
   * @default true without a payload codec, false with one
   */
  indexDestination?: boolean;
  /**
   * Where uploads known merged are marked, so that reads of them ({@link UploadsService.mergedState})
   * need no workflow query while the saga's local activities (commit-quota, notify) hold its
   * workflow task. Must be shared by every replica that serves the uploads (Redis), or in memory
   * for a single replica (see merged-marks.ts).
   * @default none: every read queries the workflow
   */
  mergedMarks?: MergedMarks;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Stored partials an instance remembers for the final that names them (a final follows its partials within moments). */
const STORED_PARTIALS_KEPT = 1024;
const CONTENT_TYPE = /^[\w.+-]+\/[\w.+-]+(\s*;.*)?$/;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** A file name reduced to something safe as the last segment of an object key. */
export function safeFileName(filename: string | undefined): string {
  const base = (filename ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base.replace(CONTROL_CHARS, '').trim().slice(0, 200);
  return !cleaned || cleaned === '.' || cleaned === '..' ? 'file' : cleaned;
}

/** Why metadata cannot be stored as S3 user metadata, or undefined. */
export function metadataProblem(metadata: Record<string, string>): string | undefined {
  let bytes = 0;
  for (const [key, value] of Object.entries(metadata)) {
    if (!/^[A-Za-z0-9-]+$/.test(key)) return `metadata key "${key}" may contain only letters, digits and "-"`;
    if (key.toLowerCase().startsWith(SAGA_METADATA_PREFIX)) return `metadata key "${key}" is reserved for the saga's own entries`;
    if (typeof value !== 'string' || !/^[\x20-\x7e]*$/.test(value)) return `metadata value of "${key}" must be printable ASCII`;
    bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  return bytes > MAX_METADATA_BYTES ? `metadata must total at most ${MAX_METADATA_BYTES} bytes (${METADATA_LIMIT_REASON})` : undefined;
}

/** What a completed upload's state query answers, from a state read while it ran and the workflow's result. */
function completedState(last: GatewayUploadState, result: UploadResult): GatewayUploadState {
  return {
    ...last,
    length: result.size,
    offset: result.size,
    partsCompleted: result.partCount,
    ...(last.partsBytes !== undefined ? { partsBytes: result.size } : {}),
    staged: [],
    phase: 'done',
    outcome: 'completed',
    result,
  };
}

/** An upload started from application code, as {@link UploadsService.applicationUpload} reads it. */
export interface ApplicationUploadState {
  progress: UploadProgress;
  /** Once completed. */
  result?: UploadResult;
  /** Once ended without an object: `<type>: <message>` of the failure. */
  error?: string;
}

/** Whether `state` (a state the caller already has, e.g. a record's answer) is of this upload. */
function isUpload(state: GatewayUploadState | undefined, tenant: string, uploadId: string): state is GatewayUploadState {
  return state?.tenant === tenant && state.uploadId === uploadId;
}

/** The protocol-neutral uploads API over Temporal: create, read, record, complete and cancel gateway uploads (see the contract above). */
export class UploadsService {
  private readonly client: Client;
  private readonly options: UploadsServiceOptions;
  private readonly callTimeoutMs: number;

  constructor(options: UploadsServiceOptions) {
    this.client = options.client;
    this.options = options;
    this.callTimeoutMs = options.callTimeoutMs ?? 30_000;
    const prefix = options.tenantKeyPrefix ?? '{tenant}/';
    if (!prefix.includes('{tenant}')) throw new TypeError(`tenantKeyPrefix must contain "{tenant}", got ${JSON.stringify(prefix)}`);
    this.tenantKeyPrefix = prefix;
    this.indexDestination = options.indexDestination ?? this.client.options.loadedDataConverter.payloadCodecs.length === 0;
    this.mergedMarks = options.mergedMarks;
  }

  private readonly mergedMarks: MergedMarks | undefined;

  private readonly tenantKeyPrefix: string;
  private readonly indexDestination: boolean;
  private readonly observers = new Set<(state: GatewayUploadState) => void>();
  /** Partials this instance saw stored, by `<tenant>/<id>` (oldest first): see the module comment. */
  private readonly storedPartials = new Map<string, GatewayUploadState>();

  /**
   * Calls `observer` with the state after every change this instance makes or waits for (create,
   * recordChunk, and the end of an upload seen by `waitForEnd`, hence by complete and cancel): how
   * the progress stream learns of them (src/gateway/progress.ts). An observer must not throw or
   * block; returns the function that removes it.
   */
  observe(observer: (state: GatewayUploadState) => void): () => void {
    this.observers.add(observer);
    return () => void this.observers.delete(observer);
  }

  private changed(state: GatewayUploadState): GatewayUploadState {
    for (const observer of this.observers) {
      try {
        observer(state);
      } catch {
        // an observer's failure is never the request's
      }
    }
    return state;
  }

  /** The key prefix every object of `tenant` has. */
  keyPrefixOf(tenant: string): string {
    return this.tenantKeyPrefix.replaceAll('{tenant}', tenant);
  }

  /**
   * Starts the upload's saga and returns once its multipart upload is open.
   * @throws InvalidRequestError, UploadTooLargeError (size or quota), UploadConflictError (id taken)
   */
  async create(request: CreateUploadRequest): Promise<GatewayUploadState> {
    return this.start(request, request.concat === 'partial' ? { kind: 'partial' } : undefined);
  }

  /**
   * Starts the upload's saga and returns as soon as Temporal has started it, before the saga
   * reserved space and opened the multipart upload (a tus creation answers then, and its first
   * PATCH receives bytes while the saga opens). `state` is the state the upload will have once
   * opened, without the multipart upload id; `opened` settles with the workflow's state once it
   * is open, or rejects as {@link create} would have: a refusal for quota (413) comes only there.
   * @throws InvalidRequestError, UploadTooLargeError (size), UploadConflictError (id taken)
   */
  async createStarted(request: CreateUploadRequest): Promise<StartedUpload> {
    const prepared = this.prepare(request, request.concat === 'partial' ? { kind: 'partial' } : undefined);
    const { startWorkflowOperation, workflowId, input } = prepared;
    const createdAt = Date.now();
    let handle: WorkflowHandle<GatewayUploadWorkflow>;
    try {
      handle = await this.bounded(() =>
        this.client.workflow.start<GatewayUploadWorkflow>(WIRE_NAMES.gatewayUploadWorkflow, startWorkflowOperation.options),
      );
    } catch (err) {
      throw this.translate(err, input.uploadId);
    }
    const opened = (async () => {
      let state: GatewayUploadState;
      try {
        state = await this.bounded(() => handle.executeUpdate(waitUntilOpenUpdate));
      } catch (err) {
        throw this.translate(err, input.uploadId);
      }
      return this.changed(prepared.refusedOrOpen(state));
    })();
    // The caller may drop it (the client never sent a PATCH): never an unhandled rejection.
    opened.catch(() => undefined);
    return { state: expectedOpenState(input, workflowId, createdAt), opened };
  }

  private async start(request: Omit<CreateUploadRequest, 'concat'>, concat: GatewayConcat | undefined): Promise<GatewayUploadState> {
    const prepared = this.prepare(request, concat);
    const { startWorkflowOperation, input } = prepared;
    let state: GatewayUploadState;
    try {
      state = await this.bounded(() => this.client.workflow.executeUpdateWithStart(waitUntilOpenUpdate, { startWorkflowOperation }));
    } catch (err) {
      throw this.translate(err, input.uploadId);
    }
    return this.changed(prepared.refusedOrOpen(state));
  }

  /** Checks a creation and builds its workflow's input and start; throws what a creation is refused with before it starts. */
  private prepare(request: Omit<CreateUploadRequest, 'concat'>, concat: GatewayConcat | undefined) {
    const { tenant, mode } = request;
    if (!ID_PATTERN.test(tenant) || tenant.length > 63) throw new InvalidRequestError(`tenant "${tenant}" is not a valid tenant name`);
    const uploadId = request.uploadId ?? randomBytes(16).toString('hex');
    if (!ID_PATTERN.test(uploadId)) {
      throw new InvalidRequestError(
        'upload id may contain only letters, digits, ".", "_" and "-", starting with a letter or digit, at most 128 characters',
      );
    }
    const limits = tenantSettings(this.options.config, tenant);
    if (request.length !== undefined) {
      if (!Number.isSafeInteger(request.length) || request.length < 0)
        throw new InvalidRequestError(`length must be a whole number of bytes ≥ 0, got ${request.length}`);
      if (request.length > limits.maxUploadBytes) {
        throw new UploadTooLargeError(
          `${request.length} bytes exceed the maximum upload size of tenant ${tenant}: ${limits.maxUploadBytes} bytes`,
        );
      }
    }
    const maxLength = Math.min(limits.maxUploadBytes, request.maxLength ?? Infinity);
    const relativeKey = request.key ?? `${uploadId}/${safeFileName(request.filename)}`;
    // A partial's bytes are kept inside its staging prefix until a final joins them.
    const key = concat?.kind === 'partial' ? partialObjectKeyOf(tenant, uploadId) : `${this.keyPrefixOf(tenant)}${relativeKey}`;
    const keyProblem = objectKeyProblem(relativeKey) ?? (concat?.kind === 'partial' ? undefined : objectKeyProblem(key));
    if (keyProblem) throw new InvalidRequestError(`object key ${JSON.stringify(relativeKey)}: ${keyProblem}`);
    const metadata = request.metadata ?? {};
    const problem = metadataProblem(metadata);
    if (problem) throw new InvalidRequestError(problem);
    const contentType =
      request.contentType && CONTENT_TYPE.test(request.contentType) && request.contentType.length <= 255
        ? request.contentType
        : 'application/octet-stream';
    const expiresInMs = request.expiresInMs ?? this.options.config.uploadExpiryMs;
    if (!Number.isSafeInteger(expiresInMs) || expiresInMs <= 0)
      throw new InvalidRequestError(`expiresInMs must be a positive number of milliseconds, got ${expiresInMs}`);

    const { bucket, partSize } = this.options.config;
    const input: GatewayUploadInput = {
      tenant,
      uploadId,
      mode,
      bucket,
      key,
      ...(request.length !== undefined ? { length: request.length } : {}),
      maxLength,
      ...(request.filename ? { filename: request.filename } : {}),
      contentType,
      metadata,
      ...(request.tusMetadata !== undefined ? { tusMetadata: request.tusMetadata } : {}),
      partSize: mode === 'tus' ? partSize : (request.partSize ?? 5 * MiB),
      // A final's parts are copied server-side, which S3 stores refuse into an upload with a checksum algorithm.
      ...(mode === 'tus' && concat?.kind !== 'final' ? { checksumAlgorithm: this.options.checksumAlgorithm ?? 'CRC32C' } : {}),
      expiresAt: Date.now() + expiresInMs,
      ...(this.options.config.pauseExpiry ? { pauseExpiry: this.options.config.pauseExpiry } : {}),
      maxPauseMs: this.options.config.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS,
      ...(limits.webhookUrl ? { webhookUrl: limits.webhookUrl } : {}),
      ...(this.options.updatesPerRun ? { updatesPerRun: this.options.updatesPerRun } : {}),
      ...(concat ? { concat } : {}),
    };
    const workflowId = uploadWorkflowId(tenant, uploadId);
    const startWorkflowOperation = new WithStartWorkflowOperation<GatewayUploadWorkflow>(WIRE_NAMES.gatewayUploadWorkflow, {
      workflowId,
      taskQueue: this.options.taskQueue,
      args: [input],
      // An upload id is used once: never attach to or replace another upload.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      staticSummary: `gateway upload (${mode}) → s3://${bucket}/${key} (tenant ${tenant})`,
      staticDetails: [
        `**mode** ${mode} · **tenant** ${tenant} · **upload id** ${uploadId}`,
        `**destination** s3://${bucket}/${key}`,
        `**length** ${request.length ?? 'unknown until complete'} · **expires** ${new Date(input.expiresAt).toISOString()}`,
      ].join('\n\n'),
      memo: { destination: `s3://${bucket}/${key}`, mode },
      typedSearchAttributes: [
        ...tenantAndObjectAttributes(tenant, bucket, key, this.indexDestination),
        ...(request.length !== undefined ? [{ key: UploadSizeBytes, value: request.length }] : []),
        {
          key: UploadPhase,
          value: concat?.kind !== 'final' && (request.length !== undefined || mode === 'tus') ? 'reserve-space' : 'open-multipart',
        },
        { key: UploadOutcome, value: 'running' satisfies UploadOutcomeKind },
      ],
    });
    /** The workflow's answer once open, or the refusal it stands for. */
    const refusedOrOpen = (state: GatewayUploadState): GatewayUploadState => {
      if (state.outcome === 'running') return state;
      const cause = state.failure?.cause;
      if (cause?.type === 'QuotaExceeded') {
        const deferred =
          mode === 'tus' && request.length === undefined
            ? ` (an upload without a length reserves the maximum upload size, ${maxLength} bytes, until its length is declared; give Upload-Length if it is known)`
            : '';
        throw new UploadTooLargeError(`tenant ${tenant} has not enough quota left: ${cause.message}${deferred}`);
      }
      throw new UploadNotStoredError(`the upload could not start: ${cause ? `${cause.type}: ${cause.message}` : state.outcome}`);
    };
    return { input, workflowId, startWorkflowOperation, refusedOrOpen };
  }

  /**
   * tus concatenation: joins finished partial uploads of the tenant into one final upload. Each
   * partial is checked (the tenant's, a partial, stored, not claimed by another final, named once)
   * and then claimed with an Update before the final's saga starts; a refusal records nothing,
   * and claims taken before a later refusal are released. Returns once the final's multipart
   * upload is open; the saga then joins, verifies and merges (wait with {@link waitUntilMerged}).
   * @throws InvalidRequestError (400: not a partial, not finished, named twice, already joined),
   *   UploadNotFoundError (404), UploadConflictError (409: claimed by another final),
   *   UploadGoneError (410: expired), UploadTooLargeError (413: over the maximum upload size)
   */
  async createFinal(request: CreateFinalUploadRequest): Promise<GatewayUploadState> {
    const { tenant, partials } = request;
    if (partials.length === 0) throw new InvalidRequestError('Upload-Concat: final needs the URL of at least one partial upload');
    const twice = partials.find((id, i) => partials.indexOf(id) !== i);
    if (twice !== undefined)
      throw new InvalidRequestError(`partial upload ${twice} is named twice in Upload-Concat; name each partial once`);
    const uploadId = request.uploadId ?? randomBytes(16).toString('hex');
    // The partials are read, and then claimed, all at once: a final's creation costs two round trips, not two per
    // partial — one when this instance saw them stored (their finishing PATCHes came here, as a client's usually do).
    const remembered = partials.map((id) => this.storedPartial(tenant, id));
    const read = await Promise.allSettled(partials.map((id, i) => remembered[i] ?? this.partialState(tenant, id)));
    const states = read.map((outcome) => {
      if (outcome.status === 'fulfilled') return outcome.value;
      throw outcome.reason;
    });
    const sources: JoinSource[] = states.map((state) => {
      const problem = claimProblem(state, uploadId, Date.now());
      if (problem) throw this.rejection(problem, state.uploadId);
      return { uploadId: state.uploadId, workflowId: state.workflowId, key: state.key, ...storedPartial(state) };
    });
    const length = sources.reduce((sum, p) => sum + p.size, 0);
    const maxLength = Math.min(tenantSettings(this.options.config, tenant).maxUploadBytes, request.maxLength ?? Infinity);
    if (length > maxLength)
      throw new UploadTooLargeError(`the partial uploads add up to ${length} bytes, over the maximum upload size of ${maxLength} bytes`);
    const claimed: string[] = [];
    let starting = false;
    try {
      const claims = await Promise.allSettled(
        sources.map(async (source, i) => {
          try {
            await this.update(tenant, source.uploadId, (handle) =>
              handle.executeUpdate(claimPartialUpdate, { args: [{ finalUploadId: uploadId }] }),
            );
          } catch (err) {
            // A remembered partial may have moved on since it was stored (joined or ended through another
            // replica): the refusal says what it is now, as it would had it been read.
            if (!remembered[i] || err instanceof GatewayUnavailableError) throw err;
            const now = await this.partialState(tenant, source.uploadId);
            const problem = claimProblem(now, uploadId, Date.now());
            throw problem ? this.rejection(problem, now.uploadId) : err;
          }
          claimed.push(source.uploadId);
        }),
      );
      const refused = claims.find((claim) => claim.status === 'rejected');
      if (refused) throw refused.reason;
      const { partials: _ids, ...rest } = request;
      starting = true;
      const started = await this.start({ ...rest, uploadId, length, mode: 'tus' }, { kind: 'final', partials: sources });
      for (const id of partials) this.storedPartials.delete(`${tenant}/${id}`);
      return started;
    } catch (err) {
      // A start that may have happened (Temporal did not answer in time) leaves the claims to the final's saga.
      const notStarted = !starting || err instanceof InvalidRequestError || err instanceof UploadConflictError;
      if (notStarted)
        await Promise.allSettled(
          claimed.map((id) => this.bounded(() => this.handle(tenant, id).signal(releasePartialSignal, { finalUploadId: uploadId }))),
        );
      throw err;
    }
  }

  /**
   * Any upload of the tenant, ended ones included.
   * @throws UploadNotFoundError for unknown ids and other tenants' uploads
   */
  async state(tenant: string, uploadId: string): Promise<GatewayUploadState> {
    if (!ID_PATTERN.test(uploadId)) throw new UploadNotFoundError(uploadId);
    let state: GatewayUploadState;
    try {
      state = await this.bounded(() => this.handle(tenant, uploadId).query(gatewayUploadStateQuery));
    } catch (err) {
      throw this.translate(err, uploadId);
    }
    // A replica that learns the merge from the workflow marks it too (never over a withdrawal), and one that learns the end settles the mark.
    if (this.mergedMarks && markable(state)) await this.mergedMarks.mark(state);
    else if (this.mergedMarks && state.outcome === 'completed') await this.mergedMarks.settle(state);
    return state;
  }

  /**
   * The upload's state as marked when it was known merged (its saga running the steps after the
   * merge, or completed once seen completed), without asking the workflow; undefined when it has
   * no mark (then read {@link state} or {@link get}). A marked state is as true as the workflow's
   * for a HEAD: past the merge its offset and length no longer change and it no longer expires; a
   * deletion withdraws the mark first (see merged-marks.ts). A mark may still say `running` after
   * the end (nobody saw the end yet): a reader that must learn the end asks the workflow too. Not
   * for deciding a state change: those go to the workflow.
   */
  async mergedState(tenant: string, uploadId: string): Promise<GatewayUploadState | undefined> {
    if (!this.mergedMarks || !ID_PATTERN.test(uploadId)) return undefined;
    return this.mergedMarks.read(tenant, uploadId);
  }

  /**
   * An upload started from application code (UploadClient, not a gateway), for progress streams:
   * its `progress` query and, once it ended, its result or the failure's message. The workflow id
   * names the tenant and its `UploadTenant` search attribute must agree, so another tenant's
   * upload (or a workflow started under a crafted id) looks missing.
   * @throws UploadNotFoundError for unknown ids, other tenants' uploads and gateway uploads
   */
  async applicationUpload(tenant: string, uploadId: string): Promise<ApplicationUploadState> {
    if (!ID_PATTERN.test(uploadId)) throw new UploadNotFoundError(uploadId);
    const handle = this.client.workflow.getHandle(uploadWorkflowId(tenant, uploadId));
    try {
      const description = await this.bounded(() => handle.describe());
      if (description.typedSearchAttributes.get(UploadTenant) !== tenant) throw new UploadNotFoundError(uploadId);
      const progress = await this.bounded(() => handle.query<UploadProgress>('progress'));
      if (progress.outcome === 'running') return { progress };
      try {
        return { progress, result: (await this.bounded(() => handle.result())) as UploadResult };
      } catch (err) {
        const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
        const type = cause instanceof ApplicationFailure ? (cause.type ?? cause.name) : cause?.name;
        return { progress, error: cause ? `${type}: ${cause.message}` : err instanceof Error ? err.message : String(err) };
      }
    } catch (err) {
      throw this.translate(err, uploadId);
    }
  }

  /**
   * A live or completed upload, for protocol requests.
   * @throws UploadNotFoundError, UploadGoneError (expired, cancelled, compensated, failed)
   */
  async get(tenant: string, uploadId: string): Promise<GatewayUploadState> {
    const state = await this.state(tenant, uploadId);
    if (state.outcome !== 'running' && state.outcome !== 'completed') {
      throw new UploadGoneError(
        uploadId,
        state.outcome,
        state.failure ? `${state.failure.cause.type}: ${state.failure.cause.message}` : undefined,
      );
    }
    if (state.outcome === 'completed' && (await this.terminated(tenant, uploadId))) throw new UploadGoneError(uploadId, 'terminated');
    return state;
  }

  /**
   * tus termination of a finished upload: deletes the object it stored through the delete saga
   * (which gives its bytes back to the tenant's quota) and waits up to `waitMs` for it. Only this
   * upload's object goes: a later upload's object at the same key stays (the saga's `uploadId` check).
   * @throws UploadConflictError (409) for an upload that has not completed, RedisUnavailableError
   *   (503) when its merged mark cannot be withdrawn (nothing is deleted then)
   */
  async deleteStored(tenant: string, uploadId: string, options: { waitMs?: number } = {}): Promise<DeleteResult> {
    // No read is answered from a mark of this upload any more (RedisUnavailableError before anything is deleted).
    await this.mergedMarks?.withdraw(tenant, uploadId);
    const state = await this.state(tenant, uploadId);
    if (state.outcome !== 'completed')
      throw new UploadConflictError(`upload ${uploadId} has not completed (${state.outcome})`, state.offset);
    const request = { tenant, bucket: state.bucket, key: state.key, uploadId };
    try {
      const handle = await this.bounded(() =>
        startDeleteWorkflow(this.client, request, {
          taskQueue: this.options.taskQueue,
          indexDestination: this.indexDestination,
          workflowId: uploadDeleteWorkflowId(tenant, uploadId),
        }),
      );
      return await this.client.withDeadline(Date.now() + (options.waitMs ?? 30_000), () => handle.result());
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        throw new ObjectNotDeletedError(
          `deleting s3://${state.bucket}/${state.key} of upload ${uploadId} failed: ${err.cause?.message ?? err.message}`,
          {
            cause: err,
          },
        );
      }
      throw this.translate(err, uploadId);
    }
  }

  /** Whether tus termination deleted this finished upload's object (its delete saga completed). */
  private async terminated(tenant: string, uploadId: string): Promise<boolean> {
    try {
      const description = await this.bounded(() => this.client.workflow.getHandle(uploadDeleteWorkflowId(tenant, uploadId)).describe());
      return description.status.name === 'COMPLETED';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw this.translate(err, uploadId);
    }
  }

  /**
   * tus: records bytes the gateway wrote to S3. Accepted only if `record.from` is where the upload stands.
   * @throws UploadConflictError (409: offset moved, not receiving), UploadGoneError (410), UploadNotFoundError
   */
  async recordChunk(tenant: string, uploadId: string, record: ChunkRecord): Promise<GatewayUploadState> {
    return this.changed(await this.update(tenant, uploadId, (handle) => handle.executeUpdate(recordChunkUpdate, { args: [record] })));
  }

  /**
   * Presigned: records a part the client reports finished. The caller confirms it with ListParts
   * first; reporting a part again changes nothing.
   * @throws UploadConflictError (409: not receiving), UploadGoneError (410), InvalidRequestError (part outside the length), UploadNotFoundError
   */
  async recordPart(tenant: string, uploadId: string, report: PartReport): Promise<GatewayUploadState> {
    return this.changed(await this.update(tenant, uploadId, (handle) => handle.executeUpdate(recordPartUpdate, { args: [report] })));
  }

  /**
   * tus, deferred length: declares the upload's length (a PATCH's `Upload-Length`); returns once
   * the reservation was lowered to it.
   * @throws InvalidRequestError (400: known already, below the offset, over the maximum), UploadConflictError, UploadGoneError
   */
  async declareLength(tenant: string, uploadId: string, length: number): Promise<GatewayUploadState> {
    return this.changed(await this.update(tenant, uploadId, (handle) => handle.executeUpdate(declareLengthUpdate, { args: [{ length }] })));
  }

  /**
   * Presigned: the client sent its parts; verify them against ListParts and merge. Waits up to
   * `waitMs` for the outcome and returns the final state (`result` set), or the running state if
   * it takes longer.
   * @throws UploadNotStoredError (422) when the saga ended without an object, UploadConflictError, UploadGoneError
   */
  async complete(tenant: string, uploadId: string, parts: GatewayPart[], options: { waitMs?: number } = {}): Promise<GatewayUploadState> {
    try {
      await this.update(tenant, uploadId, (handle) => handle.executeUpdate(completeUpdate, { args: [{ parts }] }));
    } catch (err) {
      // A complete sent again after its answer was lost (a replica died, a timeout) finds the saga
      // past receiving parts: it is answered as the first would have been, with the outcome.
      if (!(err instanceof UploadConflictError)) throw err;
      const current = await this.state(tenant, uploadId);
      if (current.mode !== 'presigned' || (current.outcome === 'running' && current.phase === 'receive-parts')) throw err;
    }
    const state = await this.waitForEnd(tenant, uploadId, options.waitMs ?? 60_000);
    if (state.outcome !== 'running' && state.outcome !== 'completed') {
      throw new UploadNotStoredError(
        state.failure ? `${state.failure.cause.type}: ${state.failure.cause.message}` : `the upload ended ${state.outcome}`,
      );
    }
    return state;
  }

  /**
   * Pauses the upload: from the answer on, its state carries `pause` and the gateway refuses new
   * PATCHes, part URLs, part reports and completes (423) until {@link resume}; its reservation and
   * the bytes it has stay. `expiry` defaults to the gateway's `pauseExpiry`. Pausing a paused upload
   * changes nothing. Returns the state after the pause.
   * @throws InvalidRequestError (400: reason or expiry malformed), UploadNotFoundError (404),
   *   UploadConflictError (409: ended, or past its point of no return, with the reason)
   */
  async pause(tenant: string, uploadId: string, request: PauseRequest = {}): Promise<GatewayUploadState> {
    const reason: unknown = request.reason;
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > MAX_PAUSE_REASON))
      throw new InvalidRequestError(`reason must be a string of at most ${MAX_PAUSE_REASON} characters`);
    const expiryProblem = pauseExpiryProblem(request.expiry);
    if (expiryProblem) throw new InvalidRequestError(expiryProblem);
    const expiry = request.expiry ?? this.options.config.pauseExpiry;
    await this.pauseOrResume(tenant, uploadId, 'pause', (handle) =>
      handle.executeUpdate(pauseUpdate, { args: [{ ...(reason ? { reason: reason as string } : {}), ...(expiry ? { expiry } : {}) }] }),
    );
    return this.changed(await this.state(tenant, uploadId));
  }

  /**
   * Resumes a paused upload: the gateway accepts its bytes again (a stopped expiry clock moved its
   * expiry on). Returns the state after the resume.
   * @throws UploadNotFoundError (404), UploadConflictError (409: not paused, or ended)
   */
  async resume(tenant: string, uploadId: string): Promise<GatewayUploadState> {
    await this.pauseOrResume(tenant, uploadId, 'resume', (handle) => handle.executeUpdate(resumeUpdate, { args: [] }));
    return this.changed(await this.state(tenant, uploadId));
  }

  private async pauseOrResume(
    tenant: string,
    uploadId: string,
    what: 'pause' | 'resume',
    send: (handle: WorkflowHandle<GatewayUploadWorkflow>) => Promise<PauseState>,
  ): Promise<PauseState> {
    // Read first: an unknown id or another tenant's upload is a 404, an ended one a 409 that says how it ended.
    const state = await this.state(tenant, uploadId);
    if (state.outcome !== 'running')
      throw new UploadConflictError(`cannot ${what} upload ${uploadId}: it has ended (${state.outcome})`, state.offset);
    try {
      return await this.bounded(() => send(this.handle(tenant, uploadId)));
    } catch (err) {
      const cause = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? err.cause : undefined;
      if (cause?.type === PAUSE_REFUSED) throw new UploadConflictError(cause.message, state.offset);
      const translated = this.translate(err, uploadId);
      if (translated instanceof GatewayError) throw translated;
      // The run ended (or handed over) under the update: the state says which.
      const after = await this.state(tenant, uploadId);
      throw new UploadConflictError(
        `cannot ${what} upload ${uploadId}: it is in phase ${after.phase}, outcome ${after.outcome}`,
        after.offset,
      );
    }
  }

  /**
   * Cancels the upload's saga and waits (up to `waitMs`) until it compensated. A completed upload
   * stays completed. Returns the state afterwards.
   * @throws UploadNotFoundError
   */
  async cancel(tenant: string, uploadId: string, options: { waitMs?: number } = {}): Promise<GatewayUploadState> {
    this.storedPartials.delete(`${tenant}/${uploadId}`);
    const state = await this.state(tenant, uploadId);
    if (state.outcome !== 'running') return state;
    try {
      await this.bounded(() => this.handle(tenant, uploadId).cancel());
    } catch (err) {
      throw this.translate(err, uploadId);
    }
    return this.waitForEnd(tenant, uploadId, options.waitMs ?? 30_000);
  }

  /**
   * tus termination of a running partial, before its {@link cancel}: a partial a final claimed or
   * joined is refused (409) and nothing changes; otherwise no final may claim it from now on (the
   * workflow's `withdrawPartial` Update, whose validator decides against the claims it serialises
   * with), so the cancellation that follows cannot undo bytes a final joins. A worker of an earlier
   * version, which does not know the Update, or a run that ended under it leave the cancellation
   * to decide, as before the Update existed.
   * @throws UploadConflictError (409: claimed or joined by a final), UploadNotFoundError
   */
  async withdrawPartial(tenant: string, uploadId: string, state: GatewayUploadState): Promise<void> {
    this.storedPartials.delete(`${tenant}/${uploadId}`);
    const problem = withdrawProblem(state);
    if (problem) throw this.rejection(problem, uploadId);
    try {
      await this.bounded(() => this.handle(tenant, uploadId).executeUpdate(withdrawPartialUpdate));
    } catch (err) {
      const rejected = this.updateRejection(err, uploadId);
      if (rejected) throw rejected;
      const translated = this.translate(err, uploadId);
      if (translated instanceof GatewayUnavailableError || translated instanceof UploadNotFoundError) throw translated;
    }
  }

  /**
   * tus concatenation: waits up to `timeoutMs` until a partial upload stored its bytes (phase
   * `await-join`, where it waits for a final) or ended, then returns its state. A partial's
   * workflow does not end when its last byte arrives, so its finishing PATCH waits for this instead.
   * When `last` (the answer of the record that brought the last byte) already says stored, no
   * update is sent.
   */
  async waitUntilStored(tenant: string, uploadId: string, timeoutMs: number, last?: GatewayUploadState): Promise<GatewayUploadState> {
    const deadline = Date.now() + timeoutMs;
    const storedOrEnded = (state: GatewayUploadState) => state.phase === 'await-join' || state.outcome !== 'running';
    // The finishing record already answered stored (patch gateway-local-verify-merge).
    if (isUpload(last, tenant, uploadId) && last.phase === 'await-join' && last.outcome === 'running')
      return this.changed(this.rememberStored(last));
    try {
      // The workflow answers the moment the partial is stored: no polling on the way.
      const state = await this.client.withDeadline(deadline, () => this.handle(tenant, uploadId).executeUpdate(waitUntilStoredUpdate));
      if (storedOrEnded(state)) return this.changed(this.rememberStored(state));
    } catch {
      // Not answered in time, the run ended or handed over under it, or a worker without the update: read the state instead.
    }
    for (;;) {
      const state = await this.state(tenant, uploadId);
      if (storedOrEnded(state) || Date.now() >= deadline) return this.changed(this.rememberStored(state));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /**
   * tus: waits up to `timeoutMs` until the upload's object is merged (the saga's pivot: from then
   * on the upload completes forward, state `merged`) or the upload ended, then returns its state.
   * What a finishing request and a concatenation final's creation answer on: a client told "done"
   * finds the object in S3 while the steps after the merge (delete-staged or settle-partials,
   * commit-quota, notify) still run. A worker that does not know the update (an
   * earlier version during a rolling deploy), a run that ended or handed over under it, or a
   * state without `merged`: the wait is {@link waitForEnd}'s, as before the update existed. Once
   * answered merged, the end is still waited for in the background (within the same `timeoutMs`),
   * so observers (the progress stream) learn it as promptly as before. When `last` (the answer of
   * the record that brought the last byte) already says merged, no update is sent.
   */
  async waitUntilMerged(tenant: string, uploadId: string, timeoutMs: number, last?: GatewayUploadState): Promise<GatewayUploadState> {
    const deadline = Date.now() + timeoutMs;
    // The finishing record already answered merged (patch gateway-local-verify-merge): no update to wait for.
    let state: GatewayUploadState | undefined =
      isUpload(last, tenant, uploadId) && last.merged === true && last.outcome === 'running' ? last : undefined;
    try {
      state ??= await this.client.withDeadline(deadline, () => this.handle(tenant, uploadId).executeUpdate(waitUntilMergedUpdate));
    } catch {
      // Unknown to the worker, the run ended or handed over under it, or not answered in time: wait for the end.
    }
    if (state && state.outcome !== 'running') return this.changed(state);
    if (state?.merged) {
      // Marked before the answer: a read on any replica right after it finds the mark.
      await this.mergedMarks?.mark(state);
      void this.waitForEnd(tenant, uploadId, Math.max(0, deadline - Date.now()), state).catch(() => undefined);
      return this.changed(state);
    }
    return this.waitForEnd(tenant, uploadId, Math.max(0, deadline - Date.now()), last);
  }

  /**
   * Waits up to `timeoutMs` for the upload's workflow to end, then returns its state. With `last`
   * (a state of this upload the caller read while it ran), a completed upload's state is `last`
   * with the workflow's result, without a query: a query on a closed workflow makes a worker
   * replay its whole history. Failures and timeouts are always read with a query.
   */
  async waitForEnd(tenant: string, uploadId: string, timeoutMs: number, last?: GatewayUploadState): Promise<GatewayUploadState> {
    const handle = this.handle(tenant, uploadId);
    let result: UploadResult | undefined;
    try {
      result = await this.client.withDeadline(Date.now() + timeoutMs, () => handle.result());
    } catch {
      // Failed, cancelled, or still running at the deadline: the state says which.
    }
    if (!(result && isUpload(last, tenant, uploadId))) return this.changed(await this.state(tenant, uploadId));
    // Settled before the answer (as `state` does for what it reads): a read of the mark after it learns the end.
    const completed = completedState(last, result);
    await this.mergedMarks?.settle(completed);
    return this.changed(completed);
  }

  /** A partial a final names, read; 404 with the final's words for one that does not exist (or is another tenant's). */
  private async partialState(tenant: string, uploadId: string): Promise<GatewayUploadState> {
    try {
      return await this.state(tenant, uploadId);
    } catch (err) {
      if (!(err instanceof UploadNotFoundError)) throw err;
      throw new GatewayError(
        404,
        'UploadNotFound',
        `Upload-Concat names upload ${uploadId}, which does not exist (or is another tenant's)`,
      );
    }
  }

  /** Remembers a partial that is stored and waits for a final (at most {@link STORED_PARTIALS_KEPT}, oldest dropped first). */
  private rememberStored(state: GatewayUploadState): GatewayUploadState {
    if (state.concat?.kind === 'partial' && state.concat.stored && state.phase === 'await-join' && state.outcome === 'running') {
      const key = `${state.tenant}/${state.uploadId}`;
      this.storedPartials.delete(key);
      this.storedPartials.set(key, state);
      for (const oldest of this.storedPartials.keys()) {
        if (this.storedPartials.size <= STORED_PARTIALS_KEPT) break;
        this.storedPartials.delete(oldest);
      }
    }
    return state;
  }

  /**
   * A partial of the tenant this instance saw stored, while it has not expired (an expired one is
   * read, and refused with what its workflow says); undefined to read it.
   */
  private storedPartial(tenant: string, uploadId: string): GatewayUploadState | undefined {
    const state = this.storedPartials.get(`${tenant}/${uploadId}`);
    return state && Date.now() < state.expiresAt ? state : undefined;
  }

  private handle(tenant: string, uploadId: string): WorkflowHandle<GatewayUploadWorkflow> {
    return this.client.workflow.getHandle<GatewayUploadWorkflow>(uploadWorkflowId(tenant, uploadId));
  }

  private bounded<T>(call: () => Promise<T>): Promise<T> {
    return this.client.withDeadline(Date.now() + this.callTimeoutMs, call);
  }

  /** An update, with its rejections translated; retried once when it met a run that just continued as new. */
  private async update<T>(
    tenant: string,
    uploadId: string,
    send: (handle: WorkflowHandle<GatewayUploadWorkflow>) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.bounded(() => send(this.handle(tenant, uploadId)));
      } catch (err) {
        const rejected = this.updateRejection(err, uploadId);
        if (rejected) throw rejected;
        const translated = this.translate(err, uploadId);
        if (translated instanceof GatewayUnavailableError) throw translated;
        // The run ended under the update: a continue-as-new (retry on the new run), or the end of the
        // upload — the server answers an update to a closed run as if the workflow were missing, so
        // the query (which closed runs answer) tells; it throws UploadNotFoundError for a missing one.
        const state = await this.state(tenant, uploadId);
        if (state.outcome === 'running' && attempt < 2) continue;
        if (state.outcome === 'running' || state.outcome === 'completed')
          throw new UploadConflictError(`upload ${uploadId} is in phase ${state.phase}`, state.offset);
        throw new UploadGoneError(uploadId, state.outcome);
      }
    }
  }

  /** The gateway error of an Update the workflow's validator refused with a {@link ChunkRejection}; undefined for any other failure. */
  private updateRejection(err: unknown, uploadId: string): GatewayError | undefined {
    const rejection = err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure ? err.cause : undefined;
    if (!rejection || !(Object.values(ChunkRejection) as (string | null | undefined)[]).includes(rejection.type)) return undefined;
    return this.rejection({ type: rejection.type as ChunkRejection, message: rejection.message }, uploadId);
  }

  /** A refused state change (an Update validator's, or the same check made before sending it) as a gateway error. */
  private rejection(problem: { type: ChunkRejection; message: string }, uploadId: string): GatewayError {
    switch (problem.type) {
      case ChunkRejection.OffsetConflict:
      case ChunkRejection.NotReceiving:
        return new UploadConflictError(problem.message);
      case ChunkRejection.UploadExpired:
        return new UploadGoneError(uploadId, 'expired', problem.message);
      case ChunkRejection.Paused:
        return new UploadPausedError(uploadId, { reason: problem.message });
      default:
        return new InvalidRequestError(problem.message);
    }
  }

  /** Temporal's errors as gateway errors; other tenants' and non-gateway uploads look missing. */
  private translate(err: unknown, uploadId: string): Error {
    if (err instanceof GatewayError) return err;
    // A start: an upload id is used once.
    if (err instanceof WorkflowExecutionAlreadyStartedError) return new UploadConflictError(`upload id ${uploadId} is already taken`);
    if (err instanceof WorkflowNotFoundError || err instanceof QueryNotRegisteredError) return new UploadNotFoundError(uploadId);
    if (err instanceof WorkflowFailedError) return new UploadNotStoredError(err.cause?.message ?? err.message);
    // The SDK reports a deadline met during an update as its own error, without the gRPC code.
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      return new GatewayUnavailableError(`Temporal did not answer in time for upload ${uploadId}; retry later`, { cause: err });
    }
    const code = (err as { code?: unknown })?.code;
    // gRPC DEADLINE_EXCEEDED (4), UNAVAILABLE (14), CANCELLED (1): Temporal or its workers did not answer.
    if (code === 4 || code === 14 || code === 1 || (err instanceof Error && /deadline|UNAVAILABLE/i.test(err.message))) {
      return new GatewayUnavailableError(`Temporal did not answer in time for upload ${uploadId}; retry later`, { cause: err });
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** A stored partial's size and ETag (claimProblem has checked it is stored). */
function storedPartial(state: GatewayUploadState): { size: number; etag: string } {
  const concat = state.concat;
  if (concat?.kind !== 'partial' || !concat.stored) throw new Error(`partial upload ${state.uploadId} is not stored`);
  return { size: concat.stored.size, etag: concat.stored.etag };
}
