/**
 * Local files on the worker host. Only files under the configured allowed roots may be read: the
 * path is resolved with `realpath` first, so neither `..` nor a symlink can point outside them.
 * Reads use positional `read` on one file handle, so parts load in parallel without streams and
 * a retry can start at any part; each lands straight in the caller's buffer when one is given (the
 * kernel's copy is the only one).
 *
 * Checking a path and then opening it leaves a window in which the file (or a directory above
 * it) can be swapped for a symlink to somewhere else. So the check is made again on what was
 * opened: the final component is opened with `O_NOFOLLOW`, and after the open the descriptor's
 * own path (`/proc/self/fd/N` on Linux) must be under a root and the file at the checked path
 * must be the opened one (same device and inode). The descriptor is what every read uses.
 * A hard link is the file itself, so a file with several links is accepted only when all of
 * them lie under the roots (hard-links.ts).
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { permanentFailure, UploadFailureType } from '../../upload/errors';
import type { SourceDescriptor } from '../../upload/request';
import type { ByteSource, SourceResolver, SourceStat } from './byte-source';
import { linksOutsideRoots } from './hard-links';

/** Options of {@link LocalFileResolver}. */
export interface LocalFileSourceOptions {
  /** Directories whose files may be uploaded. Compared after resolving symlinks. */
  allowedRoots: string[];
}

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * The version of a local file: inode, size, modification time and change time. The change time
 * too: a same-size rewrite whose modification time was set back (rsync --inplace --times, cp -p
 * onto the file) changes only ctime, which no one can set back.
 */
export function localFileVersion(s: { ino: number; size: number; mtimeMs: number; ctimeMs: number }): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}:ctime=${s.ctimeMs}`;
}

class LocalFileSource implements ByteSource {
  readonly description: string;
  readonly statAtOpen: SourceStat;
  constructor(
    private readonly handle: fs.FileHandle,
    readonly filePath: string,
    opened: { ino: number; size: number; mtimeMs: number; ctimeMs: number },
  ) {
    this.description = `file ${filePath}`;
    this.statAtOpen = { size: opened.size, version: localFileVersion(opened) };
  }

  async stat(): Promise<SourceStat> {
    const s = await this.handle.stat();
    return { size: s.size, version: localFileVersion(s) };
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const buffer = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await this.handle.read(buffer, filled, length - filled, offset + filled);
      if (bytesRead === 0) {
        throw permanentFailure(
          UploadFailureType.SourceChanged,
          `${this.description} ended at byte ${offset + filled}, but bytes up to ${offset + length} were expected: it was truncated during the upload`,
        );
      }
      filled += bytesRead;
    }
    return buffer;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** The path the kernel has for an open file descriptor (Linux), or undefined where /proc is not available. */
async function pathOfDescriptor(fd: number): Promise<string | undefined> {
  try {
    return await fs.readlink(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** How long the allowed roots, once resolved, are used before they are resolved again. */
const ROOTS_TTL_MS = 1000;

/** Opens `file` sources under the allowed roots; see the module comment. */
export class LocalFileResolver implements SourceResolver {
  private resolvedRoots?: { at: number; roots: Promise<string[]> };

  constructor(private readonly options: LocalFileSourceOptions) {}

  /**
   * The roots with symlinks resolved (so that a root that is itself a link, e.g. /tmp → /private/tmp,
   * compares correctly). Resolved at most once a second, not once per file (a batch opens hundreds
   * a second): a root that is a link re-pointed elsewhere is followed within a second. Every file is
   * still checked against them after its own open (descriptor path, same inode), whatever the roots.
   */
  private roots(): Promise<string[]> {
    const now = Date.now();
    if (this.resolvedRoots === undefined || now - this.resolvedRoots.at >= ROOTS_TTL_MS) {
      const roots = Promise.all(this.options.allowedRoots.map((root) => fs.realpath(root).catch(() => path.resolve(root))));
      this.resolvedRoots = { at: now, roots };
    }
    return this.resolvedRoots.roots;
  }

  /** Opens a local file under the allowed roots. */
  async open(source: SourceDescriptor): Promise<ByteSource> {
    if (source.type !== 'file') throw new TypeError(`LocalFileResolver cannot open ${source.type} sources`);
    const requested = source.path;
    let real: string;
    try {
      real = await fs.realpath(requested);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR')
        throw permanentFailure(UploadFailureType.SourceNotFound, `source file ${requested} does not exist on the worker host`);
      throw permanentFailure(UploadFailureType.SourceUnreadable, `source file ${requested} cannot be resolved: ${code ?? String(err)}`);
    }
    const roots = await this.roots();
    const rootList = `${roots.join(', ') || '(none configured)'}; set UPLOAD_SAGA_ALLOWED_ROOTS`;
    if (!roots.some((root) => isInside(root, real))) {
      throw permanentFailure(
        UploadFailureType.SourceNotAllowed,
        `source file ${requested}${real !== requested ? ` (resolves to ${real})` : ''} is outside the worker's allowed roots: ${rootList}`,
      );
    }
    const swapped = (what: string) =>
      permanentFailure(
        UploadFailureType.SourceNotAllowed,
        `source file ${requested} ${what}; refused, as it could lead outside the allowed roots`,
      );
    let handle: fs.FileHandle;
    try {
      // O_NOFOLLOW: if the file was replaced by a symlink since realpath, the open fails instead of
      // following it. O_NONBLOCK: a FIFO opens at once (and is refused below) instead of hanging.
      handle = await fs.open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw swapped(`(${real}) was replaced by a symbolic link after its path was checked`);
      if (code === 'ENOENT')
        throw permanentFailure(UploadFailureType.SourceNotFound, `source file ${requested} does not exist on the worker host`);
      throw permanentFailure(UploadFailureType.SourceUnreadable, `source file ${requested} cannot be opened: ${code ?? String(err)}`);
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw permanentFailure(UploadFailureType.SourceUnreadable, `source ${requested} is not a regular file`);
      // A directory on the way may have been swapped for a link between the check and the open:
      // what counts is the file the descriptor refers to. The kernel's path for it must be under a
      // root (Linux), and the file now at the checked path must be that same file (everywhere).
      const opened = await pathOfDescriptor(handle.fd);
      if (opened !== undefined && !roots.some((root) => isInside(root, opened))) {
        throw permanentFailure(
          UploadFailureType.SourceNotAllowed,
          `source file ${requested} changed while it was opened: the opened file is ${opened}, outside the worker's allowed roots: ${rootList}`,
        );
      }
      const now = await fs.lstat(real).catch(() => undefined);
      if (!now || now.dev !== stat.dev || now.ino !== stat.ino)
        throw swapped(`changed while it was opened (${real} is no longer the opened file)`);
      const links = await linksOutsideRoots(stat, roots);
      if (!links.ok) {
        throw permanentFailure(
          UploadFailureType.SourceNotAllowed,
          links.reason === 'outside'
            ? `source file ${requested} is a hard link: it has ${links.links} names and only ${links.found} of them are under the worker's allowed roots (${rootList}); refused, as the same file is reachable outside them`
            : `source file ${requested} is a hard link (${links.links} names) and the allowed roots hold more than ${links.maxEntries} entries to search for its other names; refused, as they may lie outside the roots`,
        );
      }
      return new LocalFileSource(handle, real, stat);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }
}
