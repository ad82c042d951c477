/**
 * Writing one PATCH's bytes with memory bounded by (parts in flight + 1) part buffers: every time
 * staged bytes plus new ones fill a part, the part is assembled (staged segments read back from S3,
 * then the new bytes, in one copy) and sent with UploadPart and its checksum while the next part is
 * received; up to `partsInFlight` parts are on their way to S3 at once. Bytes that do not fill a
 * part are staged as one segment object under the upload's staging prefix, put while the last parts
 * are still on their way. Staged segments are read back while the body is received when its
 * Content-Length says it fills a part. What S3 has is proposed to the workflow with `recordChunk`.
 *
 * Parts of varying size (runs under the patch `gateway-tail-parts`, whose state says `partsBytes`):
 * a PATCH that has sent a full part and then ends with fewer than 5 MiB (S3's minimum part) folds
 * them into that part instead of staging them, so the next PATCH reads nothing back. The end of a
 * body is known only once it ended (tus-js-client sends chunked bodies), so the most recent full
 * part is held back until 5 MiB more arrived (then it is sent as is) or the body ended (then it is
 * sent with the remainder): a part holds partSize to partSize + 5 MiB − 1 bytes, and part buffers
 * have room for partSize + 5 MiB. A held part and the one being received count as two of the
 * (parts in flight + 1): the second is taken only once a slot is free. A PATCH that sends no full
 * part, or whose remainder is 5 MiB or more (a part size above 5 MiB), stages as before: every
 * part but the upload's last has at least `partSize` bytes, so an upload has at most as many parts
 * as with equal ones.
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
import { payloadSignature } from '../s3/payload-signature';
import {
  MAX_STAGED_SEGMENTS,
  MIN_PART_BYTES,
  partsBytesOf,
  stagedSegmentKey,
  type ChunkRecord,
  type GatewayUploadState,
  type StagedSegment,
} from '../upload/gateway-upload';
import { stagingPrefixOf } from '../upload/staging';
import { DEFAULT_TUS_PARTS_IN_FLIGHT } from './config';
import { UploadTooLargeError } from './errors';
import { bodyBytesReceived } from './heap-settings';
import { PartBuffers } from '../s3/part-buffers';
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
   * Part buffers shared by the PATCHes of one gateway.
   * @default buffers of this request only
   */
  buffers?: PartBuffers;
  /**
   * Parts one PATCH sends to S3 at once. A PATCH holds at most (partsInFlight + 1) part buffers: the
   * parts in flight and the one being received (or held back and received). A buffer has the part
   * size, or the part size + 5 MiB when the run takes parts of varying size.
   * @default DEFAULT_TUS_PARTS_IN_FLIGHT
   */
  partsInFlight?: number;
  /**
   * Cut every part but the last to exactly the part size, even for runs that take parts of varying
   * size (stores that require equal parts: `UPLOAD_SAGA_GATEWAY_TUS_EQUAL_PARTS`).
   * @default false
   */
  equalParts?: boolean;
}

/** How one request's writer behaves. */
export interface WriterBehaviour {
  /** Record the parts S3 has as they arrive (at most once per `recordIntervalMs`), not only at the end. */
  recordEachPart: boolean;
  /**
   * Settles once the state the writer starts from is confirmed (see `stateConfirmed` of the request
   * context), with the workflow's state when it has one (a new upload's, once open: the writer
   * takes it, multipart upload id and all); nothing is read from or written to S3 before, and the
   * writer fails with its rejection. Until then the body is still received, into at most
   * `partsInFlight` parts waiting to be sent.
   */
  confirmation?: Promise<GatewayUploadState | void>;
  /** The body's length (Content-Length), when known: the staged segments are read back while it is received if it fills a part. */
  bodyLength?: number;
}

