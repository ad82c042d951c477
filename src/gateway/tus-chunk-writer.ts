/**
 * Writing one PATCH's bytes with memory bounded by (parts in flight + 1) parts: every time staged
 * bytes plus new ones fill a part, the part is assembled (staged segments read back from S3, then
 * the new bytes, in one copy) and sent with UploadPart and its checksum while the next part is
 * received; up to `partsInFlight` parts are on their way to S3 at once. Bytes that do not fill a
 * part are staged as one segment object under the upload's staging prefix. What S3 has is proposed
 * to the workflow with `recordChunk`.
 *
 * Invariants:
 * - The workflow's recorded position is the truth. Bytes sent but never recorded are overwritten
 *   by a retry (same part number, same segment key); folded segments are deleted only once the
 *   part that holds their bytes is recorded.
 * - Only the contiguous prefix of parts S3 confirmed counts as sent: parts finish in any order,
 *   but part n+1 is recorded only after part n. A part that fails leaves the position at the parts
 *   before it (which are recorded, when the request records as it goes); the parts after it are
 *   overwritten by the client's retry.
 *
 * Why it is built this way: one part in flight leaves the link to S3 idle while a part is
 * acknowledged and the next one received, which halves what a single PATCH reaches; several in
 * flight overlap those round trips the way lib-storage's queue and tusd's S3 store do. Reading the
 * request stops while all slots are busy, so a fast client waits on TCP instead of filling memory.
 */
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { checksumField, partChecksum } from '../s3/checksums';
import { extendPartsFingerprint } from '../s3/parts-fingerprint';
import { MAX_STAGED_SEGMENTS, partCountOf, stagedSegmentKey, type GatewayUploadState, type StagedSegment } from '../upload/gateway-upload';
import { stagingPrefixOf } from '../upload/staging';
import { DEFAULT_TUS_PARTS_IN_FLIGHT } from './config';
import { UploadTooLargeError } from './errors';
import type { UploadsService } from './uploads-service';

/** What a {@link ChunkWriter} needs. */
export interface ChunkWriterOptions {
  uploads: UploadsService;
  s3: S3Client;
  /**
   * Within one PATCH, record the parts S3 has at most this often (and always at the end): fewer
   * updates, a shorter history, a gateway crash costs at most this much resending.
   * @default 1000
   */
  recordIntervalMs?: number;
  /**
   * Parts one PATCH sends to S3 at once. A PATCH holds at most (partsInFlight + 1) × part size of
   * body in memory: the parts in flight and the one being received.
   * @default DEFAULT_TUS_PARTS_IN_FLIGHT
   */
  partsInFlight?: number;
}

/** Where one PATCH stands: what the workflow recorded, and what this request has sent since. */
interface Position {
  offset: number;
  partsCompleted: number;
  fingerprint: string;
  staged: StagedSegment[];
}

/** A part handed to UploadPart: where the PATCH stands once it and every part before it are in S3. */
interface PartInFlight {
  after: Position;
  /** Staged segments whose bytes this part holds. */
  folded: StagedSegment[];
  state: 'sending' | 'sent' | 'failed';
  job: Promise<void>;
}

/**
 * Writes one request's bytes: full parts with UploadPart (several in flight while the next is
 * received), the remainder as a staged segment, and records what S3 has with the workflow.
 */
export class ChunkWriter {
  /** What the workflow recorded. */
  private committed: Position;
  /** What S3 has: the contiguous prefix of parts whose UploadPart finished, segments put. */
  private sent: Position;
  /** Where the request stands, including the parts being sent. */
  private pending: Position;
  private fresh: Buffer[] = [];
  private freshBytes = 0;
  /** Segments folded into parts S3 has: deleted once recorded. */
  private obsolete: StagedSegment[] = [];
  /** Parts sent and not yet part of `sent`, in part order. */
  private inflight: PartInFlight[] = [];
  /** The first failure of a part or of a record; the request fails with it. */
  private failure: { error: unknown } | undefined;
  private recording: Promise<void> | undefined;
  private lastRecordAt = Date.now();
  private latest: GatewayUploadState;
  private readonly stagingPrefix: string;
  private readonly recordIntervalMs: number;
  private readonly partsInFlight: number;

  constructor(
    private readonly options: ChunkWriterOptions,
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
    this.partsInFlight = Math.max(1, options.partsInFlight ?? DEFAULT_TUS_PARTS_IN_FLIGHT);
  }

  private get partSize(): number {
    return this.latest.partSize;
  }

  private stagedBytes(): number {
    return this.pending.offset - this.pending.partsCompleted * this.partSize;
  }

  async push(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure.error;
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
    if (this.ahead()) await this.record();
    return this.latest;
  }

  /** Waits for the parts in flight, ignoring their failure: the request is failing anyway. */
  async abandon(): Promise<void> {
    await this.settle().catch(() => undefined);
  }

