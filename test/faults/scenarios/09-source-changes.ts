/**
 * Scenario 9: the source file changes under a running upload. Whatever the change, the upload
 * must not merge an object that is neither the old file nor the new one: the change is detected
 * (`SourceChanged`) and the saga compensates.
 *
 * - Truncated: a read past the new end fails at once.
 * - Appended to: the next batch (or verify) sees another size.
 * - Rewritten in place, same size, times restored — what `rsync --inplace --times` or `cp -p`
 *   onto the file does: size and modification time are as before, so only the inode's change
 *   time (ctime, which no user can set back) shows it.
 *
 * Uploads go through a 2 MB/s-per-connection toxiproxy link, one part per batch, so the change
 * reliably lands in the middle.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { MiB } from '../../support/files';
import type { FaultContext, FaultScenario } from '../framework';
import { startS3Proxy } from '../helpers/s3-toxiproxy';

const PART = 5 * MiB;

/** Worker behind a slow link, a 40 MiB source, its upload, and a wait until 2 parts are in. */
async function uploadUntilTwoParts(ctx: FaultContext, options: { mtimeSeconds?: number } = {}) {
  const proxy = await startS3Proxy(ctx);
  await proxy.addToxic({ type: 'bandwidth', attributes: { rate: 2048 } }, { name: 'slow', stream: 'upstream' });
  await ctx.startWorker({ env: { S3_ENDPOINT: proxy.url } });
  const file = await ctx.makeFile(8 * PART);
  if (options.mtimeSeconds !== undefined) await fsp.utimes(file.path, options.mtimeSeconds, options.mtimeSeconds);
  const upload = await ctx.startUpload({ file, request: { partSize: PART, partConcurrency: 2, partsPerActivity: 1 } });
  const partsDone = await ctx.waitFor(
    '2 parts uploaded',
    async () => {
      const { partsDone: done } = await upload.handle.progress();
      return done >= 2 && done;
    },
    { intervalMs: 100 },
  );
  return { file, upload, partsDone };
}

export const scenarios: FaultScenario[] = [
  {
    name: 'source-truncated-mid-upload',
    proves: 'a source truncated mid-upload fails upload-parts with SourceChanged (not retried) and the saga compensates',
    async run(ctx) {
      const { file, upload, partsDone } = await uploadUntilTwoParts(ctx);
      await fsp.truncate(file.path, 3 * PART);
      ctx.log(`truncated to ${3 * PART} bytes after ${partsDone} parts`);
      const report = await ctx.assertInvariants(upload, { outcome: 'compensated', failedStep: 'upload-parts', causeType: 'SourceChanged' });
      assert.ok(report.settled.outcome === 'compensated');
      assert.match(report.settled.report?.cause.message ?? '', /truncated|changed/);
      ctx.summary(`truncated after ${partsDone}/8 parts → SourceChanged, compensated`);
    },
  },
  {
    name: 'source-appended-mid-upload',
    proves: 'a source that grows mid-upload is detected (SourceChanged) before the merge and the saga compensates',
    async run(ctx) {
      const { file, upload, partsDone } = await uploadUntilTwoParts(ctx);
      await fsp.appendFile(file.path, randomBytes(MiB));
      ctx.log(`appended 1 MiB after ${partsDone} parts`);
      const report = await ctx.assertInvariants(upload, { outcome: 'compensated', causeType: 'SourceChanged' });
      assert.ok(report.failedStep === 'upload-parts' || report.failedStep === 'verify', `detected at ${report.failedStep}`);
      ctx.summary(`appended after ${partsDone}/8 parts → SourceChanged at ${report.failedStep}, compensated`);
    },
  },
  {
    name: 'source-rewritten-times-restored',
    proves:
      'a same-size in-place rewrite with the modification time set back (rsync --inplace --times) is detected by the change time: SourceChanged, compensated, no mixed object',
    async run(ctx) {
      // Whole seconds, as a copied file's times often are: setting them back is then exact.
      const mtime = Math.floor(Date.now() / 1000) - 3600;
      const { file, upload, partsDone } = await uploadUntilTwoParts(ctx, { mtimeSeconds: mtime });
      const before = await fsp.stat(file.path);
      const handle = await fsp.open(file.path, 'r+');
      try {
        await handle.write(randomBytes(file.size), 0, file.size, 0);
      } finally {
        await handle.close();
      }
      await fsp.utimes(file.path, mtime, mtime);
      const after = await fsp.stat(file.path);
      assert.equal(after.size, before.size);
      assert.equal(after.mtimeMs, before.mtimeMs, 'the modification time is restored exactly');
      ctx.log(`rewritten in place after ${partsDone} parts; mtime restored, ctime ${before.ctimeMs} → ${after.ctimeMs}`);
      const report = await ctx.assertInvariants(upload, { outcome: 'compensated', causeType: 'SourceChanged' });
      ctx.summary(`rewritten (times restored) after ${partsDone}/8 parts → SourceChanged at ${report.failedStep}, compensated`);
    },
  },
];
