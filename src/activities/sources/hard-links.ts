/**
 * Hard links under the allowed roots. A hard link is the file itself, so neither `realpath` nor
 * the descriptor's path can tell that a name inside a root also names a file outside it: a user
 * who may write into a root but not read `/etc/shadow` could `ln /etc/shadow root/x` and upload it.
 *
 * The rule: a file with one link is what its path says. A file with more links is accepted only
 * when every one of its links is found under the allowed roots: the roots are walked (without
 * following symlinks, only on the file's own device, since a hard link cannot cross file systems)
 * and the names with the file's device and inode are counted until they reach its link count. The
 * walk stops early when all links are found, and gives up — refusing the file — after
 * `maxEntries` directory entries, so a huge root costs a bounded amount of work, and only for
 * files with several links, which are rare.
 */
import type { Dirent, Stats } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** What {@link linksOutsideRoots} found. */
export type HardLinkVerdict =
  | { ok: true }
  /** Fewer links under the roots than the file has: some name of it lies outside. */
  | { ok: false; reason: 'outside'; found: number; links: number }
  /** The walk reached its bound before it found every link. */
  | { ok: false; reason: 'too-many-entries'; found: number; links: number; maxEntries: number };

/** Default bound of the walk, in directory entries. */
export const DEFAULT_MAX_LINK_SCAN_ENTRIES = 100_000;

/**
 * Whether every hard link of the opened file (`stat` of its descriptor) lies under `roots`
 * (already resolved with realpath). Files with one link are accepted without a walk.
 */
export async function linksOutsideRoots(
  stat: Pick<Stats, 'dev' | 'ino' | 'nlink'>,
  roots: readonly string[],
  maxEntries = DEFAULT_MAX_LINK_SCAN_ENTRIES,
): Promise<HardLinkVerdict> {
  if (stat.nlink <= 1) return { ok: true };
  let found = 0;
  let visited = 0;
  const seenDirs = new Set<string>();
  const pending: string[] = [];
  for (const root of roots) {
    const rootStat = await fs.stat(root).catch(() => undefined);
    if (rootStat?.isDirectory() && rootStat.dev === stat.dev) pending.push(root);
  }
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const dirStat = await fs.lstat(dir).catch(() => undefined);
    // Nested roots (one root inside another) must not count a link twice.
    const dirKey = dirStat ? `${dirStat.dev}:${dirStat.ino}` : dir;
    if (seenDirs.has(dirKey)) continue;
    seenDirs.add(dirKey);
    let entries: Dirent[];
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      continue; // an unreadable directory cannot hold a name we could have been given
    }
    for (const entry of entries) {
      visited += 1;
      if (visited > maxEntries) return { ok: false, reason: 'too-many-entries', found, links: stat.nlink, maxEntries };
      const entryPath = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        pending.push(entryPath);
      } else if (entry.isFile()) {
        const entryStat = await fs.lstat(entryPath).catch(() => undefined);
        if (entryStat && entryStat.dev === stat.dev && entryStat.ino === stat.ino) {
          found += 1;
          if (found >= stat.nlink) return { ok: true };
        }
      }
    }
  }
  return { ok: false, reason: 'outside', found, links: stat.nlink };
}
