/**
 * The tus data store: @tus/server speaks the protocol, this store turns each request into the
 * upload's saga (via the uploads service) and S3 calls. It keeps no state between requests.
 *
 * Why it is built this way:
 * - Offsets come from the workflow. `getUpload` (HEAD, and the start of every PATCH) asks the
 *   workflow; a PATCH writes its bytes to S3 and then proposes the new state with `recordChunk`,
 *   which the workflow accepts only if the chunk starts where the upload stands. A PATCH retried
 *   after a gateway died therefore cannot double-write: bytes it sent that were never recorded are
 *   overwritten by the retry (same part number, same staged-segment key), and anything left over
 *   sits under the staging prefix, which the saga deletes.
 * - Streaming with memory bounded by two parts per PATCH: the body is read chunk by chunk; every
 *   time the staged bytes plus the new ones fill a part (5 MiB by default), the part is assembled
 *   — staged segments read back from S3, concatenated with the new bytes — and sent with
 *   UploadPart and its checksum while the next part is being received (one part in flight, so
 *   receiving and sending overlap); the folded segments are deleted once the part is recorded.
 *   Bytes that do not fill a part when the body ends (or the connection drops) are staged as one
 *   temporary object `segment-<start>-<end>` under the upload's staging prefix.
 * - Without Upload-Checksum, parts S3 has are recorded as they arrive (at most one update per
 *   `recordIntervalMs`) and at the end, so a connection lost in the middle of a large PATCH keeps
 *   every finished part and the staged tail, and a gateway that dies loses at most the last
 *   interval. With Upload-Checksum (checksum extension) nothing is recorded before the whole body
 *   is verified: a mismatch answers 460 and the offset stays where it was.
 * - The store reads the authenticated tenant and per-request headers from an AsyncLocalStorage
 *   set by the route (see tus.ts): @tus/server's DataStore methods receive only the upload id.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { crc32 } from '@node-rs/crc32';
import { DataStore, Upload } from '@tus/server';
import { checksumField, partChecksum } from '../s3/checksums';
import { extendPartsFingerprint } from '../s3/parts-fingerprint';
import { MAX_STAGED_SEGMENTS, partCountOf, stagedSegmentKey, type GatewayUploadState, type StagedSegment } from '../upload/gateway-upload';
import { stagingPrefixOf } from '../upload/staging';
import { GatewayError, InvalidRequestError, UploadConflictError, UploadTooLargeError } from './errors';
import { metadataProblem, type UploadsService } from './uploads-service';

/** What one tus request carries besides the upload id. */
export interface TusRequestContext {
  /** The authenticated tenant. */
  tenant: string;
  /** The tenant's maximum upload size. */
  maxUploadBytes: number;
  /** The request's Upload-Checksum, parsed, when present. */
  uploadChecksum?: UploadChecksum;
  /** Sets a response header (Upload-Expires). */
  setHeader(name: string, value: string): void;
  /** The state `getUpload` read in this request (under its lock), reused by `write`. */
  state?: GatewayUploadState;
}

/** Per-request context for the store; the tus route runs each request inside `run`. */
export const tusRequestContext = new AsyncLocalStorage<TusRequestContext>();

function currentContext(): TusRequestContext {
  const context = tusRequestContext.getStore();
  if (!context) throw new Error('the tus store was called outside a gateway request');
  return context;
}

/** Algorithms of the checksum extension, as `Tus-Checksum-Algorithm` lists them. */
export const TUS_CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'crc32', 'sha256'] as const;
export type TusChecksumAlgorithm = (typeof TUS_CHECKSUM_ALGORITHMS)[number];

/** An `Upload-Checksum: <algorithm> <base64>` header. */
export interface UploadChecksum {
  algorithm: TusChecksumAlgorithm;
  digest: string;
}

/** 460 Checksum Mismatch (tus checksum extension). */
export class ChecksumMismatchError extends GatewayError {
  override readonly name = 'ChecksumMismatchError';
  constructor(algorithm: string) {
    super(
      460,
      'ChecksumMismatch',
      `Checksum Mismatch: the ${algorithm} of the request body differs from Upload-Checksum; nothing was recorded`,
    );
  }
}

/**
 * Parses an Upload-Checksum header.
 * @throws InvalidRequestError (400) for a malformed header or an algorithm not supported
 */
