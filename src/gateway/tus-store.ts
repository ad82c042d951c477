/**
 * The tus data store: @tus/server speaks the protocol, this store turns each request into the
 * upload's saga (via the uploads service) and S3 calls. It keeps no state between requests.
 *
 * Why it is built this way:
 * - Creation answers once the saga started, before it reserved space and opened the multipart
 *   upload: the first PATCH is received into its part buffers meanwhile, and nothing is sent to S3
 *   before the saga answered that the upload is open as expected (`expectedOpenState`).
 * - Offsets come from the workflow. `getUpload` (HEAD, DELETE) asks the workflow (a HEAD of an
 *   upload marked merged is answered from its mark, merged-marks.ts); a PATCH at the
 *   offset this replica last saw starts from that state (tus-state-cache.ts), confirmed by a query
 *   during the body unless this replica is the only one; a PATCH writes its bytes to S3 and then
 *   proposes the new state with `recordChunk`,
 *   which the workflow accepts only if the chunk starts where the upload stands. A PATCH retried
 *   after a gateway died therefore cannot double-write: bytes it sent that were never recorded are
 *   overwritten by the retry (same part number, same staged-segment key), and anything left over
 *   sits under the staging prefix, which the saga deletes.
 * - Streaming with memory bounded by (parts in flight + 1) parts per PATCH: the body is copied
 *   chunk by chunk into a part buffer; every time the staged bytes plus the new ones fill a part
 *   (5 MiB by default), the staged segments are read back from S3 into its start and the part is
 *   sent with UploadPart and its checksum while the next part is being received (the staged
 *   segments are read back while the body arrives, when Content-Length says it fills a part), up to
 *   `tusPartsInFlight` (4) parts at once; the request is not read further while all are busy.
 *   Part buffers are reused across PATCHes (part-buffers.ts). Only the contiguous prefix of parts
 *   S3 confirmed is recorded; the folded segments are deleted once the part is recorded.
 *   Bytes that do not fill a part when the body ends (or the connection drops) are staged as one
 *   temporary object `segment-<start>-<end>` under the upload's staging prefix.
 * - Without Upload-Checksum, parts S3 has are recorded as they arrive (at most one update per
 *   `recordIntervalMs`) and at the end, so a connection lost in the middle of a large PATCH keeps
 *   every finished part and the staged tail, and a gateway that dies loses at most the last
 *   interval. With Upload-Checksum (checksum extension) nothing is recorded before the whole body
 *   is verified: a mismatch answers 460 and the offset stays where it was.
 * - One job per file: tus-chunk-writer.ts writes a PATCH's bytes, tus-checksum.ts is the checksum
 *   extension, tus-request-context.ts carries the tenant and headers; this module is the store.
 * - The store reads the authenticated tenant and per-request headers from an AsyncLocalStorage
 *   set by the route (see tus.ts): @tus/server's DataStore methods receive only the upload id.
 */
import type { Readable } from 'node:stream';
import { DataStore, Upload } from '@tus/server';
import { Metadata } from '@tus/utils';
import { DEFAULT_TUS_PARTS_IN_FLIGHT } from './config';
import { assertNotPaused, GatewayError, UploadConflictError, UploadNotStoredError, UploadTooLargeError } from './errors';
import { PartBuffers } from '../s3/part-buffers';
import { BodyChecksum, ChecksumMismatchError } from './tus-checksum';
import { ChunkWriter, type ChunkWriterOptions } from './tus-chunk-writer';
import { currentContext } from './tus-request-context';
import { objectMetadataOf } from './tus-metadata';
import { FinalUploadNotWritableError, uploadConcatHeader } from './tus-concatenation';
import { openedAsExpected, sameWritePosition, UploadStateCache } from './tus-state-cache';
import type { GatewayUploadState } from '../upload/gateway-upload';

export {
  parseUploadChecksum,
  TUS_CHECKSUM_ALGORITHMS,
  ChecksumMismatchError,
  type UploadChecksum,
  type TusChecksumAlgorithm,
} from './tus-checksum';
export { tusRequestContext, type TusRequestContext } from './tus-request-context';

