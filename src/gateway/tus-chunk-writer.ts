/**
 * Writing one PATCH's bytes with memory bounded by two parts: every time staged bytes plus new
 * ones fill a part, the part is assembled (staged segments read back from S3, then the new bytes)
 * and sent with UploadPart and its checksum while the next part is received; bytes that do not
 * fill a part are staged as one segment object under the upload's staging prefix. What S3 has is
 * proposed to the workflow with `recordChunk`.
 *
 * Invariant: the workflow's recorded position is the truth. Bytes sent but never recorded are
 * overwritten by a retry (same part number, same segment key); folded segments are deleted only
 * once the part that holds their bytes is recorded.
 */
import { DeleteObjectsCommand, GetObjectCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { checksumField, partChecksum } from '../s3/checksums';
import { extendPartsFingerprint } from '../s3/parts-fingerprint';
import { MAX_STAGED_SEGMENTS, partCountOf, stagedSegmentKey, type GatewayUploadState, type StagedSegment } from '../upload/gateway-upload';
import { stagingPrefixOf } from '../upload/staging';
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
export class ChunkWriter {
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
