/**
 * Writes a file of random bytes and returns its SHA-256, for the demo's upload.
 *
 * Why stream it: the demo's default is 64 MiB and `--size` can ask for gigabytes; writing in
 * chunks through a pipeline keeps memory flat and honours back-pressure, and hashing while
 * writing saves reading the file a second time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Options of {@link writeRandomFile}. */
export interface RandomFileOptions {
  /** Bytes generated per write. @default 1 MiB */
  chunkSize?: number;
}

/** Creates (or replaces) `filePath` with `size` random bytes. @returns the file's SHA-256, hex */
export async function writeRandomFile(filePath: string, size: number, options: RandomFileOptions = {}): Promise<string> {
  const chunkSize = options.chunkSize ?? 1024 * 1024;
  const hash = createHash('sha256');
  function* chunks(): Generator<Buffer> {
    for (let written = 0; written < size; written += chunkSize) {
      const chunk = randomBytes(Math.min(chunkSize, size - written));
      hash.update(chunk);
      yield chunk;
    }
  }
  await pipeline(Readable.from(chunks()), createWriteStream(filePath));
  return hash.digest('hex');
}
