/**
 * upload-parts: moves one batch of parts (the workflow calls it once per batch, so a 10,000-part
 * upload costs a few dozen history events, not tens of thousands).
 *
 * - The first batch creates the multipart upload and heartbeats its id at once: if the activity
 *   dies right after, the retry (heartbeat details) and the compensation (failure details, last
 *   heartbeat) both know which upload to continue or abort. A create whose answer was lost leaves
 *   an upload nobody knows; the next create aborts it (s3/create-multipart-upload.ts).
 * - A retry resumes: parts S3 already lists with the right size are skipped, so at most the
 *   parts that were in flight are sent again.
 * - Memory is bounded: each of `partConcurrency` workers holds one part, so about
 *   partSize × partConcurrency, whatever the file size; the part buffers are reused from part to
 *   part (src/s3/part-buffers.ts), so a large file does not allocate and collect one per part.
 * - Each part carries an additional checksum S3 verifies on receipt, so a part corrupted in
 *   flight is rejected (BadDigest), never stored. The batch returns a fingerprint of those
 *   checksums (44 bytes), which verify compares with what S3 lists.
 * - A source in the destination store itself (`transfer: 'server-side-copy'`) is not read at all:
 *   each part is an UploadPartCopy of its range, conditional on the source's ETag. Such parts carry
 *   no additional checksum (see upload/integrity.ts); the fingerprint is over their ETags.
 * - Cancellation (delivered through heartbeats) aborts in-flight requests and stops the batch.
 * - Pause (src/upload/pause.ts): the activity asks its workflow's `pauseState` (deps.pauses) at
 *   the start and every few seconds; once paused it starts no part, lets the parts in flight
 *   finish, and returns `paused: true` without a fingerprint. The workflow runs the batch again
 *   after resume, which skips what S3 already has.
 * - Every heartbeat also publishes the upload's bytes on the progress bus when the worker has one
 *   (`deps.progress`, src/progress/publisher.ts): queued, never awaited, never thrown.
 * - Heartbeats tick on a timer, not per part: the heartbeat timeout detects a dead worker, and
 *   a part slower than it on a slow link is not mistaken for one. Stalls are the S3 client's to
 *   detect (its idle timeout), see connections.ts.
 */