export function parseUploadChecksum(header: string): UploadChecksum {
  const match = /^\s*([A-Za-z0-9-]+) ([A-Za-z0-9+/]+={0,2})\s*$/.exec(header);
  if (!match)
    throw new InvalidRequestError('Upload-Checksum must be "<algorithm> <base64 digest>", e.g. "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="');
  const algorithm = match[1]!.toLowerCase();
  if (!(TUS_CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new InvalidRequestError(
      `Upload-Checksum algorithm "${match[1]}" is not supported; use one of ${TUS_CHECKSUM_ALGORITHMS.join(', ')}`,
    );
  }
  return { algorithm: algorithm as TusChecksumAlgorithm, digest: match[2]! };
}

/** Verifies a request body against its Upload-Checksum, chunk by chunk. */
class BodyChecksum {
  private crc = 0;
  private readonly hash;
  constructor(private readonly expected: UploadChecksum) {
    this.hash = expected.algorithm === 'crc32' ? undefined : createHash(expected.algorithm);
  }
  update(chunk: Buffer): void {
    if (this.hash) this.hash.update(chunk);
    else this.crc = crc32(chunk, this.crc);
  }
  matches(): boolean {
    let actual: string;
    if (this.hash) actual = this.hash.digest('base64');
    else {
      const buf = Buffer.alloc(4);
      buf.writeUInt32BE(this.crc >>> 0);
      actual = buf.toString('base64');
    }
    return actual === this.expected.digest;
  }
}

/** The tus metadata keys that name the file and its type (tus-js-client and Uppy send these). */
const NAME_KEYS = ['filename', 'name'];
const TYPE_KEYS = ['filetype', 'type'];

/** @see GatewayUploadStore */
export interface GatewayUploadStoreOptions {
  uploads: UploadsService;
  s3: S3Client;
  /**
   * Within one PATCH, record the parts S3 has at most this often (and always at the end): fewer
   * updates, a shorter history, a gateway crash costs at most this much resending.
   * @default 1000
   */
  recordIntervalMs?: number;
}

/** The {@link DataStore} of the gateway's tus endpoint. */
export class GatewayUploadStore extends DataStore {
  constructor(private readonly options: GatewayUploadStoreOptions) {
    super();
    this.extensions = ['creation', 'creation-with-upload', 'termination', 'expiration', 'checksum'];
  }

  /** POST: starts the upload's saga (reserve space, open the multipart upload). */
  override async create(upload: Upload): Promise<Upload> {
    const context = currentContext();
    const tusMetadata = upload.metadata ?? {};
    const pick = (keys: string[]) => keys.map((k) => tusMetadata[k]).find((v): v is string => typeof v === 'string' && v.length > 0);
    // Other metadata goes to S3 as x-amz-meta-*, where S3 allows it; the rest is not kept.
    const metadata: Record<string, string> = {};
    for (const [key, value] of Object.entries(tusMetadata)) {
      if (NAME_KEYS.includes(key) || TYPE_KEYS.includes(key) || typeof value !== 'string') continue;
      if (!metadataProblem({ ...metadata, [key]: value })) metadata[key] = value;
    }
    const filename = pick(NAME_KEYS);
    const contentType = pick(TYPE_KEYS);
    const state = await this.options.uploads.create({
      tenant: context.tenant,
      uploadId: upload.id,
      ...(upload.size !== undefined ? { length: upload.size } : {}),
      ...(filename ? { filename } : {}),
      ...(contentType ? { contentType } : {}),
      metadata,
      mode: 'tus',
    });
    if (state.length === 0) {
      // Nothing will be PATCHed: the one (empty) part is sent now.
      await new ChunkWriter(this.options, context.tenant, state).finish();
    } else {
      context.setHeader('Upload-Expires', new Date(state.expiresAt).toUTCString());
    }
    upload.creation_date = new Date(state.createdAt).toISOString();
    return upload;
  }

  /** HEAD (and the start of PATCH, DELETE): the durable state, from the workflow. */
  override async getUpload(id: string): Promise<Upload> {
    const context = currentContext();
    const state = await this.options.uploads.get(context.tenant, id);
    context.state = state;
    if (state.outcome === 'running') context.setHeader('Upload-Expires', new Date(state.expiresAt).toUTCString());
    const metadata: Record<string, string> = {
      ...state.metadata,
      ...(state.filename ? { filename: state.filename } : {}),
      filetype: state.contentType,
    };
    return new Upload({
      id,
      ...(state.length !== undefined ? { size: state.length } : {}),
      offset: state.offset,
      metadata,
      creation_date: new Date(state.createdAt).toISOString(),
    });
  }

  /** PATCH: streams the body into parts and staged segments, records the new offset. */
  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const context = currentContext();
    const state = context.state?.uploadId === id ? context.state : await this.options.uploads.get(context.tenant, id);
    if (state.offset !== offset)
      throw new UploadConflictError(`Upload-Offset ${offset} does not match the upload's offset ${state.offset}`, state.offset);
    if (state.phase !== 'receive-parts' || state.outcome !== 'running') {
      throw new UploadConflictError(
        `upload ${id} does not receive bytes any more (phase ${state.phase}, outcome ${state.outcome})`,
        state.offset,
      );
    }
    const verifier = context.uploadChecksum ? new BodyChecksum(context.uploadChecksum) : undefined;
    const writer = new ChunkWriter(this.options, context.tenant, state, { recordEachPart: !verifier });
    let streamError: unknown;
    try {
      for await (const chunk of readable) {
        const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
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
    if (after.outcome === 'running' && !(after.length !== undefined && after.offset === after.length)) {
      context.setHeader('Upload-Expires', new Date(after.expiresAt).toUTCString());
    }
    if (streamError !== undefined) throw streamError;
    return after.offset;
  }

  /** DELETE (termination): cancels the saga, which aborts the multipart upload and deletes staged segments. */
  override async remove(id: string): Promise<void> {
    const context = currentContext();
    await this.options.uploads.cancel(context.tenant, id);
  }

  /** Expiry is per upload, enforced by the workflow's timer; @tus/server's own expiry arithmetic stays off. */
  override getExpiration(): number {
    return 0;
  }
}

/** Where one PATCH stands: what the workflow recorded, and what this request has sent since. */
interface Position {
  offset: number;
  partsCompleted: number;
  fingerprint: string;
  staged: StagedSegment[];
}

/**
 * Writes one request's bytes: full parts with UploadPart (one in flight while the next is
 * received), the remainder as a staged segment, and records what S3 has with the workflow.
 */
class ChunkWriter {
  /** What the workflow recorded. */
  private committed: Position;
  /** What S3 has: parts whose UploadPart finished, segments put. */
  private sent: Position;
  /** Where the request stands, including the part being sent. */
  private pending: Position;
  private fresh: Buffer[] = [];
  private freshBytes = 0;
  /** Segments folded into parts S3 has: deleted once recorded. */
  private obsolete: StagedSegment[] = [];
  private inflight: Promise<void> | undefined;
  private lastRecordAt = Date.now();
  private latest: GatewayUploadState;
  private readonly stagingPrefix: string;
  private readonly recordIntervalMs: number;

  constructor(
    private readonly options: GatewayUploadStoreOptions,
    private readonly tenant: string,
    state: GatewayUploadState,
    private readonly behaviour: { recordEachPart: boolean } = { recordEachPart: true },
  ) {
    this.committed = {
      offset: state.offset,
      partsCompleted: state.partsCompleted,
      fingerprint: state.fingerprint,
      staged: [...state.staged],
    };
    this.sent = { ...this.committed, staged: [...state.staged] };
    this.pending = { ...this.committed, staged: [...state.staged] };
    this.latest = state;
    this.stagingPrefix = stagingPrefixOf(state.tenant, state.uploadId);
    this.recordIntervalMs = options.recordIntervalMs ?? 1000;
  }

  private get partSize(): number {
    return this.latest.partSize;
  }

  private stagedBytes(): number {
    return this.pending.offset - this.pending.partsCompleted * this.partSize;
  }

  async push(chunk: Buffer): Promise<void> {
    const { length } = this.latest;
    if (length !== undefined && this.pending.offset + this.freshBytes + chunk.length > length) {
      throw new UploadTooLargeError(`the body goes beyond the upload's length of ${length} bytes`);
    }
    this.fresh.push(chunk);
    this.freshBytes += chunk.length;
    while (this.stagedBytes() + this.freshBytes >= this.partSize) await this.sendPart(this.partSize);
  }

  /** Ends the request: sends the last part or stages the remainder, records, deletes folded segments. */
  async finish(): Promise<GatewayUploadState> {
    const { length } = this.latest;
    const total = this.pending.offset + this.freshBytes;
    if (length !== undefined && total === length) {
      if (this.pending.partsCompleted < partCountOf(length, this.partSize)) await this.sendPart(this.stagedBytes() + this.freshBytes);
      await this.settle();
    } else if (this.freshBytes > 0) {
      await this.settle();
      await this.stage();
    } else {
      await this.settle();
    }
    if (this.sent.offset !== this.committed.offset || this.sent.partsCompleted !== this.committed.partsCompleted) await this.record();
    return this.latest;
  }

  /** Waits for the part in flight, ignoring its failure: the request is failing anyway. */
  async abandon(): Promise<void> {
    await this.settle().catch(() => undefined);
  }

  private async settle(): Promise<void> {
    const job = this.inflight;
    this.inflight = undefined;
    if (job) await job;
  }

  private takeFresh(bytes: number): Buffer {
    const all = Buffer.concat(this.fresh, this.freshBytes);
    this.fresh = bytes < all.length ? [all.subarray(bytes)] : [];
    this.freshBytes = all.length - bytes;
    return all.subarray(0, bytes);
  }

  /** The staged segments' bytes, read back from S3 and checked for length. */
  private async readStaged(): Promise<Buffer> {
    const buffers: Buffer[] = [];
    for (const segment of this.pending.staged) {
      const key = stagedSegmentKey(this.stagingPrefix, segment);
      const object = await this.options.s3.send(new GetObjectCommand({ Bucket: this.latest.bucket, Key: key }));
      const bytes = Buffer.from(await object.Body!.transformToByteArray());
      if (bytes.length !== segment.end - segment.start) {
        throw new Error(`staged segment ${key} has ${bytes.length} bytes, but ${segment.end - segment.start} were recorded`);
      }
      buffers.push(bytes);
    }
    return Buffer.concat(buffers);
  }

  /**
   * Assembles the next part — the staged bytes plus new ones, `size` bytes in all — and starts
   * sending it once the previous part is in S3; returns while it is being sent.
   */
  private async sendPart(size: number): Promise<void> {
    const staged = await this.readStaged();
    const body = Buffer.concat([staged, this.takeFresh(size - staged.length)]);
    const partNumber = this.pending.partsCompleted + 1;
    const algorithm = this.latest.checksumAlgorithm ?? 'CRC32C';
    const checksum = await partChecksum(algorithm, body);
    const folded = this.pending.staged;
    const after: Position = {
      offset: this.pending.partsCompleted * this.partSize + body.length,
      partsCompleted: partNumber,
      fingerprint: extendPartsFingerprint(this.pending.fingerprint, partNumber, checksum),
      staged: [],
    };
    this.pending = after;
    await this.settle(); // one part in flight: memory stays at about two parts
    const job = (async () => {
      await this.options.s3.send(
        new UploadPartCommand({
          Bucket: this.latest.bucket,
          Key: this.latest.key,
          UploadId: this.latest.multipartUploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
          ChecksumAlgorithm: algorithm,
          [checksumField(algorithm)]: checksum,
        }),
      );
      this.sent = after;
      this.obsolete.push(...folded);
      if (this.behaviour.recordEachPart && Date.now() - this.lastRecordAt >= this.recordIntervalMs) await this.record();
    })();
    job.catch(() => undefined); // awaited by the next settle(); never an unhandled rejection
    this.inflight = job;
  }

  /** Stages the new bytes as a segment; beyond MAX_STAGED_SEGMENTS, folds all staged bytes into one. */
  private async stage(): Promise<void> {
    const end = this.pending.offset + this.freshBytes;
    let segment: StagedSegment;
    let body: Buffer;
    let folded: StagedSegment[] = [];
    if (this.pending.staged.length + 1 > MAX_STAGED_SEGMENTS) {
      const staged = await this.readStaged();
      body = Buffer.concat([staged, this.takeFresh(this.freshBytes)]);
      segment = { start: this.pending.partsCompleted * this.partSize, end };
      folded = this.pending.staged;
    } else {
      body = this.takeFresh(this.freshBytes);
      segment = { start: this.pending.offset, end };
    }
    await this.options.s3.send(
      new PutObjectCommand({
        Bucket: this.latest.bucket,
        Key: stagedSegmentKey(this.stagingPrefix, segment),
        Body: body,
        ContentLength: body.length,
        ChecksumAlgorithm: 'CRC32C',
        ChecksumCRC32C: await partChecksum('CRC32C', body),
      }),
    );
    this.pending = { ...this.pending, offset: end, staged: [...(folded.length ? [] : this.pending.staged), segment] };
    this.sent = { ...this.pending, staged: [...this.pending.staged] };
    this.obsolete.push(...folded);
  }

  /** Proposes what S3 has to the workflow; on acceptance, deletes the folded segments. */
  private async record(): Promise<void> {
    const from = { offset: this.committed.offset, partsCompleted: this.committed.partsCompleted };
    const position = { ...this.sent, staged: [...this.sent.staged] };
    this.latest = await this.options.uploads.recordChunk(this.tenant, this.latest.uploadId, { from, ...position });
    this.committed = position;
    this.lastRecordAt = Date.now();
    const current = new Set(this.committed.staged.map((s) => stagedSegmentKey(this.stagingPrefix, s)));
    const keys = this.obsolete.map((s) => stagedSegmentKey(this.stagingPrefix, s)).filter((k) => !current.has(k));
    this.obsolete = [];
    if (keys.length === 0) return;
    // Best effort: a segment left behind is deleted with the staging prefix when the saga ends.
    await this.options.s3
      .send(new DeleteObjectsCommand({ Bucket: this.latest.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }))
      .catch(() => undefined);
  }
}
