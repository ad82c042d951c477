/**
 * The batch listing's pages: sized many files at once, a page must still end exactly where a walk
 * that sizes one file after another ends, with the same files, failures and cursor, so that the
 * pages of a batch and the resume from a cursor do not depend on how the sizing was done.
 */
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPage, sizeOf, sourceEntries, type ListingPage } from '../../src/activities/batch/batch-listing';
import type { BatchSource } from '../../src/batch/batch-types';
import { makeTempDir } from '../support/files';

let tmp: { dir: string; remove(): Promise<void> };
let source: BatchSource;

beforeAll(async () => {
  tmp = await makeTempDir('upload-saga-batch-listing-');
  const root = path.join(tmp.dir, 'tree');
  for (let i = 0; i < 70; i++) {
    const rel = `${['', 'a/', 'b/c/', 'b/d/'][i % 4]}f${String(i).padStart(3, '0')}.bin`;
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), Buffer.alloc(i));
  }
  // Failures among the files: dangling links (SourceNotFound) and a key S3 cannot hold.
  for (const name of ['a/dangling-1', 'b/c/dangling-2', 'b/dangling-3', 'zz-dangling-4'])
    await symlink(path.join(tmp.dir, 'nowhere'), path.join(root, name));
  await writeFile(path.join(root, 'b', 'bad\u0001key.bin'), 'x');
  source = { type: 'directory', path: root };
}, 300_000);

afterAll(() => tmp?.remove());

/** The page a walk that sizes one file after another gives: the reference. */
async function oneByOnePage(cursor: string | undefined, maxFiles: number): Promise<ListingPage> {
  const page: ListingPage = { files: [], failures: [], cursor: undefined };
  let last = cursor;
  let full = false;
  for await (const { entry, cursor: after } of sourceEntries(source, 'p/', cursor)) {
    if (full) return { ...page, cursor: last };
    last = after;
    if ('failure' in entry) page.failures.push(entry.failure);
    else {
      const sized = await sizeOf(entry);
      if ('file' in sized) page.files.push(sized.file);
      else page.failures.push(sized.failure);
    }
    full = page.files.length >= maxFiles || page.failures.length >= maxFiles;
  }
  return page;
}

describe('batch listing pages', () => {
  it.each([1, 2, 3, 7, 32, 33, 69, 70, 71, 500])(
    'pages of %i files are those of a one-by-one walk, cursor for cursor',
    async (maxFiles) => {
      let cursor: string | undefined;
      let pages = 0;
      const seen: string[] = [];
      do {
        const page = await listPage(source, 'p/', cursor, maxFiles);
        expect(page).toEqual(await oneByOnePage(cursor, maxFiles));
        expect(page.files.length).toBeLessThanOrEqual(maxFiles);
        seen.push(...page.files.map((f) => f.key), ...page.failures.map((f) => f.path));
        cursor = page.cursor;
        pages++;
      } while (cursor !== undefined && pages < 200);
      expect(cursor).toBeUndefined();
      // Every entry once: 70 files, 4 dangling links, 1 bad key.
      expect(seen).toHaveLength(75);
      expect(new Set(seen).size).toBe(75);
      expect(seen.filter((k) => k.startsWith('p/'))).toHaveLength(70);
    },
  );
});