/** Where one PATCH stands: what the workflow recorded, and what this request has sent since. */
interface Position {
  offset: number;
  partsCompleted: number;
  /** The bytes parts 1..partsCompleted cover. */
  partsBytes: number;
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

/** The most recent full part of a request, not sent yet (parts of varying size). */
interface HeldPart {
  buffer: Buffer;
  /** Its bytes: a part size, and the remainder once folded in. */
  length: number;
  /** Where the request stood before it: `pending` goes back there when it is sent. */
  before: Position;
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
  /** The part being received: staged bytes first (read back from S3 when it is sent), then new ones. */
  private current: Buffer | undefined;
  /** The staged segments being read back into `current`, started with the request when its body fills a part. */
  private readingStaged: Promise<void> | undefined;
  /** Bytes of the current part so far, staged ones included. */
  private filled: number;
  /**
   * The last full part, held back until 5 MiB more arrived or the body ended (parts of varying size).
   * While it is held, `pending` stands after it (its fingerprint not yet extended) and nothing is staged.
   */
  private held: HeldPart | undefined;
  /** Segments folded into parts S3 has: deleted once recorded. */
  private obsolete: StagedSegment[] = [];
  /** Segments this request put (under keys naming their byte ranges). */
  private putHere: StagedSegment[] = [];
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
  private readonly buffers: PartBuffers;
  /** The run takes parts of varying size: the remainder of a PATCH is folded into its last part. */
  private readonly varyingParts: boolean;
  /** Bytes of a part buffer. */
  private readonly capacity: number;

  constructor(
    private readonly options: ChunkWriterOptions,
    private readonly tenant: string,
    state: GatewayUploadState,
    private readonly behaviour: WriterBehaviour = { recordEachPart: true },
  ) {
    this.committed = {
      offset: state.offset,
      partsCompleted: state.partsCompleted,
      partsBytes: partsBytesOf(state),
      fingerprint: state.fingerprint,
      staged: [...state.staged],
    };
    this.sent = { ...this.committed, staged: [...state.staged] };
    this.pending = { ...this.committed, staged: [...state.staged] };
    this.latest = state;
    this.stagingPrefix = stagingPrefixOf(state.tenant, state.uploadId);
    this.recordIntervalMs = options.recordIntervalMs ?? 1000;
    this.partsInFlight = Math.max(1, options.partsInFlight ?? DEFAULT_TUS_PARTS_IN_FLIGHT);
    this.buffers = options.buffers ?? new PartBuffers(this.partsInFlight + 1, { shared: true });
    this.varyingParts = state.partsBytes !== undefined && !options.equalParts;
    this.capacity = this.varyingParts ? state.partSize + MIN_PART_BYTES : state.partSize;
    this.filled = this.stagedBytes();
  }

  private get partSize(): number {
    return this.latest.partSize;
  }

  private stagedBytes(): number {
    return this.pending.offset - this.pending.partsBytes;
  }

  /** Bytes of this request not yet in a part or a segment. */
  private get freshBytes(): number {
    return this.filled - this.stagedBytes();
  }

  async push(chunk: Buffer): Promise<void> {
    // The request's earlier pieces are garbage by now (copied into part buffers): see heap-settings.ts.
    bodyBytesReceived(chunk.length);
    if (this.failure) throw this.failure.error;
    const { length } = this.latest;
    if (length !== undefined && this.pending.offset + this.freshBytes + chunk.length > length) {
      throw new UploadTooLargeError(`the body goes beyond the upload's length of ${length} bytes`);
    }
    for (let from = 0; from < chunk.length;) {
      if (!this.current) {
        // Beside a held part, the next buffer waits for a free slot: (parts in flight + 1) buffers at most.
        if (this.held) await this.freeSlot();
        this.current = this.buffers.take(this.capacity);
        this.startReadingStaged(this.current);
      }
      const copied = chunk.copy(this.current, this.filled, from, Math.min(chunk.length, from + this.partSize - this.filled));
      this.filled += copied;
      from += copied;
      // 5 MiB after a held part: it is not the PATCH's last, so nothing will be folded into it.
      if (this.held && this.filled >= MIN_PART_BYTES) await this.sendHeld();
      if (this.filled === this.partSize) await (this.varyingParts ? this.holdPart() : this.sendPart());
    }
  }

