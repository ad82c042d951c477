/**
 * Lists a batch's source page by page, in a deterministic order, from a cursor: what the batch
 * workflow needs to walk a million files with a small state (the cursor) and a bounded history
 * (one page per chunk).
 *
 * - directory: a depth-first walk with each directory's names in code-unit order; the cursor is
 *   the relative path of the last entry listed, and a walk from it descends only into the
 *   directories at or after it, so a page costs the directories on its way, not the files before it.
 *   Symbolic links are listed as files (never followed as directories): opening one resolves it,
 *   and a link leaving the allowed roots fails that file with `SourceNotAllowed`.
 * - list: the given paths in order; the cursor is the index of the next one.
 * - manifest: JSONL, read from a byte offset; the cursor is `offset:line`.
 *
 * Problems found while listing (an unreadable directory, a key S3 cannot hold) are per-file
 * failures of the page; problems with the batch as a whole are found by inspect (inspect-batch.ts).
 */
import { promises as fs, type Dirent } from 'node:fs';
import path from 'node:path';
import { objectKeyProblem } from '../../upload/request';
import type { BatchFile, BatchFileFailure, BatchSource } from '../../batch/batch-types';
import { localFileVersion } from '../sources/local-file';

/** A source entry before its size is known. */
export type ListedEntry = { path: string; key: string } | { failure: BatchFileFailure };

/** One page of a listing: the entries in order and the cursor after them (`undefined`: the listing is done). */
export interface ListingPage {
  files: BatchFile[];
  failures: BatchFileFailure[];
  cursor: string | undefined;
}

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function matchesFilters(rel: string, include: string[] | undefined, exclude: string[] | undefined): boolean {
  if (include?.length && !include.some((glob) => path.matchesGlob(rel, glob))) return false;
  return !exclude?.some((glob) => path.matchesGlob(rel, glob));
}

/** The directory's entries from `after` on (exclusive), depth first; yields each entry with the cursor after it. */
async function* walkDirectory(
  root: string,
  rel: string[],
  after: string[] | undefined,
): AsyncGenerator<{ rel: string; entry?: Dirent; error?: NodeJS.ErrnoException }> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(path.join(root, ...rel), { withFileTypes: true });
  } catch (err) {
    yield { rel: rel.join('/'), error: err as NodeJS.ErrnoException };
    return;
  }
  entries.sort((a, b) => byCodeUnits(a.name, b.name));
  for (const entry of entries) {
    const here = [...rel, entry.name];
    let rest: string[] | undefined;
    if (after && after.length > 0) {
      const order = byCodeUnits(entry.name, after[0]!);
      if (order < 0) continue;
      if (order === 0) {
        if (after.length === 1 || !entry.isDirectory()) continue;
        rest = after.slice(1);
      }
    }
    if (entry.isDirectory()) yield* walkDirectory(root, here, rest);
    else yield { rel: here.join('/'), entry };
  }
}

/** The entries of a directory source after `cursor`, filtered, as (path, key) or a listing failure. */
async function* directoryEntries(
  source: Extract<BatchSource, { type: 'directory' }>,
  prefix: string,
  cursor: string | undefined,
): AsyncGenerator<{ entry: ListedEntry; cursor: string }> {
  const after = cursor ? cursor.split('/') : undefined;
  for await (const item of walkDirectory(source.path, [], after)) {
    const full = path.join(source.path, item.rel);
    if (item.error) {
      const failure = {
        path: `${full}/`,
        type: 'SourceUnreadable',
        message: `directory ${full} cannot be listed: ${item.error.code ?? item.error.message}; its files are not uploaded`,
      };
      yield { entry: { failure }, cursor: item.rel };
      continue;
    }
    if (!matchesFilters(item.rel, source.include, source.exclude)) continue;
    yield { entry: { path: full, key: `${prefix}${item.rel}` }, cursor: item.rel };
  }
}

/** One manifest line as (path, key), or why it is not one. */
export function parseManifestLine(line: string, lineNumber: number, prefix: string): { path: string; key: string } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    return { problem: `line ${lineNumber} is not valid JSON (${(err as Error).message})` };
  }
  const record = value as { path?: unknown; key?: unknown };
  if (
    typeof value !== 'object' ||
    value === null ||
    Array.isArray(value) ||
    typeof record.path !== 'string' ||
    !record.path.startsWith('/')
  )
    return {
      problem: `line ${lineNumber} must be an object with "path" (an absolute path) and optionally "key", got ${line.slice(0, 80)}`,
    };
  if (record.key !== undefined && (typeof record.key !== 'string' || record.key.length === 0))
    return { problem: `line ${lineNumber}: "key" must be a non-empty string` };
  return { path: record.path, key: `${prefix}${typeof record.key === 'string' ? record.key : path.basename(record.path)}` };
}

