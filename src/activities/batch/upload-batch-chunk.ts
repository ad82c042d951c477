/**
 * upload-batch-chunk: stores one page of a batch's small files, each with ONE PutObject carrying
 * its checksum (S3 validates it on receipt), at most `fileConcurrency` at once.
 *
 * Per file, the guarantees of the small-file fast path (put-object.ts): the source is opened
 * through the worker's resolver (allowed roots, links, hard links), its size must be the one
 * listed, its version the one listed and unchanged across the read, and what S3 stored must echo the
 * checksum sent. A file that fails any of these is a listed failure; nothing of it stays.
 *
 * In order, so that everything this chunk may write can be found and undone:
 * 1. reserve the chunk's bytes on the tenant's quota (one reservation per chunk, idempotent);
 * 2. write the chunk's manifest (the keys it may write) under the saga's reserved prefix;
 * 3. store the files; every object carries its batch's mark (metadata), and undo deletes only
 *    marked objects (undo-batch.ts);
 * 4. independent mode: lower the reservation to the bytes stored (when a file failed) and commit it.
 *
 * Resume: heartbeat details (at most one a second) name the files stored and failed. A retried
 * chunk (a worker killed, a store outage) skips them, and before sending any other file it asks
 * the store whether the object is already there with this batch's mark, size and checksum (a file
 * stored after the last heartbeat): no stored file is sent twice.
 *
 * Atomic mode: every PutObject carries `If-None-Match: *` (an atomic batch never replaces an object
 * it could not restore), and any file failure fails the chunk for good: the batch undoes itself.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import {
  BATCH_MARK_METADATA,
  batchMark,
  chunkManifestKey,
  chunkReservationId,
  type BatchFile,
  type BatchFileFailure,
  type BatchMode,
} from '../../batch/batch-types';
import { permanentFailure, UploadFailureType } from '../../upload/errors';
import type { ChecksumAlgorithm } from '../../upload/request-types';
import { checksumField, partChecksum } from '../../s3/checksums';
import { isS3Error, s3Failure } from '../../s3/classify-error';
import { putSmallObject } from '../../s3/direct-put-object';
import { headObjectIfPresent } from '../../s3/head-object';
import { throttledHeartbeat } from '../throttled-heartbeat';
import type { UploadActivityDeps } from '../deps';
import { sourceVersionMatches } from '../sources/byte-source';

export interface UploadBatchChunkInput {
  tenant: string;
  batchId: string;
  mode: BatchMode;
  bucket: string;
  /** The chunk's number in the batch (0, 1, …): names its reservation and manifest. */
  chunk: number;
  files: BatchFile[];
  checksumAlgorithm: ChecksumAlgorithm;
  contentType: string;
  fileConcurrency: number;
}

export interface UploadBatchChunkResult {
  filesStored: number;
  bytesStored: number;
  /** Files stored by an earlier attempt, found in the store and not sent again. */
  filesFoundStored: number;
  failures: BatchFileFailure[];
}

/** Heartbeat details: positions (in `files`) stored and failed so far. */
export interface UploadBatchChunkProgress {
  stored: number[];
  bytesStored: number;
  failures: (BatchFileFailure & { position: number })[];
}

/** The shortest interval between two heartbeats of a chunk while it stores files. */
const HEARTBEAT_EVERY_MS = 1000;

/**
 * The largest file a lane reads ahead, while it sends the one before: a chunk holds at most
 * `fileConcurrency` files being sent and as many of up to this size read ahead.
 */
const READ_AHEAD_MAX_BYTES = 1024 * 1024;

/** A file read and checked, ready to send. */
interface ReadFile {
  body: Buffer;
  /** Its checksum, base64. */
  value: string;
}

/** A file failure that is the file's, not the store's: listed, never retried. */
function isFileFailure(err: unknown): err is ApplicationFailure {
  return err instanceof ApplicationFailure && err.nonRetryable === true;
}