  /** Waits for the confirmation of the starting state (see {@link WriterBehaviour.confirmation}); takes the workflow's state when it comes with one. */
  private async confirmed(): Promise<void> {
    const state = await this.behaviour.confirmation;
    if (state && this.latest.multipartUploadId === undefined) this.latest = state;
  }

  /** Ends the request: sends the last part or stages the remainder, records, deletes folded segments. */
  async finish(): Promise<GatewayUploadState> {
    await this.confirmed();
    const { length } = this.latest;
    if (this.held) await this.foldRemainder();
    const total = this.pending.offset + this.freshBytes;
    if (length !== undefined && total === length) {
      // The last part, unless every byte is in a part already (a zero-byte upload has one empty part).
      if (this.pending.partsBytes < length || this.pending.partsCompleted === 0) await this.sendPart();
      await this.settle();
    } else if (this.freshBytes > 0) {
      // The tail is put while the parts before it are on their way (it lies after them, under a key
      // of its own); it counts as sent once they all are.
      const [settled, staged] = await Promise.allSettled([this.settle(), this.stage()]);
      if (settled.status === 'rejected') throw settled.reason;
      if (staged.status === 'rejected') throw staged.reason;
      this.sent = { ...this.pending, staged: [...this.pending.staged] };
    } else {
      await this.settle();
    }
    if (this.ahead()) await this.record();
    return this.latest;
  }

