/**
 * Local-file sources stay under the worker's allowed roots: `..`, symlinks (also a symlink
 * swapped in between the check and the open, and a directory swapped while a file is opened),
 * FIFOs, directories and hard links to files outside the roots are refused. The resolver is tested on the real file system, and the
 * "replaced by a symlink after inspect" case end to end through the real worker into MinIO.
 */
import { execFileSync } from 'node:child_process';
import { link, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker as Thread } from 'node:worker_threads';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../src/activities';
import type { SourceResolver } from '../../src/activities/sources/byte-source';
import { linksOutsideRoots } from '../../src/activities/sources/hard-links';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import { UploadClient, UploadFailedError } from '../../src/client';
import { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import { createUploadWorker } from '../../src/worker';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';
import { incompleteUploads, objectExists } from '../support/s3-inspect';

let tmp: { dir: string; remove(): Promise<void> };
let root: string;
let outside: string;

beforeAll(async () => {
  tmp = await makeTempDir('upload-saga-roots-');
  root = path.join(tmp.dir, 'root');
  outside = path.join(tmp.dir, 'outside');
  await mkdir(root);
  await mkdir(outside);
  await writeFile(path.join(root, 'inside.bin'), 'inside');
  await writeFile(path.join(outside, 'secret.bin'), 'outside');
});

afterAll(async () => {
  await tmp?.remove();
});

/** The failure `open` ends with, as "Type: message". */
async function refusal(resolver: SourceResolver, filePath: string): Promise<string> {
  const error = await resolver.open({ type: 'file', path: filePath }).then(
    async (source) => {
      await source.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error, `${filePath} was opened`).toBeInstanceOf(ApplicationFailure);
  return `${(error as ApplicationFailure).type}: ${(error as ApplicationFailure).message}`;
}

describe('local-file sources and the allowed roots', () => {
  it('refuses a symlink inside a root that points outside, naming where it leads', async () => {
    const link = path.join(root, 'escape.bin');
    await symlink(path.join(outside, 'secret.bin'), link);
    const resolver = new LocalFileResolver({ allowedRoots: [root] });
    expect(await refusal(resolver, link)).toBe(
      `SourceNotAllowed: source file ${link} (resolves to ${path.join(outside, 'secret.bin')}) is outside the worker's allowed roots: ${root}; set UPLOAD_SAGA_ALLOWED_ROOTS`,
    );
  });

  it('refuses a path that climbs out with ..', async () => {
    const climbing = `${root}/../outside/secret.bin`;
    expect(await refusal(new LocalFileResolver({ allowedRoots: [root] }), climbing)).toContain(
      `SourceNotAllowed: source file ${climbing} (resolves to ${path.join(outside, 'secret.bin')}) is outside`,
    );
  });

  it('accepts a symlink that stays inside a root, and a root that is itself a symlink', async () => {
    await symlink(path.join(root, 'inside.bin'), path.join(root, 'alias.bin'));
    const rootLink = path.join(tmp.dir, 'root-link');
    await symlink(root, rootLink);
    for (const [roots, file] of [
      [[root], path.join(root, 'alias.bin')],
      [[rootLink], path.join(rootLink, 'inside.bin')], // the root named by its link
      [[rootLink], path.join(root, 'inside.bin')], // the file named by its real path
    ] as const) {
      const source = await new LocalFileResolver({ allowedRoots: [...roots] }).open({ type: 'file', path: file });
      expect((await source.read(0, 6)).toString()).toBe('inside');
      await source.close();
    }
    expect(await refusal(new LocalFileResolver({ allowedRoots: [rootLink] }), path.join(outside, 'secret.bin'))).toMatch(
      /^SourceNotAllowed: /,
    );
  });

  it('refuses a hard link inside a root to a file outside it, and accepts one whose every name is inside', async () => {
    const escape = path.join(root, 'hard-escape.bin');
    await link(path.join(outside, 'secret.bin'), escape);
    const resolver = new LocalFileResolver({ allowedRoots: [root] });
    expect(await refusal(resolver, escape)).toBe(
      `SourceNotAllowed: source file ${escape} is a hard link: it has 2 names and only 1 of them are under the worker's allowed roots (${root}; set UPLOAD_SAGA_ALLOWED_ROOTS); refused, as the same file is reachable outside them`,
    );
    // Both names under the roots (one in a nested directory): the file is what its path says.
    await mkdir(path.join(root, 'nested'), { recursive: true });
    const twin = path.join(root, 'nested', 'inside-twin.bin');
    await link(path.join(root, 'inside.bin'), twin);
    const source = await resolver.open({ type: 'file', path: twin });
    expect((await source.read(0, 6)).toString()).toBe('inside');
    await source.close();
    // The same file with the outside directory as a second root is fine too.
    const both = new LocalFileResolver({ allowedRoots: [root, outside] });
    const opened = await both.open({ type: 'file', path: escape });
    await opened.close();
  });

  it('gives up, refusing, when the roots hold more entries than the hard-link search may visit', async () => {
    const inner = path.join(root, 'many');
    await mkdir(inner, { recursive: true });
    for (let i = 0; i < 20; i += 1) await writeFile(path.join(inner, `f${i}`), '');
    await link(path.join(root, 'inside.bin'), path.join(inner, 'zz-twin.bin'));
    const stats = await stat(path.join(root, 'inside.bin'));
    expect(stats.nlink).toBeGreaterThan(1);
    const verdict = await linksOutsideRoots(stats, [root], 5);
    expect(verdict).toEqual({ ok: false, reason: 'too-many-entries', found: expect.any(Number), links: stats.nlink, maxEntries: 5 });
    expect(await linksOutsideRoots(stats, [root])).toEqual({ ok: true });
    // One root nested inside another does not count a name twice.
    expect(await linksOutsideRoots(await stat(path.join(outside, 'secret.bin')), [outside, outside])).toEqual({
      ok: false,
      reason: 'outside',
      found: 1,
      links: 2,
    });
  });

  it('refuses a FIFO without waiting for a writer, and a directory', async () => {
    const fifo = path.join(root, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const resolver = new LocalFileResolver({ allowedRoots: [root] });
    expect(await refusal(resolver, fifo)).toBe(`SourceUnreadable: source ${fifo} is not a regular file`);
    expect(await refusal(resolver, root)).toBe(`SourceUnreadable: source ${root} is not a regular file`);
  });

  it('never reads a file outside the roots while a directory and a file are swapped for symlinks under it', async () => {
    // root/race/f.bin holds "inside"; outside/race/f.bin holds "outside". A thread swaps, as fast
    // as it can, root/race for a symlink to outside/race, and root/race/g.bin between a regular
    // file and a symlink to outside/race/f.bin, while this thread keeps opening both paths.
    const raceDir = path.join(root, 'race');
    await mkdir(raceDir);
    await mkdir(path.join(outside, 'race'));
    await writeFile(path.join(raceDir, 'f.bin'), 'inside');
    await writeFile(path.join(raceDir, 'g.bin'), 'inside');
    await writeFile(path.join(outside, 'race', 'f.bin'), 'outside');
    // shared[0]: set to 1 to stop the swapper; shared[1]: swaps it completed (a file or a
    // directory replaced by a symlink and put back).
    const shared = new Int32Array(new SharedArrayBuffer(8));
    const swapper = new Thread(
      `
      const fs = require('node:fs');
      const { workerData: w } = require('node:worker_threads');
      while (Atomics.load(w.shared, 0) === 0) {
        try {
          fs.renameSync(w.g, w.g + '.real'); fs.symlinkSync(w.outsideFile, w.g); fs.unlinkSync(w.g); fs.renameSync(w.g + '.real', w.g);
          Atomics.add(w.shared, 1, 1);
          fs.renameSync(w.dir, w.dir + '.real'); fs.symlinkSync(w.outsideDir, w.dir); fs.unlinkSync(w.dir); fs.renameSync(w.dir + '.real', w.dir);
          Atomics.add(w.shared, 1, 1);
        } catch {}
      }`,
      {
        eval: true,
        workerData: {
          shared,
          dir: raceDir,
          g: path.join(raceDir, 'g.bin'),
          outsideDir: path.join(outside, 'race'),
          outsideFile: path.join(outside, 'race', 'f.bin'),
        },
      },
    );
    const done = new Promise((resolve) => swapper.once('exit', resolve));
    const resolver = new LocalFileResolver({ allowedRoots: [root] });
    const counts: Record<string, number> = {};
    // Opens the guard refused (a path caught mid-swap may also be missing: SourceNotFound).
    const refused = () => Object.entries(counts).reduce((n, [k, v]) => (k.startsWith('SourceNotAllowed') ? n + v : n), 0);
    // At least 3 s of racing, and on until the race has refused an open (at most 30 s: a loaded
    // machine may schedule the swapper rarely).
    const started = Date.now();
    while (Date.now() - started < 3000 || (refused() === 0 && Date.now() - started < 30_000)) {
      for (const name of ['f.bin', 'g.bin']) {
        const outcome = await resolver.open({ type: 'file', path: path.join(raceDir, name) }).then(
          async (source) => {
            try {
              return `read ${(await source.read(0, 6)).toString()}`;
            } catch (e) {
              return `read failed: ${(e as Error).message}`;
            } finally {
              await source.close();
            }
          },
          (e: unknown) => {
            const message = (e as Error).message;
            const how = message.includes('replaced by a symbolic link')
              ? ' (O_NOFOLLOW)'
              : message.includes('changed while it was opened')
                ? ' (descriptor check)'
                : '';
            return `${(e as ApplicationFailure).type}${how}`;
          },
        );
        counts[outcome] = (counts[outcome] ?? 0) + 1;
      }
    }
    Atomics.store(shared, 0, 1);
    await done;
    const swaps = Atomics.load(shared, 1);
    console.log(`opens during ${swaps} swaps:`, counts);
    expect(Object.keys(counts).filter((k) => k.startsWith('read ') && k !== 'read inside')).toEqual([]);
    // The race ran: the swapper swapped, the guard refused some opens, others read.
    expect(swaps).toBeGreaterThan(0);
    expect(refused()).toBeGreaterThan(0);
    expect(counts['read inside'] ?? 0).toBeGreaterThan(0);
    expect(await readFile(path.join(raceDir, 'f.bin'), 'utf8')).toBe('inside');
  });
});

describe('a source file replaced by a symlink after inspect-source, end to end', () => {
  let stack: TestStack;
  let worker: RunningWorker;
  let e2eRoot: { dir: string; remove(): Promise<void> };
  const TENANT = uniqueId('roots');

  beforeAll(async () => {
    stack = await connectTestStack();
    e2eRoot = await makeTempDir('upload-saga-roots-e2e-');
    const files = new LocalFileResolver({ allowedRoots: [e2eRoot.dir] });
    let opens = 0;
    // The real resolver, with a hook at the moment the attack would happen: after inspect-source
    // opened (and closed) the file, before upload-parts opens it again.
    const swapping: SourceResolver = {
      async open(source) {
        if (source.type === 'file' && ++opens === 2) {
          await rm(source.path);
          await symlink(path.join(outside, 'big-secret.bin'), source.path);
        }
        return files.open(source);
      },
    };
    const activities = createActivities({
      s3: stack.s3,
      sources: swapping,
      quota: new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota }),
      webhook: stack.config.webhook,
    });
    worker = runInBackground(
      await createUploadWorker({
        config: stack.config,
        connection: stack.workerConnection,
        client: stack.client,
        s3: stack.s3,
        activities,
      }),
    );
  });

  afterAll(async () => {
    await worker?.stop();
    await stack?.close();
    await e2eRoot?.remove();
  });

  it('fails upload-parts with SourceNotAllowed, compensates, and nothing of the outside file reaches S3', async () => {
    // The same size as the source, so only the roots check can stop it (not a size or version check first).
    await makeRandomFile(outside, 'big-secret.bin', 6 * MiB);
    {
      const file = await makeRandomFile(e2eRoot.dir, 'source.bin', 6 * MiB);
      const uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
      const key = `roots/${uniqueId('swapped')}.bin`;
      const err = await (
        await uploads.start({
          uploadId: uniqueId('swap'),
          tenant: TENANT,
          source: { type: 'file', path: file.path },
          destination: { bucket: 'uploads', key },
          partSize: 5 * MiB,
        })
      )
        .result()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UploadFailedError);
      const failed = err as UploadFailedError;
      expect(failed.report).toMatchObject({ failedStep: 'upload-parts', cause: { type: 'SourceNotAllowed' } });
      expect(failed.report?.cause.message).toContain(
        `source file ${file.path} (resolves to ${path.join(outside, 'big-secret.bin')}) is outside the worker's allowed roots`,
      );
      expect(failed.outcome).toBe('compensated');
      expect(await incompleteUploads(stack.s3, 'uploads', key)).toEqual([]);
      expect(await objectExists(stack.s3, 'uploads', key)).toBe(false);
    }
  });
});
