/**
 * Scenario 19: CreateMultipartUpload answers lost on the wire. An S3 gate in front of MinIO lets
 * the worker's first creates reach MinIO, which creates each upload, and then cuts the worker's
 * connection instead of returning the answer. The worker never learns those upload ids: the S3
 * client retries (its own attempts, then the activity's next attempt) and creates another. The
 * saga must abort the orphans it cannot know by id (src/s3/create-multipart-upload.ts), so that
 * once the upload completed byte-identical no multipart upload of the key is left.
 *
 * Three answers are lost: as many as the S3 client's own attempts (the SDK's default of 3), so the
 * first upload-parts attempt fails and the orphans span an activity retry, not only the client's.
 * The scenario proves the fault landed before it counts the outcome: the gate lost ≥ 1 answer,
 * ≥ 2 creates reached MinIO, and every upload id of a lost answer was aborted through the gate.
 */
import assert from 'node:assert/strict';
import { completedActivityAttempts } from '../../support/activity-attempts';
import { MiB } from '../../support/files';
import { incompleteUploads } from '../../support/s3-inspect';
import type { FaultScenario } from '../framework';
import { startS3Gate } from '../s3-gate';

const ANSWERS_TO_LOSE = 3;

export const scenario: FaultScenario = {
  name: 'lost-create-answer',
  proves:
    'CreateMultipartUpload answers lost on the wire after MinIO created the upload (three, across an activity retry): the upload completes byte-identical and every orphaned multipart upload is aborted',
  async run(ctx) {
    const gate = await startS3Gate(ctx.minio.endpoint);
    ctx.defer(() => gate.close());
    await ctx.startWorker({ env: { S3_ENDPOINT: gate.url } });
    const loss = gate.loseAnswers('CreateMultipartUpload', ANSWERS_TO_LOSE);
    const upload = await ctx.startUpload({ file: await ctx.makeFile(12 * MiB), request: { partSize: 5 * MiB } });

    await ctx.assertInvariants(upload, { outcome: 'completed' });

    // The fault landed: creates were carried out by MinIO and their answers never reached the worker.
    assert.ok(loss.lost.length >= 1, `no CreateMultipartUpload answer was lost (${loss.forwarded} forwarded)`);
    assert.ok(loss.forwarded >= 2, `only ${loss.forwarded} CreateMultipartUpload reached MinIO`);
    const lostIds = loss.lost.map((body) => /<UploadId>([^<]+)<\/UploadId>/.exec(body)?.[1]);
    assert.ok(
      lostIds.every((id) => id !== undefined),
      `a lost answer names no UploadId: ${loss.lost.join(' | ')}`,
    );
    const aborted = new Set(
      gate.seen
        .filter((r) => r.operation === 'AbortMultipartUpload')
        .map((r) => new URL(r.path, 'http://gate').searchParams.get('uploadId')),
    );
    const notAborted = lostIds.filter((id) => !aborted.has(id!));
    assert.deepEqual(notAborted, [], 'every upload whose create answer was lost is aborted by the saga');
    const open = await incompleteUploads(ctx.s3, upload.bucket, upload.key);
    assert.deepEqual(open, [], 'no multipart upload of the key is left');

    const [parts] = await completedActivityAttempts(upload.handle.workflow, 'uploadParts');
    ctx.summary(
      `${loss.lost.length} create answers lost of ${loss.forwarded} creates forwarded; ${lostIds.length} orphans aborted; upload-parts completed at attempt ${parts?.attempt}`,
    );
  },
};