  /** Waits for the parts in flight, ignoring their failure: the request is failing anyway. */
  async abandon(): Promise<void> {
    await this.settle().catch(() => undefined);
    await this.readingStaged?.catch(() => undefined);
    this.readingStaged = undefined;
    if (this.current) this.buffers.give(this.current);
    this.current = undefined;
    if (this.held) this.buffers.give(this.held.buffer);
    this.held = undefined;
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

  /**
   * Starts reading the staged segments back into `buffer` (the first part of this request) when the
   * body is known to fill it, so that S3's answer overlaps receiving the body instead of delaying
   * the part. Nothing is read before the state is confirmed.
   */
  private startReadingStaged(buffer: Buffer): void {
    const { bodyLength } = this.behaviour;
    if (this.pending.staged.length === 0 || bodyLength === undefined) return;
    const fills = this.stagedBytes() + bodyLength >= this.partSize || this.pending.offset + bodyLength === this.latest.length;
    if (!fills) return;
    this.readingStaged = (async () => {
      await this.confirmed();
      await this.readStagedInto(buffer);
    })();
    // Awaited before the buffer is sent or given back; a failure fails the request there.
    this.readingStaged.catch(() => undefined);
  }

  /** Waits for the read-back started into `current`, if any; true when there was one. */
  private async stagedRead(): Promise<boolean> {
    const reading = this.readingStaged;
    this.readingStaged = undefined;
    if (!reading) return false;
    await reading;
    return true;
  }

  /**
   * Reads the staged segments back from S3 into the start of `buffer`, checking their lengths.
   * Each response chunk is copied straight to its place in the part: no array of the whole
   * segment is assembled first (with 8 MiB PATCHes that was ~3 MiB of garbage per PATCH, and the
   * garbage collector was the gateway's largest cost in that row). Bytes beyond the recorded
   * length are counted, never written.
   */
  private async readStagedInto(buffer: Buffer): Promise<void> {
    const base = this.pending.partsBytes;
    for (const segment of this.pending.staged) {
      const key = stagedSegmentKey(this.stagingPrefix, segment);
      const object = await this.options.s3.send(new GetObjectCommand({ Bucket: this.latest.bucket, Key: key }));
      const expected = segment.end - segment.start;
      const at = segment.start - base;
      let received = 0;
      for await (const chunk of object.Body as AsyncIterable<Uint8Array>) {
        if (received + chunk.length <= expected) buffer.set(chunk, at + received);
        received += chunk.length;
      }
      if (received !== expected) throw new Error(`staged segment ${key} has ${received} bytes, but ${expected} were recorded`);
    }
  }

  /**
   * Sends the current part — the staged bytes, read back from S3, and the new ones — once a slot is
   * free; returns while it is being sent. Its buffer is reused once S3 answered.
   */
  private async sendPart(): Promise<void> {
    const buffer = await this.assemblePart();
    try {
      await this.startPart(buffer, buffer.subarray(0, this.filled));
    } catch (error) {
      this.buffers.give(buffer);
      throw error;
    }
    this.filled = 0;
  }

  /** The current part's buffer with the staged bytes read back into its start; given back if that fails. */
  private async assemblePart(): Promise<Buffer> {
    const read = this.current !== undefined;
    const buffer = this.current ?? this.buffers.take(this.capacity);
    this.current = undefined;
    try {
      const prefetched = read && (await this.stagedRead());
      if (!prefetched && this.pending.staged.length > 0) {
        await this.confirmed();
        await this.readStagedInto(buffer);
      }
    } catch (error) {
      this.buffers.give(buffer);
      throw error;
    }
    return buffer;
  }

  /**
   * Holds the current (full) part back instead of sending it: the PATCH may end before 5 MiB more
   * arrive, and those bytes then go into it. `pending` moves past it (so the staged segments it
   * holds are no longer staged); its fingerprint is extended once it is sent.
   */
  private async holdPart(): Promise<void> {
    const buffer = await this.assemblePart();
    const before = this.pending;
    const end = before.partsBytes + this.filled;
    this.held = { buffer, length: this.filled, before };
    this.pending = { offset: end, partsBytes: end, partsCompleted: before.partsCompleted + 1, fingerprint: before.fingerprint, staged: [] };
    this.filled = 0;
  }

  /** Sends the held part as it is (a slot is free: see `push`). */
  private async sendHeld(): Promise<void> {
    const held = this.held!;
    this.held = undefined;
    this.pending = held.before;
    try {
      await this.startPart(held.buffer, held.buffer.subarray(0, held.length));
    } catch (error) {
      this.buffers.give(held.buffer);
      throw error;
    }
  }

  /**
   * The body ended fewer than 5 MiB after the held part: those bytes (all new, nothing was staged
   * since) are appended to it, and it is sent as the PATCH's last part.
   */
  private async foldRemainder(): Promise<void> {
    const held = this.held!;
    const current = this.current;
    if (current) {
      current.copy(held.buffer, held.length, 0, this.filled);
      held.length += this.filled;
      this.current = undefined;
      this.filled = 0;
      this.buffers.give(current);
    }
    await this.sendHeld();
  }

  private async startPart(buffer: Buffer, body: Buffer): Promise<void> {
    const partNumber = this.pending.partsCompleted + 1;
    const algorithm = this.latest.checksumAlgorithm ?? 'CRC32C';
    const checksum = await partChecksum(algorithm, body);
    const part: PartInFlight = {
      after: {
        offset: this.pending.partsBytes + body.length,
        partsCompleted: partNumber,
        partsBytes: this.pending.partsBytes + body.length,
        fingerprint: extendPartsFingerprint(this.pending.fingerprint, partNumber, checksum),
        staged: [],
      },
      folded: this.pending.staged,
      state: 'sending',
      job: Promise.resolve(),
    };
    this.pending = part.after;
    // Backpressure: the request is not read further while every slot is busy.
    await this.freeSlot();
    // Sent once the starting state is confirmed; the next part is received meanwhile.
    part.job = this.confirmed()
      .then(() =>
        this.options.s3.send(
          payloadSignature(
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
          ),
        ),
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
      )
      .finally(() => this.buffers.give(buffer));
    this.inflight.push(part);
  }

  /** Waits until fewer than `partsInFlight` parts are on their way; throws the first failure. */
  private async freeSlot(): Promise<void> {
    for (let busy = this.busy(); busy.length >= this.partsInFlight && !this.failure; busy = this.busy()) await Promise.race(busy);
    if (this.failure) throw this.failure.error;
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

  /**
   * Stages the new bytes as a segment; beyond MAX_STAGED_SEGMENTS, folds all staged bytes into one.
   * Moves `pending` (not `sent`: parts before the segment may still be on their way).
   */
  private async stage(): Promise<void> {
    await this.confirmed();
    const end = this.pending.offset + this.freshBytes;
    let segment: StagedSegment;
    let body: Buffer;
    let folded: StagedSegment[] = [];
    const buffer = this.current!;
    this.current = undefined;
    // A read-back started for a body that then ended early: its bytes are needed only to fold.
    const reading = this.stagedRead();
    if (this.pending.staged.length + 1 > MAX_STAGED_SEGMENTS) {
      if (!(await reading.catch(() => false))) await this.readStagedInto(buffer);
      body = buffer.subarray(0, this.filled);
      segment = { start: this.pending.partsBytes, end };
      folded = this.pending.staged;
    } else {
      await reading.catch(() => undefined);
      body = buffer.subarray(this.stagedBytes(), this.filled);
      segment = { start: this.pending.offset, end };
    }
    await this.putSegment(segment, body).finally(() => this.buffers.give(buffer));
    this.pending = { ...this.pending, offset: end, staged: [...(folded.length ? [] : this.pending.staged), segment] };
    this.obsolete.push(...folded);
  }

  /**
   * After the workflow refused this request's record: deletes the segments this request put that
   * the upload does not count (best effort). Without it, a PATCH written from a remembered state
   * after the upload was cancelled elsewhere (Temporal UI, CLI) left its segment under the staging
   * prefix, which the saga's compensation had already cleared. A segment the upload's state names
   * is kept: keys name byte ranges, so an earlier request may have put and recorded the same key.
   */
  async discardUnrecorded(): Promise<void> {
    if (this.putHere.length === 0) return;
    const state = await this.options.uploads.state(this.tenant, this.latest.uploadId).catch(() => undefined);
    if (!state) return;
    const putHere = this.putHere;
    this.putHere = [];
    await this.deleteSegments(putHere, state.outcome === 'running' ? state.staged : []);
  }

  /** Deletes `segments` except those whose keys `kept` names (best effort: failures are ignored). */
  private async deleteSegments(segments: StagedSegment[], kept: StagedSegment[]): Promise<void> {
    const keep = new Set(kept.map((s) => stagedSegmentKey(this.stagingPrefix, s)));
    const keys = segments.map((s) => stagedSegmentKey(this.stagingPrefix, s)).filter((k) => !keep.has(k));
    if (keys.length === 0) return;
    await this.options.s3
      .send(new DeleteObjectsCommand({ Bucket: this.latest.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }))
      .catch(() => undefined);
  }

  private async putSegment(segment: StagedSegment, body: Buffer): Promise<void> {
    this.putHere.push(segment);
    await this.options.s3.send(
      payloadSignature(
        new PutObjectCommand({
          Bucket: this.latest.bucket,
          Key: stagedSegmentKey(this.stagingPrefix, segment),
          Body: body,
          ContentLength: body.length,
          ChecksumAlgorithm: 'CRC32C',
          ChecksumCRC32C: await partChecksum('CRC32C', body),
        }),
      ),
    );
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
    // A run of equal parts (no `partsBytes` in its state) is told nothing of parts' bytes.
    const { partsBytes, ...equal } = position;
    const record: ChunkRecord = { from, ...equal, ...(this.latest.partsBytes !== undefined ? { partsBytes } : {}) };
    this.latest = await this.options.uploads.recordChunk(this.tenant, this.latest.uploadId, record);
    this.committed = position;
    this.lastRecordAt = Date.now();
    // Not awaited: the answer does not depend on it, and a segment left behind is deleted with the
    // staging prefix when the saga ends. No later segment can have one of these keys: they lie
    // below the recorded parts, and keys name their byte ranges.
    void this.deleteSegments(obsolete, this.committed.staged);
  }
}