/** Manifest lines from a byte offset, each with the cursor after it; blank lines are skipped. */
async function* manifestEntries(
  manifest: string,
  prefix: string,
  cursor: string | undefined,
): AsyncGenerator<{ entry: ListedEntry; cursor: string }> {
  let [offset, lineNumber] = cursor ? (cursor.split(':').map(Number) as [number, number]) : [0, 0];
  const handle = await fs.open(manifest, 'r');
  try {
    let pending = Buffer.alloc(0);
    const window = Buffer.allocUnsafe(1 << 20);
    let readAt = offset;
    for (;;) {
      const { bytesRead } = await handle.read(window, 0, window.length, readAt);
      readAt += bytesRead;
      pending = Buffer.concat([pending, window.subarray(0, bytesRead)]);
      let newline: number;
      while ((newline = pending.indexOf(0x0a)) >= 0 || (bytesRead === 0 && pending.length > 0)) {
        const end = newline >= 0 ? newline : pending.length;
        const line = pending.subarray(0, end).toString('utf8').trim();
        pending = pending.subarray(newline >= 0 ? newline + 1 : pending.length);
        offset += end + (newline >= 0 ? 1 : 0);
        lineNumber++;
        if (line === '') continue;
        const parsed = parseManifestLine(line, lineNumber, prefix);
        const entry: ListedEntry =
          'problem' in parsed
            ? { failure: { path: `${manifest}:${lineNumber}`, type: 'BatchManifestInvalid', message: parsed.problem } }
            : parsed;
        yield { entry, cursor: `${offset}:${lineNumber}` };
      }
      if (bytesRead === 0) return;
    }
  } finally {
    await handle.close();
  }
}

/** The list source's paths from index `cursor` on. */
async function* listEntries(
  paths: string[],
  prefix: string,
  cursor: string | undefined,
): AsyncGenerator<{ entry: ListedEntry; cursor: string }> {
  for (let i = cursor ? Number(cursor) : 0; i < paths.length; i++) {
    yield { entry: { path: paths[i]!, key: `${prefix}${path.basename(paths[i]!)}` }, cursor: String(i + 1) };
  }
}

/** Every entry of `source` after `cursor`, in the listing's order, each with the cursor after it. */
export function sourceEntries(
  source: BatchSource,
  prefix: string,
  cursor: string | undefined,
): AsyncGenerator<{ entry: ListedEntry; cursor: string }> {
  switch (source.type) {
    case 'directory':
      return directoryEntries(source, prefix, cursor);
    case 'list':
      return listEntries(source.paths, prefix, cursor);
    case 'manifest':
      return manifestEntries(source.path, prefix, cursor);
  }
}

/** The size of a listed file (following a link), or the failure that keeps it out of the batch. */
export async function sizeOf(entry: { path: string; key: string }): Promise<{ file: BatchFile } | { failure: BatchFileFailure }> {
  const keyProblem = objectKeyProblem(entry.key);
  if (keyProblem) return { failure: { ...entry, type: 'InvalidKey', message: `key ${JSON.stringify(entry.key)} ${keyProblem}` } };
  try {
    const stat = await fs.stat(entry.path);
    if (!stat.isFile()) return { failure: { ...entry, type: 'SourceUnreadable', message: `${entry.path} is not a regular file` } };
    return { file: { ...entry, size: stat.size, version: localFileVersion(stat) } };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      failure: {
        ...entry,
        type: code === 'ENOENT' ? 'SourceNotFound' : 'SourceUnreadable',
        message: `${entry.path} cannot be read: ${code ?? String(err)}`,
      },
    };
  }
}

/** Stats of one page in flight at once: the threadpool's file-system calls overlap instead of queueing one by one. */
const SIZE_CONCURRENCY = 32;

/** `sizeOf` of each entry, in order, at most {@link SIZE_CONCURRENCY} at once. */
export async function sizesOf(entries: { path: string; key: string }[]): Promise<Awaited<ReturnType<typeof sizeOf>>[]> {
  const sized: Awaited<ReturnType<typeof sizeOf>>[] = new Array(entries.length);
  let next = 0;
  const lane = async () => {
    while (next < entries.length) {
      const i = next++;
      sized[i] = await sizeOf(entries[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(SIZE_CONCURRENCY, entries.length) }, lane));
  return sized;
}

/**
 * The next page of at most `maxFiles` files (listing failures ride along and do not count). Entries
 * are sized in windows no larger than what is left of the page, so the page ends where a one-by-one
 * walk would.
 */
export async function listPage(source: BatchSource, prefix: string, cursor: string | undefined, maxFiles: number): Promise<ListingPage> {
  const files: BatchFile[] = [];
  const failures: BatchFileFailure[] = [];
  let last = cursor;
  const entries = sourceEntries(source, prefix, cursor);
  try {
    for (;;) {
      const room = Math.min(maxFiles - files.length, maxFiles - failures.length);
      const window: { path: string; key: string }[] = [];
      let listed = 0;
      let listingFailure: BatchFileFailure | undefined;
      while (listed < room && listingFailure === undefined) {
        const item = await entries.next();
        if (item.done) break;
        listed++;
        last = item.value.cursor;
        // A listing failure ends the window: it counts like a file that failed.
        if ('failure' in item.value.entry) listingFailure = item.value.entry.failure;
        else window.push(item.value.entry);
      }
      for (const sized of await sizesOf(window)) {
        if ('file' in sized) files.push(sized.file);
        else failures.push(sized.failure);
      }
      if (listingFailure) failures.push(listingFailure);
      if (listed === 0) return { files, failures, cursor: undefined };
      if (files.length >= maxFiles || failures.length >= maxFiles) {
        // Is there more? One more entry from the same walk answers it; the cursor stays after the last entry taken.
        const more = await entries.next();
        return { files, failures, cursor: more.done ? undefined : last };
      }
    }
  } finally {
    await entries.return(undefined);
  }
}