/** @see GatewayUploadStore */
export interface GatewayUploadStoreOptions extends ChunkWriterOptions {
  /**
   * Whether this replica is the only one that serves its uploads (its lock is in-process): then a
   * PATCH writes from the state this replica last saw without asking the workflow. Otherwise that
   * state is confirmed with a query while the body is received (see tus-state-cache.ts).
   * @default false
   */
  onlyReplica?: boolean;
  /**
   * Answer a creation once the saga opened the upload (a quota refusal answers the POST), not once
   * it started (see `tusCreateWhenOpen` of the gateway's configuration).
   * @default false
   */
  createWhenOpen?: boolean;
}

/** The {@link DataStore} of the gateway's tus endpoint. */
export class GatewayUploadStore extends DataStore {
  /** What every PATCH's writer gets: these options, and part buffers the PATCHes share. */
  private readonly writerOptions: ChunkWriterOptions;
  /** The states this replica last saw, so that a PATCH need not ask the workflow first. */
  private readonly states = new UploadStateCache();

  constructor(private readonly options: GatewayUploadStoreOptions) {
    super();
    this.writerOptions = {
      ...options,
      // Shared memory: a part's SHA-256 is computed in place on a worker thread (hash-threads.ts).
      buffers: options.buffers ?? new PartBuffers((options.partsInFlight ?? DEFAULT_TUS_PARTS_IN_FLIGHT) + 1, { shared: true }),
    };
    // A pause through this gateway (its route) is seen by the next PATCH at once: its guess goes.
    if (typeof options.uploads.observe === 'function')
      options.uploads.observe((state) => {
        if (state.pause?.paused) this.states.forget(state.tenant, state.uploadId);
      });
    this.extensions = [
      'creation',
      'creation-with-upload',
      'creation-defer-length',
      'termination',
      'expiration',
      'checksum',
      'concatenation',
    ];
  }

  /**
   * POST: starts the upload's saga (reserve space, open the multipart upload). An upload with bytes
   * to come is answered once Temporal started the saga: its first PATCH is received while the saga
   * opens, and written once it is open (a refusal for quota answers that PATCH, 413). A zero-byte
   * upload is answered once open and its one empty part sent, and so is every upload with
   * `createWhenOpen` (a refusal for quota answers the POST).
   */
  override async create(upload: Upload): Promise<Upload> {
    const context = currentContext();
    const { filename, contentType, metadata } = objectMetadataOf(upload.metadata ?? {});
    const token = context.uploadToken;
    /** The upload token's hold on this creation given back: nothing (usable) was created. */
    const giveBackToken = async (partialBytes: boolean) => {
      if (!token) return;
      await token.bindings.release(token.scope.tokenId, upload.id).catch(() => undefined);
      if (partialBytes && context.heldPartialBytes)
        await token.bindings
          .addBytes(token.scope.tokenId, -context.heldPartialBytes, context.maxUploadBytes, token.scope.expiresAt)
          .catch(() => undefined);
    };
    const request = {
      tenant: context.tenant,
      uploadId: upload.id,
      // Without a size (Upload-Defer-Length: 1) the saga reserves the maximum until a PATCH declares it.
      ...(upload.size !== undefined ? { length: upload.size } : { maxLength: context.maxUploadBytes }),
      ...(filename ? { filename } : {}),
      ...(contentType ? { contentType } : {}),
      ...(token?.scope.key !== undefined ? { key: token.scope.key } : {}),
      metadata,
      ...(context.uploadMetadata !== undefined ? { tusMetadata: context.uploadMetadata } : {}),
      mode: 'tus' as const,
      ...(context.concat === 'partial' ? { concat: 'partial' as const } : {}),
    };
    let state: GatewayUploadState;
    let opened: Promise<GatewayUploadState> | undefined;
    try {
      if (upload.size === 0 || this.options.createWhenOpen) state = await this.options.uploads.create(request);
      else ({ state, opened } = await this.options.uploads.createStarted(request));
    } catch (err) {
      // Nothing was created: the upload token may create its one upload again (or, a partial, use its bytes for another).
      await giveBackToken(true);
      throw err;
    }
    // Refused once started (quota), the saga ended: the token may create again; a partial's bytes come
    // back as a member's that ended unjoined (noted below), so they are not given back twice.
    opened?.catch((err: unknown) =>
      err instanceof UploadTooLargeError || err instanceof UploadNotStoredError ? giveBackToken(false) : undefined,
    );
    // A partial's bytes count against its upload token until it is joined; noted, so that they can be given back if it ends unjoined.
    if (token && context.heldPartialBytes)
      await token.bindings
        .addMember(token.scope.tokenId, upload.id, context.heldPartialBytes, token.scope.expiresAt)
        .catch(() => undefined);
    if (state.length === 0) {
      // Nothing will be PATCHed: the one (empty) part is sent now.
      await new ChunkWriter(this.writerOptions, context.tenant, state).finish();
    } else {
      // creation-with-upload: the body is written from this state, no query needed.
      context.state = state;
      if (opened) {
        this.states.rememberOpening(state, opened);
        const confirmation = confirmedOpen(state, opened);
        confirmation.catch(() => undefined);
        context.stateConfirmed = confirmation;
      } else this.states.remember(state);
      context.setHeader('Upload-Expires', new Date(state.expiresAt).toUTCString());
    }
    upload.creation_date = new Date(state.createdAt).toISOString();
    return upload;
  }

