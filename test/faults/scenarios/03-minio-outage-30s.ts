/**
 * Scenario 3: MinIO is stopped for 30 s in the middle of upload-parts, then started again (same
 * port, same data). upload-parts fails while it is gone and is retried with backoff; the retry
 * after the restart resumes from ListParts and the upload completes byte-identical.
 *
 * The worker reaches MinIO through a throttled TCP relay so that the upload lasts long enough
 * (about 30 s) for the outage to land in the middle of it.
 */
import assert from 'node:assert/strict';
import { completedActivityAttempts } from '../../support/activity-attempts';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';

const OUTAGE_MS = 30_000;

export const scenario: FaultScenario = {
  name: 'minio-outage-30s',
  proves: 'storage gone for 30 s mid-upload: upload-parts is retried with backoff and completes byte-identical once MinIO is back',
  async run(ctx) {
    const relay = await ctx.s3Relay({ bytesPerSecond: 1 * MiB });
    await ctx.startWorker({ env: { S3_ENDPOINT: relay.url } });

    const file = await ctx.makeFile(64 * MiB);
    const upload = await ctx.startUpload({ file, request: { partSize: 5 * MiB, partConcurrency: 2 } });
    const partsBefore = await ctx.waitFor(
      '2 parts uploaded',
      async () => {
        const { partsDone } = await upload.handle.progress();
        return partsDone >= 2 && partsDone;
      },
      { timeoutMs: 120_000 },
    );
    assert.ok(partsBefore < 13, 'the outage must start mid-upload');

    ctx.log(`stopping MinIO at ${partsBefore}/13 parts`);
    await ctx.minio.stop();
    await ctx.sleep(OUTAGE_MS);
    const { phase, outcome } = await upload.handle.progress();
    assert.equal(outcome, 'running', 'the upload must still be running after the outage (retrying, not compensating)');
    assert.equal(phase, 'upload-parts');
    const restartedAt = Date.now();
    await ctx.minio.start();
    ctx.log('MinIO is back');

    await ctx.assertInvariants(upload, { outcome: 'completed' });
    const [completed] = await completedActivityAttempts(upload.handle.workflow, 'uploadParts');
    assert.ok((completed?.attempt ?? 1) > 1, 'upload-parts completed on a retry');
    ctx.summary(
      `outage at ${partsBefore}/13 parts; completed on attempt ${completed?.attempt}, ${((Date.now() - restartedAt) / 1000).toFixed(0)} s after MinIO came back`,
    );
  },
};
