/**
 * Scenario 8: integrity faults. Nothing that differs from the source may be merged.
 *
 * - A part corrupted in flight: a relay between the worker and MinIO flips one bit in the body of
 *   one UploadPart, after the worker computed the part's checksum. S3 recomputes and rejects the
 *   part (over plain HTTP the signed payload hash catches it first, `XAmzContentSHA256Mismatch`;
 *   over HTTPS the part's CRC32C, `BadDigest`); it is never stored, the error is permanent, and
 *   the saga compensates at upload-parts.
 * - A wrong expected checksum: every part arrives intact, but the SHA-256 the caller announced is
 *   not the file's. verify reads the source, finds the mismatch (`ChecksumMismatch`) and the saga
 *   compensates before the merge: no object appears.
 */
import assert from 'node:assert/strict';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';
import { startCorruptingRelay } from '../helpers/corrupting-relay';

export const scenarios: FaultScenario[] = [
  {
    name: 'part-corrupted-in-flight',
    proves:
      'one bit flipped in one UploadPart body on the wire: S3 rejects the part, upload-parts fails permanently and the saga compensates',
    async run(ctx) {
      const minio = new URL(ctx.minio.endpoint);
      const relay = await startCorruptingRelay(
        { host: minio.hostname, port: Number(minio.port) },
        { corrupt: (request) => request.method === 'PUT' && /[?&]partNumber=3(&|$)/.test(request.target) },
      );
      ctx.defer(() => relay.close());
      await ctx.startWorker({ env: { S3_ENDPOINT: relay.url } });
      const file = await ctx.makeFile(20 * MiB);
      const upload = await ctx.startUpload({ file, request: { partSize: 5 * MiB, partConcurrency: 2 } });

      const report = await ctx.assertInvariants(upload, {
        outcome: 'compensated',
        failedStep: 'upload-parts',
        causeType: /^S3\.(XAmzContentSHA256Mismatch|BadDigest|XAmzContentChecksumMismatch|InvalidDigest)$/,
      });
      assert.equal(
        relay.corrupted.length,
        1,
        `exactly one part body was corrupted (${relay.corrupted.length}, ${relay.unframed} requests not framed)`,
      );
      ctx.summary(`bit flipped in part 3 → ${report.causeType}, compensated`);
    },
  },
  {
    name: 'wrong-expected-checksum',
    proves:
      "an expected SHA-256 that is not the file's fails verify with ChecksumMismatch before the merge; the saga compensates and no object appears",
    async run(ctx) {
      await ctx.startWorker();
      const file = await ctx.makeFile(12 * MiB);
      const wrong = file.sha256.replace(/^./, (c) => (c === '0' ? '1' : '0'));
      const upload = await ctx.startUpload({
        file,
        request: { partSize: 5 * MiB, expectedChecksum: { algorithm: 'SHA256', value: wrong } },
      });
      const report = await ctx.assertInvariants(upload, { outcome: 'compensated', failedStep: 'verify', causeType: 'ChecksumMismatch' });
      assert.ok(report.settled.outcome === 'compensated');
      const message = report.settled.report?.cause.message ?? '';
      assert.ok(message.includes(file.sha256) && message.includes(wrong), `the cause names both digests: ${message}`);
      ctx.summary('verify → ChecksumMismatch, compensated');
    },
  },
];