  /**
   * HEAD (and the start of PATCH, DELETE): the durable state, from the workflow. A PATCH starts
   * from the state this replica last saw when it has one; unless this is the only replica, the
   * workflow confirms it while the body is received, before anything is written.
   */
  override async getUpload(id: string): Promise<Upload> {
    const context = currentContext();
    // A PATCH that names another offset, or one after the expiry, is answered from the workflow's state.
    const last = context.method === 'PATCH' ? this.states.get(context.tenant, id) : undefined;
    const seen = last && last.offset === context.uploadOffset && Date.now() < last.expiresAt ? last : undefined;
    const opening = seen && seen.multipartUploadId === undefined ? this.states.opening(context.tenant, id) : undefined;
    let state: GatewayUploadState;
    if (seen && opening) {
      // Created here and still opening: the PATCH is received meanwhile, and written once open
      // (and, unless this is the only replica, once a query confirmed the state it opened with).
      state = seen;
      const confirmation = confirmedOpen(seen, opening).then(async (opened) => {
        if (!this.options.onlyReplica) await this.confirmedByQuery(context.tenant, id, opened);
        return opened;
      });
      confirmation.catch(() => undefined);
      context.stateConfirmed = confirmation;
    } else if (seen && seen.multipartUploadId !== undefined) {
      state = seen;
      if (!this.options.onlyReplica) {
        context.stateConfirmed = this.confirmedByQuery(context.tenant, id, seen);
        // Awaited by the writer; a request refused before it writes does not wait for it.
        context.stateConfirmed.catch(() => undefined);
      }
    } else {
      // HEAD of an upload known merged: its mark, without a query that would wait while the saga's
      // local activities (commit-quota, notify) hold its workflow task. An upload created here
      // that still opens: the workflow's state once open (or its refusal).
      const marked = context.method === 'HEAD' ? await this.options.uploads.mergedState(context.tenant, id) : undefined;
      const opened = marked ? undefined : this.states.opening(context.tenant, id);
      state = marked ?? (opened ? await opened : await this.options.uploads.get(context.tenant, id));
      this.states.remember(state);
    }
    context.state = state;
    // Concatenation: HEAD says what the upload is; a final takes no PATCH.
    const concat = context.uploadsPath !== undefined ? uploadConcatHeader(state, context.uploadsPath) : undefined;
    if (concat !== undefined) context.setHeader('Upload-Concat', concat);
    if (context.method === 'PATCH' && state.concat?.kind === 'final') throw new FinalUploadNotWritableError(id);
    // A merged upload no longer expires (its finishing PATCH was answered; the saga completes forward).
    if (state.outcome === 'running' && !state.merged) context.setHeader('Upload-Expires', new Date(state.expiresAt).toUTCString());
    // What the client sent, as it sent it; uploads created before the header was kept show what the saga stores.
    const metadata: Record<string, string | null> =
      state.tusMetadata !== undefined
        ? Metadata.parse(state.tusMetadata)
        : { ...state.metadata, ...(state.filename ? { filename: state.filename } : {}), filetype: state.contentType };
    return new Upload({
      id,
      ...(state.length !== undefined ? { size: state.length } : {}),
      offset: state.offset,
      metadata,
      creation_date: new Date(state.createdAt).toISOString(),
    });
  }

