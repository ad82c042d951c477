/**
 * Scenario 1: the worker is SIGKILLed in the middle of upload-parts and started again. The retry
 * resumes from the parts S3 already has (ListParts), so what is sent again is bounded by the
 * parts that were in flight; bytes are counted on the wire by a TCP relay in front of MinIO
 * (the approach of test/resilience/worker-crash.test.ts).
 */
import assert from 'node:assert/strict';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';
import { completedAttempts } from '../helpers/s3-toxiproxy';

export const scenario: FaultScenario = {
  name: 'worker-sigkill-resume',
  proves:
    'a worker SIGKILLed during upload-parts and restarted resumes from ListParts: byte-identical, resending at most the parts in flight',
  async run(ctx) {
    const partSize = 5 * MiB;
    const concurrency = 2;
    // Throttled (4 MiB/s per connection) so the SIGKILL lands mid-upload: unthrottled on an idle
    // machine, 160 MiB went up in under two seconds and the kill came with 30 of 32 parts done.
    const counter = await ctx.s3Relay({ bytesPerSecond: 4 * MiB });
    const env = { S3_ENDPOINT: counter.url };

    const file = await ctx.makeFile(64 * MiB);
    const parts = Math.ceil(file.size / partSize);
    const first = await ctx.startWorker({ env, label: 'first' });
    const upload = await ctx.startUpload({ file, request: { partSize, partConcurrency: concurrency } });
    const partsBeforeCrash = await ctx.waitFor(
      '4 parts uploaded',
      async () => {
        const { partsDone } = await upload.handle.progress();
        return partsDone >= 4 && partsDone;
      },
      { intervalMs: 100 },
    );
    await first.kill('SIGKILL');
    assert.ok(partsBeforeCrash < parts, `the crash must happen mid-upload (${partsBeforeCrash} of ${parts} parts were done)`);

    await ctx.startWorker({ env, label: 'restarted' });
    const report = await ctx.assertInvariants(upload, { outcome: 'completed' });
    assert.equal(report.outcome, 'completed');
    // The resume really ran on a later attempt: the batch in flight at the SIGKILL completed at attempt ≥ 2.
    const attempts = await completedAttempts(upload);
    ctx.log(`uploadParts completed at attempts ${attempts.join(', ')}`);
    assert.ok(
      attempts.some((a) => a >= 2),
      `upload-parts must have completed on a retry after the SIGKILL, but every batch completed at attempt 1 (${attempts.join(', ')})`,
    );
    const resent = counter.bytesUp() - file.size;
    ctx.summary(
      `${partsBeforeCrash}/${parts} parts done at SIGKILL, upload-parts completed at attempt ${Math.max(...attempts)}, ${(resent / MiB).toFixed(2)} MiB resent (bound ${(concurrency * partSize) / MiB} MiB of parts in flight + 0.5 MiB of requests)`,
    );
    assert.ok(resent <= concurrency * partSize + 512 * 1024, `resent ${resent} bytes, more than the ${concurrency} parts in flight`);
  },
};
