/**
 * Test files with known content, under the OS temp dir (one of the worker's allowed roots in tests).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const MiB = 1024 * 1024;

export interface TestFile {
  path: string;
  size: number;
  sha256: string;
}

export async function makeTempDir(prefix = 'upload-saga-test-'): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A file of `size` random bytes (written in 4 MiB blocks to keep memory flat). */
export async function makeRandomFile(dir: string, name: string, size: number): Promise<TestFile> {
  const filePath = path.join(dir, name);
  const hash = createHash('sha256');
  const blocks: Buffer[] = [];
  for (let written = 0; written < size; written += 4 * MiB) {
    const block = randomBytes(Math.min(4 * MiB, size - written));
    hash.update(block);
    blocks.push(block);
  }
  await writeFile(filePath, Buffer.concat(blocks));
  return { path: filePath, size, sha256: hash.digest('hex') };
}
