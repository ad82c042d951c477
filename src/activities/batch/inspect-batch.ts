/**
 * inspect-batch: the batch's first step. Everything about the batch as a whole that can be known
 * before a byte is written is checked here, so a bad batch fails with one specific error and
 * nothing to undo: the request (the same validation as the client's), the destination prefix
 * against the tenant's key prefix, the bucket, the source directory or manifest against the allowed
 * roots, every manifest line, keys two sources would share, an empty source.
 *
 * It walks the whole source once (heartbeating) to count files and bytes: the progress bar's
 * totals and ETA. Problems of single files (unreadable, a link leaving the roots) are not errors
 * here: they are listed per file when the batch reaches them.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { batchFailure, BatchFailureType, findBatchProblems } from '../../batch/batch-request';
import type { BatchRequestWithDefaults } from '../../batch/batch-types';
import { permanentFailure, UploadFailureType } from '../../upload/errors';
import { isS3Error, s3Failure } from '../../s3/classify-error';
import type { UploadActivityDeps } from '../deps';
import { tenantKeyPrefixFor } from '../inspect-source';
import { sizesOf, sourceEntries } from './batch-listing';

/** What inspect-batch found: the totals the progress is measured against. */
export interface BatchInspection {
  filesTotal: number;
  bytesTotal: number;
}

/** Files sized per window of the walk. */
const INSPECT_WINDOW = 256;

const isInside = (root: string, candidate: string) => {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
};

/** Refuses a directory or manifest outside the allowed roots (after resolving links). */
async function checkUnderRoots(what: string, requested: string, allowedRoots: readonly string[]): Promise<void> {
  let real: string;
  try {
    real = await fs.realpath(requested);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw permanentFailure(
      code === 'ENOENT' ? UploadFailureType.SourceNotFound : UploadFailureType.SourceUnreadable,
      `${what} ${requested} ${code === 'ENOENT' ? 'does not exist on the worker host' : `cannot be resolved: ${code}`}`,
    );
  }
  const roots = await Promise.all(allowedRoots.map((r) => fs.realpath(r).catch(() => path.resolve(r))));
  if (!roots.some((root) => isInside(root, real))) {
    throw permanentFailure(
      UploadFailureType.SourceNotAllowed,
      `${what} ${requested}${real !== requested ? ` (resolves to ${real})` : ''} is outside the worker's allowed roots: ${roots.join(', ') || '(none configured)'}; set UPLOAD_SAGA_ALLOWED_ROOTS`,
    );
  }
  try {
    await fs.access(real, fs.constants.R_OK);
  } catch (err) {
    throw permanentFailure(
      UploadFailureType.SourceUnreadable,
      `${what} ${requested} cannot be read: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
}

export function inspectBatchActivity(deps: UploadActivityDeps) {
  return async function inspectBatch(request: BatchRequestWithDefaults): Promise<BatchInspection> {
    const problems = findBatchProblems(request);
    if (problems.length) {
      throw ApplicationFailure.create({
        type: BatchFailureType.InvalidBatchRequest,
        nonRetryable: true,
        message: `invalid batch request: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
        details: [problems],
      });
    }
    const { bucket, prefix } = request.destination;
    if (deps.tenantKeyPrefix) {
      const allowed = tenantKeyPrefixFor(deps.tenantKeyPrefix, request.tenant);
      if (!prefix.startsWith(allowed)) {
        throw permanentFailure(
          UploadFailureType.DestinationNotAllowed,
          `prefix "${prefix}" is outside tenant ${request.tenant}'s prefix: keys must start with "${allowed}" (UPLOAD_SAGA_TENANT_KEY_PREFIX)`,
        );
      }
    }
    const source = request.source;
    if (source.type !== 'list')
      await checkUnderRoots(source.type === 'directory' ? 'directory' : 'manifest', source.path, deps.allowedRoots ?? []);
    if (source.type === 'directory' && !(await fs.stat(source.path)).isDirectory())
      throw permanentFailure(UploadFailureType.SourceUnreadable, `${source.path} is not a directory`);
    try {
      await deps.s3.send(new HeadBucketCommand({ Bucket: bucket }));
    } catch (err) {
      if (isS3Error(err, 'NotFound', 'NoSuchBucket', 'Http404'))
        throw permanentFailure(UploadFailureType.BucketNotFound, `bucket "${bucket}" does not exist`);
      throw s3Failure(`HeadBucket ${bucket}`, err);
    }

    const context = Context.current();
    // Keys two sources share: a directory cannot produce them (its relative paths are distinct).
    const keys = source.type === 'directory' ? undefined : new Map<string, string>();
    let entries = 0;
    let filesTotal = 0;
    let bytesTotal = 0;
    // Files are sized a window at a time (their stats overlap) and counted in listing order, so the
    // first problem in that order is the one reported.
    const count = async (window: { path: string; key: string }[]) => {
      const sizes = await sizesOf(window);
      sizes.forEach((sized, i) => {
        if (!('file' in sized)) return;
        if (request.mode === 'atomic' && sized.file.size > request.partSize)
          throw batchFailure(
            BatchFailureType.BatchFileTooLarge,
            `${window[i]!.path} has ${sized.file.size} bytes; an atomic batch takes files up to its partSize (${request.partSize} bytes); nothing was uploaded`,
          );
        filesTotal++;
        bytesTotal += sized.file.size;
      });
    };
    let window: { path: string; key: string }[] = [];
    for await (const { entry } of sourceEntries(source, prefix, undefined)) {
      if (++entries % 1000 === 0) context.heartbeat({ entries });
      if ('failure' in entry) {
        if (entry.failure.type === BatchFailureType.BatchManifestInvalid) {
          await count(window);
          throw batchFailure(
            BatchFailureType.BatchManifestInvalid,
            `manifest ${entry.failure.path}: ${entry.failure.message}; nothing was uploaded`,
          );
        }
        continue;
      }
      if (keys) {
        const earlier = keys.get(entry.key);
        if (earlier !== undefined) {
          await count(window);
          throw batchFailure(
            BatchFailureType.BatchDuplicateKey,
            `${earlier} and ${entry.path} both map to key "${entry.key}"; nothing was uploaded`,
          );
        }
        keys.set(entry.key, entry.path);
      }
      window.push(entry);
      if (window.length >= INSPECT_WINDOW) {
        await count(window);
        window = [];
      }
    }
    await count(window);
    if (entries === 0) {
      const what =
        source.type === 'directory' && (source.include?.length || source.exclude?.length) ? 'no file matches the filters in' : 'no file in';
      throw batchFailure(BatchFailureType.BatchEmpty, `${what} ${source.type === 'list' ? 'the list' : source.path}; nothing to upload`);
    }
    return { filesTotal, bytesTotal };
  };
}
