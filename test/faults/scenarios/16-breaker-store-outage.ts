/**
 * Scenario 16: 20 uploads in flight when the store goes down for 60 s, run twice on the same
 * servers: once with the worker's circuit breakers off, once on (the default). An HTTP relay in
 * front of MinIO (test/faults/s3-gate.ts) records every S3 request the worker sends; the requests
 * that arrive while MinIO is stopped are the load a dead store would take.
 *
 * Without the breaker, every upload's own retries (the SDK's 3 attempts × Temporal's backoff)
 * reach the store; with it, a few failures open the breaker of the endpoint and every activity
 * fails fast with `S3.CircuitOpen`, retried after the time left until the half-open probe, so
 * only the probes (one per `halfOpenAfter`) reach the store. Claim: at least 90 % fewer requests,
 * and every upload completes byte-identical once the store is back (the runner's invariants).
 *
 * How the outage lands mid-upload: the relay holds every UploadPart until all 20 uploads wait in
 * upload-parts; MinIO is stopped, then the held requests are let through (and fail).
 */
import assert from 'node:assert/strict';
import { MiB } from '../../support/files';
import type { FaultContext, FaultScenario, TrackedUpload } from '../framework';
import { startS3Gate, type S3Gate } from '../s3-gate';

const UPLOADS = 20;
/** Two parts of 5 MiB: a file of one part would take the small-file fast path (one PutObject, no upload-parts). */
const SIZE = 6 * MiB;
const PART_SIZE = 5 * MiB;
const OUTAGE_MS = 60_000;

interface RunResult {
  /** S3 requests that reached the relay while MinIO was stopped. */
  duringOutage: number;
  /** Seconds from MinIO's restart until every upload had completed. */
  recoverySeconds: number;
}

async function outageRun(ctx: FaultContext, gate: S3Gate, breaker: boolean): Promise<RunResult> {
  const label = breaker ? 'with-breaker' : 'without-breaker';
  const worker = await ctx.startWorker({
    label,
    env: {
      S3_ENDPOINT: gate.url,
      UPLOAD_SAGA_BREAKER_ENABLED: String(breaker),
      // Every upload's upload-parts runs at once, as 20 uploads on a fleet of workers would.
      UPLOAD_SAGA_MAX_CONCURRENT_ACTIVITIES: String(2 * UPLOADS),
    },
  });
  const hold = gate.hold('UploadPart');
  const file = await ctx.makeFile(SIZE, `${label}.bin`);
  const uploads: TrackedUpload[] = [];
  for (let i = 0; i < UPLOADS; i++) uploads.push(await ctx.startUpload({ file, request: { partConcurrency: 1, partSize: PART_SIZE } }));
  await hold.waitUntilHeld(UPLOADS, 120_000);
  ctx.log(`${label}: ${UPLOADS} uploads wait in upload-parts; stopping MinIO`);

  await ctx.minio.stop();
  const outageStart = Date.now();
  hold.release();
  await ctx.sleep(OUTAGE_MS);
  const outageEnd = Date.now();
  await ctx.minio.start();
  const restartedAt = Date.now();
  const duringOutage = gate.seen.filter((r) => r.at >= outageStart && r.at < outageEnd).length;
  ctx.log(`${label}: MinIO back; ${duringOutage} S3 requests reached the relay during the ${OUTAGE_MS / 1000} s outage`);

  for (const upload of uploads) {
    const { outcome } = await upload.handle.progress();
    assert.equal(outcome, 'running', `${label}: ${upload.uploadId} must still be running after the outage (retrying, not compensating)`);
  }
  await Promise.all(uploads.map((upload) => ctx.assertInvariants(upload, { outcome: 'completed' })));
  const recoverySeconds = (Date.now() - restartedAt) / 1000;

  const output = worker.output();
  if (breaker) assert.match(output, /circuit breaker for s3:\S+ opened/, 'the worker logs the breaker opening');
  else assert.doesNotMatch(output, /circuit breaker for/, 'a disabled breaker never changes state');
  // The next run's worker replaces this one; the last stays (the runner's ledger check queries through it).
  if (!breaker) await worker.kill('SIGTERM');
  return { duringOutage, recoverySeconds };
}

export const scenario: FaultScenario = {
  name: 'breaker-store-outage',
  proves: `${UPLOADS} uploads, store down ${OUTAGE_MS / 1000} s: the circuit breaker cuts the S3 requests reaching the dead store by ≥ 90 % and every upload completes once it is back`,
  timeoutMs: 720_000,
  async run(ctx) {
    const gate = await startS3Gate(ctx.minio.endpoint);
    ctx.defer(() => gate.close());

    const without = await outageRun(ctx, gate, false);
    const withBreaker = await outageRun(ctx, gate, true);

    const reduction = 1 - withBreaker.duringOutage / without.duringOutage;
    ctx.summary(
      `S3 requests during the outage: ${without.duringOutage} without the breaker, ${withBreaker.duringOutage} with it ` +
        `(${(reduction * 100).toFixed(0)} % fewer); all ${2 * UPLOADS} uploads completed ` +
        `${without.recoverySeconds.toFixed(0)} s / ${withBreaker.recoverySeconds.toFixed(0)} s after MinIO came back`,
    );
    assert.ok(without.duringOutage >= 2 * UPLOADS, `without the breaker the retries must reach the store (${without.duringOutage})`);
    assert.ok(
      reduction >= 0.9,
      `the breaker must cut the requests by at least 90 %: ${without.duringOutage} → ${withBreaker.duringOutage}`,
    );
  },
};
