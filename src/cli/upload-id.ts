/**
 * The default upload id of `upload <source>` when `--upload-id` is not given.
 *
 * Why this shape: the upload id is half of the workflow id (`upload:<tenant>:<uploadId>`), which
 * people read in the Web UI and type into `status`/`cancel`; the file (or URL) name makes it
 * recognizable, the random suffix makes two uploads of sources with the same name two uploads. Passing an explicit
 * `--upload-id` instead makes a retried command attach to the same upload (idempotent start).
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';

/** Room left for the suffix within the 128-character upload id limit. */
const MAX_SLUG_LENGTH = 100;

/** `"/data/My Video (final).mp4"` → `"my-video-final-.mp4"`-like slug: lowercase, `[a-z0-9._-]`, starting with a letter or digit. */
export function slugify(name: string): string {
  const slug = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, MAX_SLUG_LENGTH)
    .replace(/[-.]+$/, '');
  return slug || 'upload';
}

/** Options of {@link defaultUploadId}. */
export interface DefaultUploadIdOptions {
  /** Hex characters of random suffix. @default 6 */
  suffixLength?: number;
  /** Source of randomness (for tests). @default crypto.randomBytes */
  random?: (bytes: number) => Buffer;
}

/** A slug of `name` (a file name or path) plus a short random suffix, e.g. `report.pdf` → `report.pdf-3f9a1c`. */
export function defaultUploadId(name: string, options: DefaultUploadIdOptions = {}): string {
  const length = options.suffixLength ?? 6;
  const suffix = (options.random ?? randomBytes)(Math.ceil(length / 2))
    .toString('hex')
    .slice(0, length);
  return `${slugify(path.basename(name))}-${suffix}`;
}
