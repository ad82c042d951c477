/**
 * Scenario 7: S3 starts answering AccessDenied in the middle of upload-parts: the worker's MinIO
 * user loses `s3:PutObject` on the key's prefix while parts are in flight (an operator tightening
 * a policy). Retrying cannot help, so the step fails at its first attempt with
 * `S3.AccessDenied` and the saga compensates: the multipart upload is aborted (abort is still
 * allowed), the reservation released, `upload.failed` sent.
 *
 * Why a MinIO user and not a bucket policy: MinIO applies bucket policies to anonymous requests
 * only and exempts its root user from every policy (see helpers/minio-admin.ts), so the worker
 * runs as a regular user whose own policy gets an explicit Deny.
 */
import assert from 'node:assert/strict';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';
import { createRestrictableS3User } from '../helpers/minio-admin';
import { startS3Proxy } from '../helpers/s3-toxiproxy';

export const scenario: FaultScenario = {
  name: 's3-access-denied-mid-upload',
  proves:
    'writes denied mid-upload fail upload-parts at its first attempt with the non-retryable S3.AccessDenied, and the saga compensates',
  async run(ctx) {
    const prefix = 'faults/denied/';
    const user = await createRestrictableS3User(
      {
        endpoint: ctx.minio.endpoint,
        region: ctx.minio.region,
        accessKeyId: ctx.minio.accessKeyId,
        secretAccessKey: ctx.minio.secretAccessKey,
      },
      { bucket: ctx.bucket, keyPrefix: prefix },
    );
    // 2 MB/s per connection, so that the policy changes while parts are in flight.
    const proxy = await startS3Proxy(ctx);
    await proxy.addToxic({ type: 'bandwidth', attributes: { rate: 2048 } }, { name: 'slow', stream: 'upstream' });
    await ctx.startWorker({
      env: { S3_ENDPOINT: proxy.url, S3_ACCESS_KEY_ID: user.accessKeyId, S3_SECRET_ACCESS_KEY: user.secretAccessKey },
    });

    const file = await ctx.makeFile(40 * MiB);
    const upload = await ctx.startUpload({
      file,
      request: { destination: { bucket: ctx.bucket, key: `${prefix}${ctx.uniqueId('obj')}.bin` }, partSize: 5 * MiB, partConcurrency: 2 },
    });
    const partsBefore = await ctx.waitFor(
      '2 parts uploaded',
      async () => {
        const { partsDone } = await upload.handle.progress();
        return partsDone >= 2 && partsDone;
      },
      { intervalMs: 100 },
    );
    await user.denyWrites();
    ctx.log(`writes under ${prefix} denied after ${partsBefore} of 8 parts`);

    const report = await ctx.assertInvariants(upload, { outcome: 'compensated', failedStep: 'upload-parts', causeType: 'S3.AccessDenied' });
    assert.ok(report.settled.outcome === 'compensated');
    const { report: saga } = report.settled;
    assert.match(
      saga?.cause.message ?? '',
      /upload parts .*AccessDenied \(HTTP 403\)/,
      `the cause names the operation and S3's answer: ${saga?.cause.message}`,
    );
    assert.deepEqual(
      saga?.compensations.map((c) => [c.activity, c.status]),
      [
        ['cleanupUpload', 'compensated'],
        ['releaseReservation', 'compensated'],
      ],
    );
    // Permanent: upload-parts failed at attempt 1, no retry was scheduled.
    const events = (await upload.handle.workflow.fetchHistory()).events ?? [];
    const byId = new Map(events.map((e) => [Number(e.eventId), e]));
    const failedParts = events.filter(
      (e) =>
        e.activityTaskFailedEventAttributes &&
        byId.get(Number(e.activityTaskFailedEventAttributes.scheduledEventId))?.activityTaskScheduledEventAttributes?.activityType?.name ===
          'uploadParts',
    );
    assert.equal(failedParts.length, 1);
    const attempt = byId.get(Number(failedParts[0]!.activityTaskFailedEventAttributes!.startedEventId))?.activityTaskStartedEventAttributes
      ?.attempt;
    assert.equal(attempt, 1, `AccessDenied is permanent, but upload-parts failed at attempt ${attempt}`);
    ctx.summary(`denied after ${partsBefore}/8 parts → S3.AccessDenied at attempt 1, compensated`);
  },
};