export function uploadBatchChunkActivity(deps: UploadActivityDeps) {
  return async function uploadBatchChunk(input: UploadBatchChunkInput): Promise<UploadBatchChunkResult> {
    const context = Context.current();
    const signal = context.cancellationSignal;
    const { bucket, tenant, batchId } = input;
    const mark = batchMark(tenant, batchId);
    const earlier = context.info.heartbeatDetails as UploadBatchChunkProgress | undefined;
    const progress: UploadBatchChunkProgress = {
      stored: [...(earlier?.stored ?? [])],
      bytesStored: earlier?.bytesStored ?? 0,
      failures: [...(earlier?.failures ?? [])],
    };
    const settled = new Set([...progress.stored, ...progress.failures.map((f) => f.position)]);
    const retried = context.info.attempt > 1;
    const reservation = { tenant, uploadId: chunkReservationId(batchId, input.chunk) };

    const bytesReserved = input.files.reduce((sum, f) => sum + f.size, 0);
    // The reservation and the manifest come before any file is sent. Reading files writes nothing,
    // so it need not wait for them: each lane reads its first file meanwhile.
    const ready = (async () => {
      await deps.quota.reserve({ ...reservation, bytes: bytesReserved });
      try {
        await deps.s3.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: chunkManifestKey(tenant, batchId, input.chunk),
            Body: JSON.stringify({ batch: mark, keys: input.files.map((f) => f.key) }),
            ContentType: 'application/json',
          }),
          { abortSignal: signal },
        );
      } catch (err) {
        if (signal.aborted) throw new CancelledFailure('upload-batch-chunk was cancelled');
        throw s3Failure(`PutObject ${chunkManifestKey(tenant, batchId, input.chunk)}`, err);
      }
    })();
    ready.catch(() => undefined); // awaited after the lanes, which only wait for it

    let foundStored = 0;
    /** Reads one file and checks it against its listing (no request to the store): its bytes and their checksum. */
    const readFile = async (file: BatchFile): Promise<ReadFile> => {
      const source = await deps.sources.open({ type: 'file', path: file.path });
      let body: Buffer;
      try {
        const before = source.statAtOpen ?? (await source.stat());
        if (before.size !== file.size)
          throw permanentFailure(UploadFailureType.SourceChanged, `${file.path} has ${before.size} bytes, but ${file.size} were listed`);
        if (file.version !== undefined && !sourceVersionMatches(file.version, before.version))
          throw permanentFailure(
            UploadFailureType.SourceChanged,
            `${file.path} was rewritten after it was listed (same size, another version)`,
          );
        body = await source.read(0, file.size);
        if (!sourceVersionMatches(before.version, (await source.stat()).version))
          throw permanentFailure(UploadFailureType.SourceChanged, `${file.path} changed while it was read`);
      } finally {
        await source.close();
      }
      return { body, value: await partChecksum(input.checksumAlgorithm, body) };
    };
    const field = checksumField(input.checksumAlgorithm);
    /** Stores one file read by readFile; resolves when it is in the store (sent now or found there). */
    const sendFile = async (file: BatchFile, { body, value }: ReadFile): Promise<void> => {
      const isOurs = async () => {
        const head = await headObjectIfPresent(deps.s3, { bucket, key: file.key }, signal);
        return (
          head !== undefined && head.Metadata?.[BATCH_MARK_METADATA] === mark && head.ContentLength === file.size && head[field] === value
        );
      };
      if (retried && (await isOurs())) {
        foundStored++;
        return;
      }
      try {
        const put = await putSmallObject(
          deps.s3,
          {
            bucket,
            key: file.key,
            body,
            contentType: input.contentType,
            metadata: { [BATCH_MARK_METADATA]: mark },
            checksumAlgorithm: input.checksumAlgorithm,
            checksum: value,
            ifNoneMatch: input.mode === 'atomic',
          },
          signal,
        );
        // S3 validated the checksum on receipt; the echo proves it is the one of these bytes.
        const echoed = put.checksum;
        if (echoed !== undefined && echoed !== value)
          throw permanentFailure(UploadFailureType.ChecksumMismatch, `s3://${bucket}/${file.key} stored ${echoed}, but ${value} was sent`);
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        if (input.mode === 'atomic' && isS3Error(err, 'PreconditionFailed', 'Http412')) {
          if (await isOurs()) return;
          throw permanentFailure(
            UploadFailureType.ObjectAlreadyExists,
            `s3://${bucket}/${file.key} already exists; an atomic batch never replaces an object`,
          );
        }
        // Retryable store errors retry the chunk; permanent ones (an S3 error about this key) are the file's.
        throw s3Failure(`PutObject s3://${bucket}/${file.key}`, err);
      }
    };

    // Heartbeats at most every HEARTBEAT_EVERY_MS, and once more at the end.
    const throttled = throttledHeartbeat(context, HEARTBEAT_EVERY_MS);
    const beat = () => throttled(progress);
    const pending = input.files.map((file, position) => ({ file, position })).filter(({ position }) => !settled.has(position));
    let next = 0;
    let storeError: unknown;
    /** The next pending file, its read started; undefined when there is none or the chunk stops. */
    const take = (): { file: BatchFile; position: number; read: Promise<ReadFile> } | undefined => {
      if (storeError !== undefined || signal.aborted || next >= pending.length) return undefined;
      const { file, position } = pending[next++]!;
      const read = readFile(file);
      read.catch(() => undefined); // settled by its lane, or dropped unsent when the chunk stops
      return { file, position, read };
    };
    const lane = async () => {
      let current = take();
      try {
        await ready;
      } catch {
        return; // the chunk fails with ready's error, below
      }
      while (current !== undefined && storeError === undefined && !signal.aborted) {
        const { file, position, read } = current;
        // Read ahead: the lane's next file is opened, read and checked while this one is sent.
        const ahead = next < pending.length && pending[next]!.file.size <= READ_AHEAD_MAX_BYTES ? take() : undefined;
        try {
          await sendFile(file, await read);
          progress.stored.push(position);
          progress.bytesStored += file.size;
        } catch (err) {
          if (isFileFailure(err)) {
            progress.failures.push({ position, path: file.path, key: file.key, type: err.type ?? 'Failed', message: err.message });
          } else storeError ??= err;
        }
        beat();
        current = ahead ?? take();
      }
    };
    await Promise.all(Array.from({ length: Math.min(input.fileConcurrency, pending.length) }, lane));
    await ready;
    context.heartbeat(progress);
    if (signal.aborted) throw new CancelledFailure('upload-batch-chunk was cancelled', [progress]);
    if (storeError !== undefined) throw s3Failure(`storing chunk ${input.chunk} of batch ${batchId}`, storeError);
    const failures = progress.failures.map(({ position: _, ...failure }) => failure);
    if (input.mode === 'atomic' && failures.length > 0) {
      const first = failures[0]!;
      throw ApplicationFailure.create({
        type: first.type,
        nonRetryable: true,
        message: `${first.path}: ${first.message}${failures.length > 1 ? ` (and ${failures.length - 1} more files of chunk ${input.chunk})` : ''}; the atomic batch is undone`,
        details: [failures],
      });
    }
    if (input.mode === 'independent') {
      // Every file stored (the usual case): the reservation is already exact, one ledger round trip fewer.
      if (progress.bytesStored < bytesReserved) await deps.quota.shrink?.({ ...reservation, bytes: progress.bytesStored });
      await deps.quota.commit(reservation);
    }
    return { filesStored: progress.stored.length, bytesStored: progress.bytesStored, filesFoundStored: foundStored, failures };
  };
}
