/**
 * copy-migration-chunk: copies one key range of a migration's source (see migration-listing.ts),
 * at most `objectConcurrency` objects at once, the way `sync` tools do, and verifies each copy.
 *
 * Per object, in key order:
 * - skipped when the destination already holds it: the same size and the same ETag (an ETag of a
 *   single-part object is its MD5), or — for a source stored in parts, whose ETag no copy can
 *   reproduce — the source's ETag in the copy's `upload-saga-source-etag` metadata;
 * - otherwise copied: in the worker's own store with one CopyObject (no byte through the worker;
 *   metadata and content headers kept by the store), elsewhere streamed GET → PutObject carrying
 *   the request's checksum (metadata and content headers carried over). Either way the read is
 *   conditional on the ETag listed (`If-Match`), so an object overwritten meanwhile fails as
 *   `SourceChanged` instead of copying another version than the one verified;
 * - verified: the copy's ETag must equal the source's (single-part sources), its size and mark must
 *   match (parted sources), and a streamed copy's checksum must be echoed. A copy that fails this is
 *   deleted and reported failed.
 *
 * Quota: the range's bytes are reserved when the chunk starts, lowered to the bytes copied and
 * committed when it ends (also when it is cancelled). Resume: heartbeats name the positions settled;
 * a retried chunk skips them, and finds any object copied after the last heartbeat by the skip rule
 * above: no copied object is copied again. The per-object report (JSONL, one object per chunk) is
 * written when the chunk ends.
 */
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import {
  MIGRATION_SOURCE_ETAG_METADATA,
  migratedKey,
  migrationReportKey,
  migrationReservationId,
  type MigrationFailure,
  type MigrationReportLine,
  type MigrationSource,
} from '../../migration/migration-types';
import { permanentFailure, UploadFailureType } from '../../upload/errors';
import type { ChecksumAlgorithm } from '../../upload/request-types';
import { ONE_PUT_MAX_BYTES } from '../../upload/one-put';
import { checksumField, partChecksum } from '../../s3/checksums';
import { isS3Error, s3Failure } from '../../s3/classify-error';
import { headObjectIfPresent } from '../../s3/head-object';
import { throttledHeartbeat } from '../throttled-heartbeat';
import type { UploadActivityDeps } from '../deps';
import { listRange, sourceStore, type ListedObject } from './migration-listing';
import { copySourceOf } from '../sources/s3-object';

export interface CopyMigrationChunkInput {
  tenant: string;
  migrationId: string;
  source: MigrationSource;
  destination: { bucket: string; prefix: string };
  /** The chunk's number (0, 1, …): names its reservation and report. */
  chunk: number;
  /** The range: keys after `after` (exclusive) up to `last` (inclusive). */
  after?: string;
  last: string;
  checksumAlgorithm: ChecksumAlgorithm;
  objectConcurrency: number;
}

export interface CopyMigrationChunkResult {
  objectsCopied: number;
  bytesCopied: number;
  objectsSkipped: number;
  bytesSkipped: number;
  failures: MigrationFailure[];
}

/** Heartbeat details: what happened to each object settled so far, by key. */
export interface CopyMigrationChunkProgress {
  settled: Record<string, { status: MigrationReportLine['status']; type?: string; message?: string }>;
}

/** The shortest interval between two heartbeats of a chunk while it copies. */
const HEARTBEAT_EVERY_MS = 1000;

/** The largest object one CopyObject copies. */
const COPY_OBJECT_MAX_BYTES = 5 * 1024 ** 3;

const isParted = (etag: string) => etag.includes('-');
const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');

/** A failure that is the object's (gone, changed, too large, refused), not the store's: reported, never retried. */
function isObjectFailure(err: unknown): err is ApplicationFailure {
  return err instanceof ApplicationFailure && err.nonRetryable === true;
}

