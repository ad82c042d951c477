/**
 * Listing a migration's source (and the destination beside it) by key ranges. The workflow keeps
 * only range bounds in its history — the key a page starts after and its last key — never the
 * objects: a chunk lists its range again when it runs. A range stays the same set of keys unless
 * the source changes meanwhile (a key added inside it is copied too; one removed fails as
 * `SourceNotFound`).
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { STAGING_PREFIX } from '../../upload/request';
import { permanentFailure, UploadFailureType } from '../../upload/errors';
import type { UploadActivityDeps } from '../deps';

/** An object as a listing shows it. */
export interface ListedObject {
  key: string;
  size: number;
  /** Without quotes. */
  etag: string;
}

/** One page of a migration's source as the workflow records it: bounds and totals, no keys in between. */
export interface MigrationPageRange {
  /** The chunk lists keys after this one (exclusive); undefined: from the start of the prefix. */
  after?: string;
  /** The page's last key (inclusive); undefined when the page is empty. */
  last?: string;
  objects: number;
  bytes: number;
  /** Where the next page starts (its `after`); undefined: the listing is done. */
  cursor?: string;
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/^"|"$/g, '');

/** The store a migration's source lives in: the worker's own, or a configured profile's. */
export function sourceStore(deps: Pick<UploadActivityDeps, 's3' | 'sourceStores'>, profile: string | undefined): S3Client {
  if (profile === undefined) return deps.s3;
  const store = deps.sourceStores?.[profile];
  if (!store)
    throw permanentFailure(
      UploadFailureType.SourceNotAllowed,
      `source profile "${profile}" is not configured on this worker (UPLOAD_SAGA_S3_SOURCE_PROFILES)`,
    );
  return store;
}

/**
 * Objects under `prefix` after `after` (exclusive) up to `last` (inclusive) or `max` objects, in
 * key order, page by page. Keys under the saga's reserved prefix are never listed.
 */
export async function* listRange(
  s3: S3Client,
  bucket: string,
  prefix: string,
  range: { after?: string; last?: string; max?: number },
  abortSignal?: AbortSignal,
): AsyncGenerator<ListedObject[]> {
  let startAfter = range.after;
  let remaining = range.max ?? Infinity;
  for (;;) {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ...(startAfter !== undefined ? { StartAfter: startAfter } : {}),
        MaxKeys: Math.min(1000, remaining),
      }),
      { abortSignal },
    );
    const objects: ListedObject[] = [];
    let done = !page.IsTruncated;
    for (const o of page.Contents ?? []) {
      if (!o.Key) continue;
      if (range.last !== undefined && o.Key > range.last) {
        done = true;
        break;
      }
      startAfter = o.Key;
      if (o.Key.startsWith(STAGING_PREFIX)) continue;
      objects.push({ key: o.Key, size: o.Size ?? 0, etag: unquote(o.ETag) });
    }
    remaining -= (page.Contents ?? []).length;
    if (objects.length) yield objects;
    if (done || remaining <= 0 || startAfter === range.last || !page.Contents?.length) return;
  }
}

/** The next page of at most `max` objects after `after`: its bounds and totals. */
export async function listPageRange(
  s3: S3Client,
  bucket: string,
  prefix: string,
  after: string | undefined,
  max: number,
): Promise<MigrationPageRange> {
  let objects = 0;
  let bytes = 0;
  let last: string | undefined;
  let startAfter = after;
  let truncated = true;
  // Up to `max` objects, skipping the reserved prefix: may take more than one request.
  while (objects < max && truncated) {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ...(startAfter !== undefined ? { StartAfter: startAfter } : {}),
        MaxKeys: max - objects,
      }),
    );
    truncated = page.IsTruncated === true;
    for (const o of page.Contents ?? []) {
      if (!o.Key) continue;
      startAfter = o.Key;
      if (o.Key.startsWith(STAGING_PREFIX)) continue;
      objects++;
      bytes += o.Size ?? 0;
      last = o.Key;
    }
    if (!page.Contents?.length) truncated = false;
  }
  return {
    ...(after !== undefined ? { after } : {}),
    ...(last !== undefined ? { last } : {}),
    objects,
    bytes,
    ...(truncated && startAfter !== undefined ? { cursor: startAfter } : {}),
  };
}
