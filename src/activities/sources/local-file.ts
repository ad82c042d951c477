/**
 * Local files on the worker host. Only files under the configured allowed roots may be read: the
 * path is resolved with `realpath` first, so neither `..` nor a symlink can point outside them.
 * Reads use positional `read` on one file handle, so parts load in parallel without streams and
 * a retry can start at any part.
 */
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { permanentFailure, UploadFailureType } from '../../upload/errors';
import type { SourceDescriptor } from '../../upload/request';
import type { ByteSource, SourceResolver, SourceStat } from './byte-source';

export interface LocalFileSourceOptions {
  /** Directories whose files may be uploaded. Compared after resolving symlinks. */
  allowedRoots: string[];
}

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

class LocalFileSource implements ByteSource {
  readonly description: string;
  constructor(
    private readonly handle: fs.FileHandle,
    readonly filePath: string,
  ) {
    this.description = `file ${filePath}`;
  }

  async stat(): Promise<SourceStat> {
    const s = await this.handle.stat();
    return { size: s.size, version: `${s.ino}:${s.size}:${s.mtimeMs}` };
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
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

export class LocalFileResolver implements SourceResolver {
  private readonly roots: Promise<string[]>;

  constructor(options: LocalFileSourceOptions) {
    // Roots are resolved too, so that /tmp → /private/tmp style links compare correctly.
    this.roots = Promise.all(options.allowedRoots.map((root) => fs.realpath(root).catch(() => path.resolve(root))));
  }

  async open(source: SourceDescriptor): Promise<ByteSource> {
    if (source.type !== 'file') throw new TypeError(`LocalFileResolver cannot open ${source.type} sources`);
    const requested = source.path;
    let real: string;
    try {
      real = await fs.realpath(requested);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw permanentFailure(UploadFailureType.SourceNotFound, `source file ${requested} does not exist on the worker host`);
      throw permanentFailure(UploadFailureType.SourceUnreadable, `source file ${requested} cannot be resolved: ${code ?? String(err)}`);
    }
    const roots = await this.roots;
    if (!roots.some((root) => isInside(root, real))) {
      throw permanentFailure(
        UploadFailureType.SourceNotAllowed,
        `source file ${requested}${real !== requested ? ` (resolves to ${real})` : ''} is outside the worker's allowed roots: ${roots.join(', ') || '(none configured)'}; set UPLOAD_SAGA_ALLOWED_ROOTS`,
      );
    }
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(real, constants.O_RDONLY);
    } catch (err) {
      throw permanentFailure(UploadFailureType.SourceUnreadable, `source file ${requested} cannot be opened: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const stat = await handle.stat();
    if (!stat.isFile()) {
      await handle.close();
      throw permanentFailure(UploadFailureType.SourceUnreadable, `source ${requested} is not a regular file`);
    }
    return new LocalFileSource(handle, real);
  }
}