import { multipartUploadIdOf, type CarriesMultipartUploadId } from '../upload/wire-names';
import { UploadPartCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { permanentFailure, UploadFailureType } from '../upload/errors';
import { partRange, type PartPlan } from '../upload/part-plan';
import type { MultipartChecksumType, TransferMode } from '../upload/integrity';
import type { ChecksumAlgorithm, SourceDescriptor } from '../upload/request';
import type { UploadActivityDeps } from './deps';
import { sourceVersionMatches } from './sources/byte-source';
import { bareETag, checksumField, checksumFingerprint, partChecksum } from '../s3/checksums';
import { s3Failure } from '../s3/classify-error';
import { listAllParts } from '../s3/list-parts';
import { createMultipartUpload } from '../s3/create-multipart-upload';
import { runPool } from './worker-pool';
import { PartBuffers } from '../s3/part-buffers';
import { activityObservation } from '../progress/activity-progress';
import { withStamp } from '../upload/object-stamp';

export interface UploadPartsInput {
  bucket: string;
  key: string;
  /** S3's id of the multipart upload; absent on the first batch: the activity creates it. Read with multipartUploadIdOf (recorded inputs name it `uploadId`). */
  multipartUploadId?: string;
  source: SourceDescriptor;
  sourceVersion: string;
  plan: Pick<PartPlan, 'size' | 'partSize' | 'partCount'>;
  firstPart: number;
  lastPart: number;
  partConcurrency: number;
  /** The additional checksum every part carries. Absent: none (server-side copies). */
  checksumAlgorithm?: ChecksumAlgorithm;
  /** The multipart upload's checksum type. @default S3's default for the algorithm (inputs from before full-object checksums) */
  checksumType?: MultipartChecksumType;
  /** How the parts get there (decided by inspect-source). @default 'stream' (inputs from before server-side copies) */
  transfer?: TransferMode;
  contentType: string;
  metadata: Record<string, string>;
}

/** What the activity heartbeats: enough to resume, to abort, and to show progress. */
export interface UploadPartsProgress {
  /** S3's id of the multipart upload. */
  multipartUploadId: string;
  firstPart: number;
  lastPart: number;
  /** Parts of this batch present in S3 (skipped + uploaded). */
  partsDone: number;
  /** Bytes of this batch present in S3. */
  bytesDone: number;
  /** Bytes this attempt actually sent (resume efficiency); server-side copies send none. */
  bytesSent: number;
}

export interface UploadPartsResult {
  /** S3's id of the multipart upload (read with multipartUploadIdOf: recorded results name it `uploadId`). */
  multipartUploadId: string;
  /** {@link checksumFingerprint} of this batch's parts, for verify. */
  checksumFingerprint: string;
  partsUploaded: number;
  partsSkipped: number;
  bytesSent: number;
  batchBytes: number;
  /**
   * The upload was paused: the batch stopped after its parts in flight, is incomplete and its
   * `checksumFingerprint` empty; the workflow runs it again once resumed. Absent otherwise.
   */
  paused?: true;
}

/** Details attached to every failure of this activity, for the compensation. */
export interface UploadPartsFailureDetails {
  /** S3's id of the multipart upload, when it was open (read with multipartUploadIdOf). */
  multipartUploadId?: string;
}

function heartbeatMultipartUploadId(): string | undefined {
  return multipartUploadIdOf(Context.current().info.heartbeatDetails as CarriesMultipartUploadId | undefined);
}

export function uploadPartsActivity(deps: UploadActivityDeps) {
  return async function uploadParts(input: UploadPartsInput): Promise<UploadPartsResult> {
    const ctx = Context.current();
    const signal = ctx.cancellationSignal;
    const target = { bucket: input.bucket, key: input.key };
    let multipartUploadId = multipartUploadIdOf(input) ?? heartbeatMultipartUploadId();
    // A multipart upload created by this very attempt has no parts yet: no need to list them.
    let createdNow = false;
    let ticker: NodeJS.Timeout | undefined;
    let pausePoll: NodeJS.Timeout | undefined;
    // Whether the workflow is paused, as last asked; never asked without deps.pauses.
    let paused = false;
    const askPaused = async () => {
      const workflowId = ctx.info.workflowExecution?.workflowId;
      if (!deps.pauses || !workflowId) return;
      paused = await deps.pauses.isPaused(workflowId).catch(() => paused);
    };

    try {
      if (!multipartUploadId) {
        const created = await createMultipartUpload(
          deps.s3,
          {
            Bucket: input.bucket,
            Key: input.key,
            ContentType: input.contentType,
            Metadata: withStamp(input.metadata, ctx.info.workflowExecution?.workflowId ?? ''),
            ChecksumAlgorithm: input.checksumAlgorithm,
            // COMPOSITE is S3's default for the algorithms that allow it: only FULL_OBJECT is named.
            ...(input.checksumAlgorithm && input.checksumType === 'FULL_OBJECT' ? { ChecksumType: 'FULL_OBJECT' as const } : {}),
          },
          ctx.info.scheduledTimestampMs,
          signal,
        );
        if (created.abortedOrphans.length > 0)
          ctx.log.warn('aborted multipart uploads whose create answer was lost', {
            bucket: input.bucket,
            key: input.key,
            aborted: created.abortedOrphans,
          });
        multipartUploadId = created.multipartUploadId;
        createdNow = true;
      }
      const id = multipartUploadId;
      const progress: UploadPartsProgress = {
        multipartUploadId: id,
        firstPart: input.firstPart,
        lastPart: input.lastPart,
        partsDone: 0,
        bytesDone: 0,
        bytesSent: 0,
      };
      // Bytes before this batch: batches run one after another over consecutive parts.
      const batchOffset = partRange(input.plan, input.firstPart).offset;
      const beat = () => {
        ctx.heartbeat(progress);
        if (!deps.progress) return;
        const observation = activityObservation(ctx.info, {
          phase: 'upload-parts',
          outcome: 'running',
          bytes: batchOffset + progress.bytesDone,
          totalBytes: input.plan.size,
        });
        if (observation) deps.progress.publish(observation);
      };
      beat();
      // Heartbeats say "this worker is alive", so they must not wait for a part to finish: on a
      // slow link one part can take longer than the heartbeat timeout, and a timed-out attempt
      // would keep running here while its retry starts. A stalled connection is cut by the S3
      // client's idle timeout (S3_IDLE_TIMEOUT_MS) and fails this attempt, retryably.
      ticker = setInterval(beat, heartbeatIntervalMs(ctx.info.heartbeatTimeoutMs));

      const source = await deps.sources.open(input.source);
      try {
        const stat = await source.stat();
        if (!sourceVersionMatches(input.sourceVersion, stat.version)) {
          throw permanentFailure(
            UploadFailureType.SourceChanged,
            `${source.description} changed since the upload started (its size, modification or change time differ)`,
          );
        }

        const copier = input.transfer === 'server-side-copy' ? source.serverSideCopy : undefined;
        if (input.transfer === 'server-side-copy' && !copier) {
          throw permanentFailure(
            UploadFailureType.SourceNotAllowed,
            `${source.description} was inspected as copyable inside the store, but this worker cannot copy it server-side`,
          );
        }
        const algorithm = input.checksumAlgorithm;
        const field = algorithm ? checksumField(algorithm) : undefined;
        const present = new Map<number, number>();
        const checksums = new Map<number, string>();
        for (const part of createdNow ? [] : await listAllParts(deps.s3, { ...target, multipartUploadId: id }, signal)) {
          if (part.PartNumber === undefined || part.Size === undefined) continue;
          present.set(part.PartNumber, part.Size);
          // A part an earlier attempt sent: S3 validated its checksum against the bytes on receipt
          // (without an additional checksum, its ETag stands in).
          const listed = field ? part[field] : bareETag(part.ETag);
          if (listed) checksums.set(part.PartNumber, listed);
        }
        const todo: number[] = [];
        let skipped = 0;
        for (let n = input.firstPart; n <= input.lastPart; n++) {
          const { length } = partRange(input.plan, n);
          if (present.get(n) === length && checksums.has(n)) {
            skipped++;
            progress.partsDone++;
            progress.bytesDone += length;
          } else {
            todo.push(n);
          }
        }
        beat();

        if (deps.pauses) {
          await askPaused();
          pausePoll = setInterval(() => void askPaused(), deps.pauses.pollMs ?? DEFAULT_PAUSE_POLL_MS);
        }
        let stoppedForPause = false;
        // The largest part is partSize, or the whole source when it is smaller.
        const partBytes = Math.min(input.plan.partSize, input.plan.size);
        // One buffer per part in flight; a buffer of a failed request is not given back (the batch stops).
        const buffers = new PartBuffers(input.partConcurrency);
        await runPool(todo, input.partConcurrency, async (partNumber) => {
          if (signal.aborted) throw new CancelledFailure('upload-parts was cancelled');
          if (paused) {
            stoppedForPause = true;
            return;
          }
          const { offset, length } = partRange(input.plan, partNumber);
          const partStartedAt = performance.now();
          if (copier && length > 0) {
            // The store copies the range; the worker sends a request, never the bytes.
            const copied = await copier.copyPart({ ...target, multipartUploadId: id, partNumber }, { offset, length }, signal);
            // In an upload with an additional checksum (S3_CHECKSUMMED_PART_COPY) the store computed the part's.
            const recorded = field ? copied.checksums[field] : bareETag(copied.etag);
            if (!recorded)
              throw new Error(`UploadPartCopy ${partNumber} of s3://${input.bucket}/${input.key} returned no ${field ?? 'ETag'}`);
            checksums.set(partNumber, recorded);
          } else {
            // (An empty source is one empty part, which no byte range can describe: it is sent.)
            const buffer = copier || length === 0 ? undefined : buffers.take(partBytes);
            const body = buffer ? await source.read(offset, length, buffer) : Buffer.alloc(0);
            const checksum = algorithm ? await partChecksum(algorithm, body) : undefined;
            const sent = await deps.s3.send(
              new UploadPartCommand({
                Bucket: input.bucket,
                Key: input.key,
                UploadId: id,
                PartNumber: partNumber,
                Body: body,
                ContentLength: length,
                ...(algorithm && field ? { ChecksumAlgorithm: algorithm, [field]: checksum } : {}),
              }),
              { abortSignal: signal },
            );
            const recorded = checksum ?? bareETag(sent.ETag);
            if (!recorded) throw new Error(`UploadPart ${partNumber} of s3://${input.bucket}/${input.key} returned no ETag`);
            checksums.set(partNumber, recorded);
            progress.bytesSent += length;
            // The request has settled: nothing reads the buffer any more.
            if (buffer) buffers.give(buffer);
          }
          deps.metrics?.partUploaded(copier ? 'copy' : 'upload', input.source.type, length, (performance.now() - partStartedAt) / 1000);
          progress.partsDone++;
          progress.bytesDone += length;
          beat();
        });

        if (stoppedForPause) {
          ctx.log.info('upload-parts stopped: the upload is paused', { partsDone: progress.partsDone, lastPart: input.lastPart });
          return {
            multipartUploadId: id,
            checksumFingerprint: '',
            partsUploaded: progress.partsDone - skipped,
            partsSkipped: skipped,
            bytesSent: progress.bytesSent,
            batchBytes: progress.bytesDone,
            paused: true,
          };
        }
        return {
          multipartUploadId: id,
          checksumFingerprint: checksumFingerprint(checksums, input.firstPart, input.lastPart),
          partsUploaded: todo.length,
          partsSkipped: skipped,
          bytesSent: progress.bytesSent,
          batchBytes: progress.bytesDone,
        };
      } finally {
        await source.close();
      }
    } catch (err) {
      if (signal.aborted)
        throw new CancelledFailure('upload-parts was cancelled', [{ multipartUploadId } satisfies UploadPartsFailureDetails]);
      const details: UploadPartsFailureDetails[] = [{ multipartUploadId }];
      if (err instanceof ApplicationFailure) {
        // Same failure, plus the upload id the compensation needs; keep any retry-after hint.
        const withDetails = ApplicationFailure.create({
          type: err.type ?? 'Error',
          message: err.message,
          nonRetryable: err.nonRetryable ?? false,
          details,
          cause: err,
        });
        throw Object.assign(withDetails, { retryAfterMs: (err as { retryAfterMs?: number }).retryAfterMs });
      }
      throw s3Failure(`upload parts ${input.firstPart}–${input.lastPart} of s3://${input.bucket}/${input.key}`, err, details);
    } finally {
      clearInterval(ticker);
      clearInterval(pausePoll);
    }
  };
}

/** How often a running batch asks whether its upload was paused, unless deps.pauses says otherwise. */
const DEFAULT_PAUSE_POLL_MS = 5_000;

/** A third of the heartbeat timeout (the SDK throttles to 80 % of it anyway), 10 s without one. */
function heartbeatIntervalMs(heartbeatTimeoutMs: number | undefined): number {
  return heartbeatTimeoutMs ? Math.max(1_000, Math.floor(heartbeatTimeoutMs / 3)) : 10_000;
}