  /**
   * Waits until no part is in flight and no record runs. When a part failed, records the parts
   * before it (if this request records as it goes) and throws the failure.
   */
  private async settle(): Promise<void> {
    await Promise.allSettled(this.inflight.map((part) => part.job));
    await this.recording;
    if (!this.failure) return;
    if (this.behaviour.recordEachPart && this.ahead()) await this.record().catch(() => undefined);
    throw this.failure.error;
  }

  /** Takes `bytes` of the received bytes, after `prefix`, as one buffer (one copy at most). */
  private takeFresh(bytes: number, prefix?: Buffer): Buffer {
    const pieces: Buffer[] = prefix?.length ? [prefix] : [];
    let taken = 0;
    let used = 0;
    while (taken < bytes) {
      const chunk = this.fresh[used]!;
      const want = bytes - taken;
      if (chunk.length <= want) {
        pieces.push(chunk);
        taken += chunk.length;
        used++;
      } else {
        pieces.push(chunk.subarray(0, want));
        this.fresh[used] = chunk.subarray(want);
        taken = bytes;
      }
    }
    this.fresh.splice(0, used);
    this.freshBytes -= bytes;
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
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
    return buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers);
  }

  /**
   * Assembles the next part — the staged bytes plus new ones, `size` bytes in all — and starts
   * sending it once a slot is free; returns while it is being sent.
   */
  private async sendPart(size: number): Promise<void> {
    const staged = await this.readStaged();
    const body = this.takeFresh(size - staged.length, staged);
    const partNumber = this.pending.partsCompleted + 1;
    const algorithm = this.latest.checksumAlgorithm ?? 'CRC32C';
    const checksum = await partChecksum(algorithm, body);
    const part: PartInFlight = {
      after: {
        offset: this.pending.partsCompleted * this.partSize + body.length,
        partsCompleted: partNumber,
        fingerprint: extendPartsFingerprint(this.pending.fingerprint, partNumber, checksum),
        staged: [],
      },
      folded: this.pending.staged,
      state: 'sending',
      job: Promise.resolve(),
    };
    this.pending = part.after;
    // Backpressure: the request is not read further while every slot is busy.
    for (let busy = this.busy(); busy.length >= this.partsInFlight && !this.failure; busy = this.busy()) await Promise.race(busy);
    if (this.failure) throw this.failure.error;
    part.job = this.options.s3
      .send(
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
      )
      .then(
        () => {
          part.state = 'sent';
          this.advance();
        },
        (error: unknown) => {
          part.state = 'failed';
          this.failure ??= { error };
        },
      );
    this.inflight.push(part);
  }

  /** The parts still on their way to S3. */
  private busy(): Promise<void>[] {
    return this.inflight.filter((part) => part.state === 'sending').map((part) => part.job);
  }

  /** Whether S3 has more than the workflow recorded. */
  private ahead(): boolean {
    return this.sent.offset !== this.committed.offset || this.sent.partsCompleted !== this.committed.partsCompleted;
  }

  /** Moves `sent` over the parts S3 confirmed without a gap; records at most once per interval. */
  private advance(): void {
    while (this.inflight[0]?.state === 'sent') {
      const part = this.inflight.shift()!;
      this.sent = part.after;
      this.obsolete.push(...part.folded);
    }
    const due = Date.now() - this.lastRecordAt >= this.recordIntervalMs;
    if (this.behaviour.recordEachPart && due && !this.recording && !this.failure && this.ahead()) {
      this.recording = this.record()
        .catch((error: unknown) => void (this.failure ??= { error }))
        .finally(() => (this.recording = undefined));
    }
  }

  /** Stages the new bytes as a segment; beyond MAX_STAGED_SEGMENTS, folds all staged bytes into one. */
  private async stage(): Promise<void> {
    const end = this.pending.offset + this.freshBytes;
    let segment: StagedSegment;
    let body: Buffer;
    let folded: StagedSegment[] = [];
    if (this.pending.staged.length + 1 > MAX_STAGED_SEGMENTS) {
      body = this.takeFresh(this.freshBytes, await this.readStaged());
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

  /**
   * Proposes what S3 has to the workflow; on acceptance, deletes the segments folded into the
   * recorded parts (not those of parts that reach S3 while the proposal is on its way).
   */
  private async record(): Promise<void> {
    const from = { offset: this.committed.offset, partsCompleted: this.committed.partsCompleted };
    const position = { ...this.sent, staged: [...this.sent.staged] };
    const obsolete = this.obsolete;
    this.obsolete = [];
    this.latest = await this.options.uploads.recordChunk(this.tenant, this.latest.uploadId, { from, ...position });
    this.committed = position;
    this.lastRecordAt = Date.now();
    const current = new Set(this.committed.staged.map((s) => stagedSegmentKey(this.stagingPrefix, s)));
    const keys = obsolete.map((s) => stagedSegmentKey(this.stagingPrefix, s)).filter((k) => !current.has(k));
    if (keys.length === 0) return;
    // Best effort: a segment left behind is deleted with the staging prefix when the saga ends.
    await this.options.s3
      .send(new DeleteObjectsCommand({ Bucket: this.latest.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }))
      .catch(() => undefined);
  }
}
