/**
 * SHA-256 of part buffers on a few worker threads, without copying the bytes: the buffers live in
 * shared memory (`SharedArrayBuffer`, see part-buffers.ts), and a thread hashes a view of them
 * with node:crypto. The gateway signs every part it sends over plain HTTP with its SHA-256
 * (payload-signature.ts); WebCrypto hashes on libuv's thread pool too, but first copies the part
 * on the JavaScript thread (measured: about 60 ms of it per 128 MiB, with a fresh allocation per
 * part), and that thread is the gateway's bottleneck.
 *
 * Invariants:
 * - While a hash over a buffer runs, the buffer is not reused: {@link unreadBy} tells
 *   `PartBuffers.give` to wait for it before another part is written into the buffer.
 * - A thread that dies fails the hashes it was given with {@link HashThreadError} (a request
 *   failing with it may be retried), only once it has exited, so it reads no buffer after that;
 *   the next hash starts a new thread.
 * - A thread that does not answer a hash within the timeout is terminated, and then fails the same
 *   way: no hash waits forever.
 * - The threads never keep the process alive: each is unref'd while it has nothing to hash.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * The threads' code: one message per hash (a shared buffer and the range to hash), one answer.
 * Plain JavaScript evaluated as the thread's script, so the same code runs from the TypeScript
 * sources (tsx, vitest) and from the compiled package, with no module file to locate.
 */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', ({ id, buffer, offset, length }) => {
  try {
    parentPort.postMessage({ id, hex: createHash('sha256').update(new Uint8Array(buffer, offset, length)).digest('hex') });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message || error) });
  }
});
`;

/** A hash that did not complete because its thread failed; the request may be retried. */
export class HashThreadError extends Error {
  override readonly name = 'HashThreadError';
}

interface Task {
  resolve: (hex: string) => void;
  reject: (error: Error) => void;
  buffer: SharedArrayBuffer;
  /** Terminates the thread when the hash takes longer than the timeout. */
  timer: NodeJS.Timeout;
}

interface Thread {
  worker: Worker;
  tasks: Map<number, Task>;
  /** Why it failed, once an 'error' came (its 'exit' follows). */
  failure?: Error;
}

/** Hashes running over each shared buffer, and who waits for them to end. */
const readers = new Map<SharedArrayBuffer, { count: number; done: Promise<void>; end: () => void }>();

function startReading(buffer: SharedArrayBuffer): void {
  const entry = readers.get(buffer);
  if (entry) {
    entry.count++;
    return;
  }
  let end!: () => void;
  const done = new Promise<void>((resolve) => (end = resolve));
  readers.set(buffer, { count: 1, done, end });
}

function stopReading(buffer: SharedArrayBuffer): void {
  const entry = readers.get(buffer)!;
  if (--entry.count > 0) return;
  readers.delete(buffer);
  entry.end();
}

/** Settles once no hash reads `buffer` any more; undefined when none does now. */
export function unreadBy(buffer: ArrayBufferLike): Promise<void> | undefined {
  return buffer instanceof SharedArrayBuffer ? readers.get(buffer)?.done : undefined;
}

/** Options of {@link HashThreads}. */
export interface HashThreadsOptions {
  /**
   * Threads at most (started on demand).
   * @default the machine's parallelism, at most 4
   */
  threads?: number;
  /** The threads' code (tests: a thread that fails). @default the SHA-256 thread */
  source?: string;
  /**
   * How long one hash may take before its thread is terminated and its hashes fail. Far above a
   * hash of the largest part S3 takes (5 GiB at 100 MB/s is under a minute).
   * @default 120_000
   */
  timeoutMs?: number;
}

/** A pool of threads that compute SHA-256 over views of shared memory. */
export class HashThreads {
  private readonly threads: Thread[] = [];
  private readonly maxThreads: number;
  private readonly source: string;
  private readonly timeoutMs: number;
  private nextId = 0;

  constructor(options: HashThreadsOptions = {}) {
    this.maxThreads = Math.max(1, options.threads ?? Math.min(4, os.availableParallelism()));
    this.source = options.source ?? THREAD_SOURCE;
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  /** The SHA-256 of `view`, in hex; `view` must lie in a SharedArrayBuffer and not change until this settles. */
  sha256Hex(view: Uint8Array): Promise<string> {
    const buffer = view.buffer;
    if (!(buffer instanceof SharedArrayBuffer)) throw new TypeError('HashThreads hashes views of a SharedArrayBuffer only');
    const thread = this.pick();
    const id = this.nextId++;
    startReading(buffer);
    if (thread.tasks.size === 0) thread.worker.ref();
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        thread.failure ??= new Error(`no answer to a hash of ${view.byteLength} bytes within ${this.timeoutMs} ms`);
        void thread.worker.terminate();
      }, this.timeoutMs).unref();
      thread.tasks.set(id, { resolve, reject, buffer, timer });
      thread.worker.postMessage({ id, buffer, offset: view.byteOffset, length: view.byteLength });
    });
  }

  /** Stops the threads; their pending hashes fail. */
  async close(): Promise<void> {
    await Promise.all(this.threads.map((thread) => thread.worker.terminate()));
  }

  /** An idle thread, a new one while fewer than the maximum run, else the least busy; never one that failed. */
  private pick(): Thread {
    const live = this.threads.filter((thread) => thread.failure === undefined);
    const idle = live.find((thread) => thread.tasks.size === 0);
    if (idle) return idle;
    if (live.length < this.maxThreads) return this.spawn();
    return live.reduce((a, b) => (b.tasks.size < a.tasks.size ? b : a));
  }

  private spawn(): Thread {
    const worker = new Worker(this.source, { eval: true });
    worker.unref();
    const thread: Thread = { worker, tasks: new Map() };
    this.threads.push(thread);
    worker.on('message', ({ id, hex, error }: { id: number; hex?: string; error?: string }) => {
      const task = thread.tasks.get(id);
      if (!task) return;
      this.finish(thread, id, task);
      if (hex !== undefined) task.resolve(hex);
      else task.reject(new HashThreadError(`SHA-256 of a part failed: ${error}`));
    });
    worker.on('error', (error) => void (thread.failure ??= error));
    // The thread reads no buffer once it exited: only then are its buffers free and its hashes failed.
    worker.on('exit', (code) => {
      this.threads.splice(this.threads.indexOf(thread), 1);
      const why = thread.failure ? `: ${thread.failure.message}` : '';
      for (const [id, task] of thread.tasks) {
        this.finish(thread, id, task);
        task.reject(new HashThreadError(`the thread computing a part's SHA-256 exited (code ${code})${why}; the part was not sent, retry`));
      }
    });
    return thread;
  }

  private finish(thread: Thread, id: number, task: Task): void {
    clearTimeout(task.timer);
    thread.tasks.delete(id);
    stopReading(task.buffer);
    if (thread.tasks.size === 0) thread.worker.unref();
  }
}

let shared: HashThreads | undefined;

/** The process's pool (its threads start with the first hash). */
export function hashThreads(): HashThreads {
  return (shared ??= new HashThreads());
}

/** Makes `pool` the process's pool (tests: threads that fail); returns the one it replaces. */
export function setHashThreads(pool: HashThreads | undefined): HashThreads | undefined {
  const replaced = shared;
  shared = pool;
  return replaced;
}
