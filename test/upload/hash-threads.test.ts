/**
 * The hashing threads (src/s3/hash-threads.ts) that compute the gateway's per-part SHA-256 over
 * shared part buffers: digests equal node:crypto's for sizes around the part sizes, a buffer given
 * back while a thread hashes it is not handed out again before the hash ended, a thread that dies
 * fails its hashes with a clear error (and the next hash gets a new thread), and idle threads do
 * not keep a process alive.
 */
import { execFile } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { HashThreadError, HashThreads, unreadBy } from '../../src/s3/hash-threads';
import { PartBuffers } from '../../src/s3/part-buffers';
import { MiB } from '../support/files';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('hash threads', () => {
  it('compute the SHA-256 of views of shared memory of several sizes and offsets', async () => {
    const threads = new HashThreads({ threads: 2 });
    try {
      const buffer = Buffer.from(new SharedArrayBuffer(10 * MiB + 7));
      randomFillSync(buffer);
      const views = [
        buffer.subarray(0, 0),
        buffer.subarray(0, 1),
        buffer.subarray(3, 3 + 64 * 1024 + 1),
        buffer.subarray(0, 5 * MiB),
        buffer.subarray(1, 1 + 5 * MiB + 5 * MiB - 1),
        buffer,
      ];
      // At once, more than there are threads: each answer goes to its own hash.
      const digests = await Promise.all(views.map((view) => threads.sha256Hex(view)));
      expect(digests).toEqual(views.map(sha256));
    } finally {
      await threads.close();
    }
  });

  it('refuse memory that is not shared (a thread would need a copy)', () => {
    const threads = new HashThreads();
    expect(() => threads.sha256Hex(Buffer.alloc(16))).toThrow(/SharedArrayBuffer/);
  });

  it('keep a part buffer given back while it is hashed out of reach until the hash ended', async () => {
    // A thread that answers only when told to: the hash is running for as long as the test wants.
    const source = `
      const { parentPort } = require('node:worker_threads');
      const held = [];
      parentPort.on('message', (m) => {
        if (m.release) for (const h of held.splice(0)) parentPort.postMessage({ id: h, hex: 'done' });
        else held.push(m.id);
      });`;
    const threads = new HashThreads({ threads: 1, source });
    try {
      const buffers = new PartBuffers(2, { shared: true });
      const first = buffers.take(MiB);
      const hashing = threads.sha256Hex(first.subarray(0, 1000));
      expect(unreadBy(first.buffer)).toBeInstanceOf(Promise);
      buffers.give(first);
      const second = buffers.take(MiB);
      expect(second.buffer).not.toBe(first.buffer);
      // Releasing the held hash: the first buffer is idle again once it answered.
      (threads as unknown as { threads: { worker: { postMessage(m: unknown): void } }[] }).threads[0]!.worker.postMessage({
        release: true,
      });
      await expect(hashing).resolves.toBe('done');
      await unreadBy(first.buffer);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unreadBy(first.buffer)).toBeUndefined();
      expect(buffers.take(MiB).buffer).toBe(first.buffer);
    } finally {
      await threads.close();
    }
  });

  it('fail the hashes of a thread that dies with a clear error, free their buffers, and start a new thread for the next', async () => {
    const dying = `
      const { parentPort } = require('node:worker_threads');
      parentPort.on('message', () => { throw new Error('boom in the hashing thread'); });`;
    const threads = new HashThreads({ threads: 1, source: dying });
    try {
      const buffer = Buffer.from(new SharedArrayBuffer(1024));
      const failed = threads.sha256Hex(buffer);
      await expect(failed).rejects.toBeInstanceOf(HashThreadError);
      await expect(failed).rejects.toThrow(/exited \(code 1\): boom in the hashing thread; the part was not sent, retry/);
      expect(unreadBy(buffer.buffer)).toBeUndefined();
      // The dead thread is gone: the next hash starts another (which dies the same way, not hangs).
      await expect(threads.sha256Hex(buffer)).rejects.toBeInstanceOf(HashThreadError);
    } finally {
      await threads.close();
    }
  });

  it('terminate a thread that does not answer within the timeout, fail its hashes, and hash the next on a new thread', async () => {
    // The first message hangs its thread for good; a thread started afterwards hashes normally.
    const hanging = `
      const { parentPort, threadId } = require('node:worker_threads');
      const { createHash } = require('node:crypto');
      parentPort.on('message', ({ id, buffer, offset, length, }) => {
        if (new Uint8Array(buffer, offset, length)[0] === 1) for (;;) {}
        parentPort.postMessage({ id, hex: createHash('sha256').update(new Uint8Array(buffer, offset, length)).digest('hex') });
      });`;
    const threads = new HashThreads({ threads: 1, source: hanging, timeoutMs: 300 });
    try {
      const stuck = Buffer.from(new SharedArrayBuffer(64));
      stuck[0] = 1;
      const started = Date.now();
      const failed = threads.sha256Hex(stuck);
      await expect(failed).rejects.toBeInstanceOf(HashThreadError);
      await expect(failed).rejects.toThrow(
        /exited \(code 1\): no answer to a hash of 64 bytes within 300 ms; the part was not sent, retry/,
      );
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(unreadBy(stuck.buffer)).toBeUndefined();
      const fine = Buffer.from(new SharedArrayBuffer(64));
      await expect(threads.sha256Hex(fine)).resolves.toBe(sha256(fine));
    } finally {
      await threads.close();
    }
  });

  it('do not keep a process alive once idle', async () => {
    // A process that hashes once and then has nothing else to do must exit by itself.
    const script = `
      const { HashThreads } = require(${JSON.stringify(path.resolve(__dirname, '../../src/s3/hash-threads.ts'))});
      const buffer = Buffer.from(new SharedArrayBuffer(4 * 1024 * 1024));
      new HashThreads({ threads: 2 }).sha256Hex(buffer).then((hex) => console.log(hex));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '-e', script], { timeout: 20_000 });
    expect(stdout.trim()).toBe(sha256(Buffer.alloc(4 * MiB)));
  });
});