  /**
   * Settles once the workflow's state stands where `seen` does; otherwise forgets the upload and
   * rejects (409: HEAD tells where it stands), or with the pause sent elsewhere (another replica, the CLI).
   */
  private async confirmedByQuery(tenant: string, id: string, seen: GatewayUploadState): Promise<void> {
    const current = await this.options.uploads.get(tenant, id);
    if (current.pause?.paused) this.states.forget(tenant, id);
    assertNotPaused(current);
    if (sameWritePosition(current, seen)) return;
    this.states.forget(tenant, id);
    throw new UploadConflictError(
      `upload ${id} moved on to offset ${current.offset} (phase ${current.phase}, outcome ${current.outcome}); HEAD tells where it stands`,
      current.offset,
    );
  }

  /** PATCH: streams the body into parts and staged segments, records the new offset. */
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const context = currentContext();
    const state = context.state?.uploadId === id ? context.state : await this.options.uploads.get(context.tenant, id);
    if (state.offset !== offset)
      throw new UploadConflictError(`Upload-Offset ${offset} does not match the upload's offset ${state.offset}`, state.offset);
    const allReceived = state.length !== undefined && state.offset === state.length && state.phase !== 'receive-parts';
    if (allReceived && (state.outcome === 'running' || state.outcome === 'completed')) {
      // Every byte is in the parts already and the saga went on (a PATCH that only declares the
      // length where the bytes ended, e.g. the resumable-upload draft's, whose remainder the previous
      // PATCH folded into its last part): nothing to write, and the body must be empty.
      for await (const chunk of readable)
        if ((chunk as Uint8Array).byteLength > 0)
          throw new UploadTooLargeError(`the body goes beyond the upload's length of ${state.length} bytes`);
      return state.offset;
    }
    if (state.phase !== 'receive-parts' || state.outcome !== 'running') {
      throw new UploadConflictError(
        `upload ${id} does not receive bytes any more (phase ${state.phase}, outcome ${state.outcome})`,
        state.offset,
      );
    }
    // Paused: no new PATCH starts (a PATCH already past this point finishes and is recorded).
    assertNotPaused(state);
    const verifier = context.uploadChecksum ? new BodyChecksum(context.uploadChecksum) : undefined;
    const writer = new ChunkWriter(this.writerOptions, context.tenant, state, {
      recordEachPart: !verifier,
      ...(context.stateConfirmed && context.state === state ? { confirmation: context.stateConfirmed } : {}),
      ...(context.bodyLength !== undefined ? { bodyLength: context.bodyLength } : {}),
    });
    // Any failure may leave this replica's sight of the upload behind the workflow's: the next PATCH asks.
    try {
      return await this.writeWith(writer, readable, verifier);
    } catch (err) {
      this.states.forget(context.tenant, id);
      await writer.abandon();
      // A refused record (the upload moved on, ended, or was cancelled elsewhere) leaves no segment of this request behind.
      if (err instanceof GatewayError) await writer.discardUnrecorded();
      throw err;
    }
  }

  private async writeWith(writer: ChunkWriter, readable: Readable, verifier: BodyChecksum | undefined): Promise<number> {
    const context = currentContext();
    let streamError: unknown;
    try {
      for await (const chunk of readable) {
        // A view, not a copy: the web-stream adapter hands over Uint8Arrays.
        const bytes = chunk as Uint8Array;
        const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        verifier?.update(buffer);
        await writer.push(buffer);
      }
    } catch (err) {
      // The client went away mid-body: keep what arrived (unless a checksum must cover it all).
      if (err instanceof GatewayError) {
        await writer.abandon();
        throw err;
      }
      streamError = err;
    }
    if (verifier && (streamError !== undefined || !verifier.matches())) {
      await writer.abandon();
      throw new ChecksumMismatchError(context.uploadChecksum!.algorithm);
    }
    const after = await writer.finish();
    context.state = after;
    this.states.remember(after);
    if (after.outcome === 'running' && !(after.length !== undefined && after.offset === after.length)) {
      context.setHeader('Upload-Expires', new Date(after.expiresAt).toUTCString());
    }
    if (streamError !== undefined) throw streamError;
    return after.offset;
  }

  /**
   * PATCH with `Upload-Length` on an upload whose length was deferred: the saga takes the length
   * and lowers its reservation to it; the PATCH's bytes are then written against it.
   */
  override async declareUploadLength(id: string, length: number): Promise<void> {
    const context = currentContext();
    // The workflow answers with where the upload stands: nothing left to confirm.
    delete context.stateConfirmed;
    try {
      context.state = await this.options.uploads.declareLength(context.tenant, id, length);
    } catch (err) {
      this.states.forget(context.tenant, id);
      throw err;
    }
    this.states.remember(context.state);
  }

  /**
   * DELETE (termination): an unfinished upload's saga is cancelled (it aborts the multipart upload
   * and deletes staged segments); a finished upload's object is deleted by the delete saga, which
   * gives its bytes back to the tenant's quota. A concatenation partial that a final claimed is
   * not cancelled: 409 (see UploadsService.withdrawPartial); one a final joined is left as it is
   * (204: its bytes are the final's object).
   */
  override async remove(id: string): Promise<void> {
    const context = currentContext();
    this.states.forget(context.tenant, id);
    // 404 / 410 for an upload that is unknown, or ended without its object (or terminated before).
    let state = await this.options.uploads.get(context.tenant, id);
    // Merged, its saga still running the steps after the pivot (the finishing PATCH was answered),
    // or a partial a final joined, committing its reservation: it completes forward, a cancellation
    // would be ignored (or undo the joined bytes' quota); it is treated as ended once it ended.
    const joined = state.concat?.kind === 'partial' && state.concat.joinedInto !== undefined;
    if (state.outcome === 'running' && (state.merged || joined)) {
      state = await this.options.uploads.waitForEnd(context.tenant, id, 30_000, state);
      if (state.outcome === 'running')
        throw new UploadConflictError(
          `upload ${id} is merged and still completing (${state.phase}); send the DELETE again later`,
          state.offset,
        );
    }
    if (state.outcome === 'completed') {
      // A joined partial left nothing of its own (its stored object was deleted once joined; its
      // bytes are the final's object, terminated with the final): nothing to delete, as tusd answers.
      if (state.concat?.kind === 'partial') return;
      await this.options.uploads.deleteStored(context.tenant, id);
      return;
    }
    // A partial a final claimed is refused (409): the final copies from it and commits its quota.
    if (state.outcome === 'running' && state.concat?.kind === 'partial')
      await this.options.uploads.withdrawPartial(context.tenant, id, state);
    await this.options.uploads.cancel(context.tenant, id);
  }

  /** Expiry is per upload, enforced by the workflow's timer; @tus/server's own expiry arithmetic stays off. */
  override getExpiration(): number {
    return 0;
  }
}

/**
 * Settles with the workflow's state once the upload is open, when it is the state `expected`
 * guessed in all a PATCH writes by; otherwise rejects (409: HEAD tells where it stands), or with
 * the refusal of the creation (413 for quota).
 */
async function confirmedOpen(expected: GatewayUploadState, opened: Promise<GatewayUploadState>): Promise<GatewayUploadState> {
  const state = await opened;
  assertNotPaused(state);
  if (!openedAsExpected(state, expected)) {
    throw new UploadConflictError(
      `upload ${expected.uploadId} opened at offset ${state.offset} (phase ${state.phase}, outcome ${state.outcome}), not as this gateway expected; HEAD tells where it stands`,
      state.offset,
    );
  }
  return state;
}