export function copyMigrationChunkActivity(deps: UploadActivityDeps) {
  return async function copyMigrationChunk(input: CopyMigrationChunkInput): Promise<CopyMigrationChunkResult> {
    const context = Context.current();
    const signal = context.cancellationSignal;
    const { tenant, migrationId, source, destination } = input;
    const from = sourceStore(deps, source.profile);
    const sameStore = source.profile === undefined;
    const field = checksumField(input.checksumAlgorithm);
    const earlier = context.info.heartbeatDetails as CopyMigrationChunkProgress | undefined;
    const progress: CopyMigrationChunkProgress = { settled: { ...(earlier?.settled ?? {}) } };

    let objects: ListedObject[] = [];
    const existing = new Map<string, { size: number; etag: string }>();
    try {
      for await (const page of listRange(from, source.bucket, source.prefix, { after: input.after, last: input.last }, signal))
        objects = objects.concat(page);
      // The destination's objects of the same range, in one listing: a fresh destination costs no HEAD.
      // Key order is kept by the mapping (one prefix replaced by another): the range maps to a range.
      if (objects.length) {
        const range = {
          ...(input.after !== undefined ? { after: migratedKey(input, input.after) } : {}),
          last: migratedKey(input, objects.at(-1)!.key),
        };
        for await (const page of listRange(deps.s3, destination.bucket, destination.prefix, range, signal))
          for (const o of page) existing.set(o.key, { size: o.size, etag: o.etag });
      }
    } catch (err) {
      if (signal.aborted) throw new CancelledFailure('copy-migration-chunk was cancelled');
      throw s3Failure(`listing chunk ${input.chunk} of migration ${migrationId}`, err);
    }

    const reservation = { tenant, uploadId: migrationReservationId(migrationId, input.chunk) };
    await deps.quota.reserve({ ...reservation, bytes: objects.reduce((sum, o) => sum + o.size, 0) });
    const bytesOf = new Map(objects.map((o) => [o.key, o.size]));
    const bytesCopied = () =>
      Object.entries(progress.settled).reduce((sum, [key, s]) => sum + (s.status === 'copied' ? (bytesOf.get(key) ?? 0) : 0), 0);

    /** Whether the destination already holds this object (see the module comment). */
    const alreadyThere = async (
      object: ListedObject,
      key: string,
      listed: { size: number; etag: string } | undefined,
    ): Promise<boolean> => {
      if (!listed || listed.size !== object.size) return false;
      if (listed.etag === object.etag && !isParted(object.etag)) return true;
      if (!isParted(object.etag)) return false;
      const head = await headObjectIfPresent(deps.s3, { bucket: destination.bucket, key }, signal);
      return (
        head?.ContentLength === object.size &&
        (unquote(head.ETag) === object.etag || head.Metadata?.[MIGRATION_SOURCE_ETAG_METADATA] === object.etag)
      );
    };

    /** Content headers and metadata of the source object (parted sources and streamed copies carry them over themselves). */
    const contentOf = (
      head: {
        Metadata?: Record<string, string>;
        ContentType?: string;
        CacheControl?: string;
        ContentDisposition?: string;
        ContentEncoding?: string;
        ContentLanguage?: string;
        Expires?: Date;
      },
      object: ListedObject,
    ) => ({
      Metadata: { ...(head.Metadata ?? {}), ...(isParted(object.etag) ? { [MIGRATION_SOURCE_ETAG_METADATA]: object.etag } : {}) },
      ...(head.ContentType ? { ContentType: head.ContentType } : {}),
      ...(head.CacheControl ? { CacheControl: head.CacheControl } : {}),
      ...(head.ContentDisposition ? { ContentDisposition: head.ContentDisposition } : {}),
      ...(head.ContentEncoding ? { ContentEncoding: head.ContentEncoding } : {}),
      ...(head.ContentLanguage ? { ContentLanguage: head.ContentLanguage } : {}),
      ...(head.Expires ? { Expires: head.Expires } : {}),
    });

    /** Reads of the source: a 404 or 412 is the object's failure (gone, or changed since it was listed). */
    const sourceRead = async <T>(what: string, object: ListedObject, read: () => Promise<T>): Promise<T> => {
      try {
        return await read();
      } catch (err) {
        if (isS3Error(err, 'NoSuchKey', 'NotFound', 'Http404'))
          throw permanentFailure(UploadFailureType.SourceNotFound, `s3://${source.bucket}/${object.key} was deleted after it was listed`);
        if (isS3Error(err, 'PreconditionFailed', 'Http412'))
          throw permanentFailure(
            UploadFailureType.SourceChanged,
            `s3://${source.bucket}/${object.key} changed after it was listed (ETag ${object.etag})`,
          );
        throw s3Failure(`${what} s3://${source.bucket}/${object.key}`, err);
      }
    };

    const copyServerSide = async (object: ListedObject, key: string): Promise<void> => {
      if (object.size > COPY_OBJECT_MAX_BYTES)
        throw permanentFailure(
          UploadFailureType.InvalidUploadRequest,
          `s3://${source.bucket}/${object.key} has ${object.size} bytes; a migration copies objects up to 5 GiB (one CopyObject)`,
        );
      const parted = isParted(object.etag);
      const head = parted
        ? await sourceRead('HeadObject', object, () =>
            from.send(new HeadObjectCommand({ Bucket: source.bucket, Key: object.key, IfMatch: object.etag }), { abortSignal: signal }),
          )
        : undefined;
      const copied = await sourceRead('CopyObject to', object, () =>
        deps.s3.send(
          new CopyObjectCommand({
            Bucket: destination.bucket,
            Key: key,
            CopySource: copySourceOf({ bucket: source.bucket, key: object.key }),
            CopySourceIfMatch: `"${object.etag}"`,
            ChecksumAlgorithm: input.checksumAlgorithm,
            ...(head ? { MetadataDirective: 'REPLACE', ...contentOf(head, object) } : { MetadataDirective: 'COPY' }),
          }),
          { abortSignal: signal },
        ),
      );
      if (!parted && unquote(copied.CopyObjectResult?.ETag) !== object.etag)
        await refuseCopy(object, key, `ETag ${unquote(copied.CopyObjectResult?.ETag)}`);
      if (parted) {
        const stored = await headObjectIfPresent(deps.s3, { bucket: destination.bucket, key }, signal);
        if (stored?.ContentLength !== object.size) await refuseCopy(object, key, `${stored?.ContentLength ?? 'no'} bytes`);
      }
    };

    const copyStreamed = async (object: ListedObject, key: string): Promise<void> => {
      if (object.size > ONE_PUT_MAX_BYTES)
        throw permanentFailure(
          UploadFailureType.InvalidUploadRequest,
          `s3://${source.bucket}/${object.key} has ${object.size} bytes; a migration from another store copies objects up to 64 MiB`,
        );
      const got = await sourceRead('GetObject', object, () =>
        from.send(new GetObjectCommand({ Bucket: source.bucket, Key: object.key, IfMatch: `"${object.etag}"` }), { abortSignal: signal }),
      );
      const body = Buffer.from(await got.Body!.transformToByteArray());
      if (body.length !== object.size)
        throw permanentFailure(
          UploadFailureType.SourceChanged,
          `s3://${source.bucket}/${object.key} read ${body.length} bytes, ${object.size} listed`,
        );
      const value = await partChecksum(input.checksumAlgorithm, body);
      const put = await deps.s3
        .send(
          new PutObjectCommand({
            Bucket: destination.bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            ChecksumAlgorithm: input.checksumAlgorithm,
            [field]: value,
            ...contentOf(got, object),
          }),
          { abortSignal: signal },
        )
        .catch((err: unknown) => {
          throw s3Failure(`PutObject s3://${destination.bucket}/${key}`, err);
        });
      if (put[field] !== undefined && put[field] !== value) await refuseCopy(object, key, `checksum ${put[field]}`);
      if (!isParted(object.etag) && unquote(put.ETag) !== object.etag) await refuseCopy(object, key, `ETag ${unquote(put.ETag)}`);
    };

    /** A copy that does not match its source: deleted, and the object's failure. */
    const refuseCopy = async (object: ListedObject, key: string, found: string): Promise<never> => {
      await deps.s3.send(new DeleteObjectCommand({ Bucket: destination.bucket, Key: key })).catch((err: unknown) => {
        throw s3Failure(`DeleteObject s3://${destination.bucket}/${key}`, err);
      });
      throw permanentFailure(
        UploadFailureType.ChecksumMismatch,
        `the copy s3://${destination.bucket}/${key} has ${found}, not the source's (ETag ${object.etag}, ${object.size} bytes); it was deleted`,
      );
    };

    // Heartbeats at most every HEARTBEAT_EVERY_MS, and once more at the end.
    const throttled = throttledHeartbeat(context, HEARTBEAT_EVERY_MS);
    const beat = () => throttled(progress);
    const pending = objects.filter((o) => progress.settled[o.key] === undefined);
    let next = 0;
    let storeError: unknown;
    const lane = async () => {
      while (storeError === undefined && !signal.aborted && next < pending.length) {
        const object = pending[next++]!;
        const key = migratedKey(input, object.key);
        try {
          if (await alreadyThere(object, key, existing.get(key))) progress.settled[object.key] = { status: 'skipped' };
          else {
            await (sameStore ? copyServerSide(object, key) : copyStreamed(object, key));
            progress.settled[object.key] = { status: 'copied' };
          }
        } catch (err) {
          if (isObjectFailure(err)) progress.settled[object.key] = { status: 'failed', type: err.type ?? 'Failed', message: err.message };
          else if (!signal.aborted) storeError ??= err;
        }
        beat();
      }
    };
    await Promise.all(Array.from({ length: Math.min(input.objectConcurrency, pending.length) }, lane));
    context.heartbeat(progress);
    // Whatever ends the chunk, the bytes copied are the tenant's: lower the reservation to them and commit.
    const settleQuota = async () => {
      await deps.quota.shrink?.({ ...reservation, bytes: bytesCopied() });
      await deps.quota.commit(reservation);
    };
    if (signal.aborted) {
      await settleQuota();
      throw new CancelledFailure('copy-migration-chunk was cancelled', [progress]);
    }
    if (storeError !== undefined) throw s3Failure(`copying chunk ${input.chunk} of migration ${migrationId}`, storeError);
    await settleQuota();

    const result: CopyMigrationChunkResult = { objectsCopied: 0, bytesCopied: 0, objectsSkipped: 0, bytesSkipped: 0, failures: [] };
    const lines: string[] = [];
    for (const object of objects) {
      const settled = progress.settled[object.key]!;
      const key = migratedKey(input, object.key);
      const line: MigrationReportLine = { key: object.key, destinationKey: key, size: object.size, ...settled };
      lines.push(JSON.stringify(line));
      if (settled.status === 'copied') {
        result.objectsCopied++;
        result.bytesCopied += object.size;
      } else if (settled.status === 'skipped') {
        result.objectsSkipped++;
        result.bytesSkipped += object.size;
      } else
        result.failures.push({
          path: `s3://${source.bucket}/${object.key}`,
          key,
          type: settled.type ?? 'Failed',
          message: settled.message ?? '',
        });
    }
    const reportKey = migrationReportKey(tenant, migrationId, input.chunk);
    try {
      await deps.s3.send(
        new PutObjectCommand({
          Bucket: destination.bucket,
          Key: reportKey,
          Body: lines.join('\n') + '\n',
          ContentType: 'application/x-ndjson',
        }),
      );
    } catch (err) {
      throw s3Failure(`PutObject ${reportKey}`, err);
    }
    return result;
  };
}
