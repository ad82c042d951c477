/**
 * Scenario 18 (beyond the list): scale-out on the real Temporal server on PostgreSQL.
 * Three worker processes serve one task queue; two gateway replicas (`upload-saga gateway`, Redis
 * for locks, leases and rate limits) sit behind a TCP load balancer. 200 uploads of mixed sizes
 * run at once: 100 worker-side (files, the one-part fast path and multipart), 50 tus through the
 * balancer (tus-js-client, 1 MiB chunks) and 50 presigned (Uppy's Companion routes, parts PUT
 * straight to MinIO). Once a third of them have ended, one worker and one gateway replica are
 * SIGKILLed together.
 *
 * What must hold: every upload completes or is compensated, with the invariants of invariants.ts
 * (byte-identical or absent, no multipart upload or staged object left, the tenant's ledger adds
 * up). Requests the dead replica was serving are retried through the balancer and land on the
 * other one; a create that got no answer may have started an upload its client never learnt of:
 * those are found through the visibility store (`UploadTenant`) and must expire, compensated.
 *
 * Proof that the kills landed mid-run: uploads of every kind were in flight at the kill; at least
 * one upload's history has a task the killed worker started and a workflow task another worker
 * completed after the kill; at least one gateway upload had a request cut at the kill and still
 * completed.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { temporal } from '@temporalio/proto';
import { findFreePorts } from '../../../src/embedded/free-port';
import { uploadWorkflowId } from '../../../src/upload/request';
import { UploadKey } from '../../../src/upload/search-attributes';
import { MiB, type TestFile } from '../../support/files';

import type { FaultContext, FaultScenario, TrackedUpload } from '../framework';
import { startGatewayProcess, tusUpload } from '../helpers/gateway-process';
import { eventTimeMs } from '../helpers/history-evidence';
import { presignedUpload } from '../helpers/presigned-upload';
import { startTcpBalancer } from '../helpers/tcp-balancer';
import type { InvariantReport } from '../invariants';

const KiB = 1024;
const WORKER_SIDE = 100;
const TUS = 50;
const PRESIGNED = 50;
/** Uploads of each kind in flight at once. */
const IN_FLIGHT = { workerSide: 24, tus: 6, presigned: 6 };
/** Sizes, taken in turn: one-part fast path, multipart (5 MiB parts), tus parts staged and folded. */
const SIZES = {
  workerSide: [48 * KiB, 700 * KiB, 2 * MiB, 6 * MiB + 1234],
  tus: [200 * KiB, 1536 * KiB, 6 * MiB],
  presigned: [600 * KiB, 3 * MiB, 7 * MiB],
};
/** The kills come once this many uploads have ended. */
const KILL_AFTER_ENDED = Math.round((WORKER_SIDE + TUS + PRESIGNED) / 3);
/** Gateway uploads expire this long after creation: what an upload its client never learnt of waits. */
const EXPIRY_SECONDS = 150;

type Kind = 'workerSide' | 'tus' | 'presigned';

/** One upload of the run, from the scenario's side. */
interface Job {
  readonly kind: Kind;
  readonly index: number;
  readonly file: TestFile;
  /** The name the client gives the gateway (the key's last segment). */
  readonly filename: string;
  started: boolean;
  ended: boolean;
  /** The client gave up (gateway kinds): the upload may have expired, compensated. */
  clientFailed?: string;
  /** Requests that got no answer or a 5xx, and when. */
  readonly cuts: number[];
  upload?: TrackedUpload;
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Who ran a history event, for the events that name a worker. */
function identityOf(event: HistoryEvent): string | undefined {
  return (
    event.workflowTaskStartedEventAttributes?.identity ??
    event.workflowTaskCompletedEventAttributes?.identity ??
    event.activityTaskStartedEventAttributes?.identity ??
    undefined
  );
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Checks `uploads` 10 at a time; returns the reports in order. */
async function checkAll(
  ctx: FaultContext,
  uploads: readonly { upload: TrackedUpload; expect: Parameters<FaultContext['assertInvariants']>[1] }[],
): Promise<InvariantReport[]> {
  const reports: InvariantReport[] = [];
  for (let i = 0; i < uploads.length; i += 10)
    reports.push(...(await Promise.all(uploads.slice(i, i + 10).map(({ upload, expect }) => ctx.assertInvariants(upload, expect)))));
  return reports;
}

export const scenario: FaultScenario = {
  name: 'scale-out',
  exclusive: true,
  proves: `${WORKER_SIDE + TUS + PRESIGNED} uploads (worker-side, tus, presigned at once) on three workers and two gateway replicas on Temporal on PostgreSQL, one worker and one replica SIGKILLed mid-run: every upload completes or is compensated, nothing left behind, the ledger adds up`,
  temporal: 'postgres',
  timeoutMs: 900_000,
  async run(ctx) {
    const workers = await Promise.all([1, 2, 3].map((i) => ctx.startWorker({ label: `worker-${i}` })));
    const token = randomBytes(24).toString('base64url');
    const gatewayEnv = ctx.workerEnv({
      UPLOAD_SAGA_GATEWAY_TOKENS: `${ctx.tenant}=${createHash('sha256').update(token).digest('hex')}`,
      UPLOAD_SAGA_GATEWAY_BUCKET: ctx.bucket,
      UPLOAD_SAGA_GATEWAY_REDIS_URL: 'redis://127.0.0.1:6379',
      UPLOAD_SAGA_GATEWAY_WEBHOOKS: `${ctx.tenant}=${ctx.webhook.url()}`,
      UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY: `${EXPIRY_SECONDS}s`,
      // Twelve clients at once, their retries included, stay far below both.
      UPLOAD_SAGA_GATEWAY_RATE_LIMIT: '2000',
      UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS: '32',
    });
    const ports = await findFreePorts(2);
    const replicas = await Promise.all([
      startGatewayProcess(ctx, ports[0]!, gatewayEnv, 'A'),
      startGatewayProcess(ctx, ports[1]!, gatewayEnv, 'B'),
    ]);
    const balancer = await startTcpBalancer(ports.map((port) => ({ host: '127.0.0.1', port })));
    ctx.defer(() => balancer.close());
    ctx.log(`balancer ${balancer.url} → replicas A :${ports[0]}, B :${ports[1]}`);

    // Sources: one file per size and kind, shared by the uploads of that size (keys differ).
    const filesOf = async (kind: Kind) => Promise.all(SIZES[kind].map((size, i) => ctx.makeFile(size, `${kind}-${i}.bin`)));
    const files = { workerSide: await filesOf('workerSide'), tus: await filesOf('tus'), presigned: await filesOf('presigned') };
    const bytes = new Map<string, Buffer>();
    for (const file of [...files.tus, ...files.presigned]) bytes.set(file.path, await readFile(file.path));
    const jobsOf = (kind: Kind, count: number): Job[] =>
      Array.from({ length: count }, (_, index) => ({
        kind,
        index,
        file: files[kind][index % files[kind].length]!,
        filename: `${kind}-${String(index).padStart(3, '0')}.bin`,
        started: false,
        ended: false,
        cuts: [],
      }));
    const jobs = { workerSide: jobsOf('workerSide', WORKER_SIDE), tus: jobsOf('tus', TUS), presigned: jobsOf('presigned', PRESIGNED) };
    const all = [...jobs.workerSide, ...jobs.tus, ...jobs.presigned];
    const trackGateway = (job: Job, uploadId: string) => {
      job.upload = ctx.trackUpload({
        tenant: ctx.tenant,
        uploadId,
        bucket: ctx.bucket,
        key: `${ctx.tenant}/${uploadId}/${job.filename}`,
        source: { size: job.file.size, sha256: job.file.sha256 },
        webhookUrl: ctx.webhook.url(),
      });
    };

    const runWorkerSide = async (job: Job) => {
      job.started = true;
      job.upload = await ctx.startUpload({ file: job.file, request: { partSize: 5 * MiB } });
      await job.upload.handle.result().catch(() => undefined);
      job.ended = true;
    };
    const runTus = async (job: Job) => {
      job.started = true;
      const run = tusUpload(bytes.get(job.file.path)!, {
        endpoint: `${balancer.url}/files`,
        chunkSize: 1 * MiB,
        headers: { Authorization: `Bearer ${token}` },
        metadata: { filename: job.filename },
        // Long enough for the lock a dead replica held to lapse (30 s).
        retryDelays: [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 10_000],
        onShouldRetry: (error) => {
          const status = error.originalResponse?.getStatus() ?? 0;
          job.cuts.push(Date.now());
          ctx.log(`${job.filename}: ${error.originalRequest?.getMethod() ?? '?'} answered ${status || 'nothing'}, retried`);
          return status === 0 || status === 409 || status === 423 || status === 429 || status >= 500;
        },
      });
      try {
        await run.done;
      } catch (error) {
        job.clientFailed = error instanceof Error ? error.message : String(error);
      }
      const uploadId = run.upload.url?.split('/').pop();
      if (uploadId) trackGateway(job, uploadId);
      job.ended = true;
    };
    const runPresigned = async (job: Job) => {
      job.started = true;
      try {
        await presignedUpload(balancer.url, token, job.filename, bytes.get(job.file.path)!, {
          onRetry: (retry) => {
            job.cuts.push(retry.at);
            ctx.log(`${job.filename}: ${retry.request} answered ${retry.status || 'nothing'}, retried`);
          },
          onCreated: (uploadId) => trackGateway(job, uploadId),
        });
      } catch (error) {
        job.clientFailed = error instanceof Error ? error.message : String(error);
      }
      job.ended = true;
    };

    const startedAt = Date.now();
    const running = Promise.all([
      pool(jobs.workerSide, IN_FLIGHT.workerSide, runWorkerSide),
      pool(jobs.tus, IN_FLIGHT.tus, runTus),
      pool(jobs.presigned, IN_FLIGHT.presigned, runPresigned),
    ]);
    running.catch(() => undefined);

    // The kills, once a third have ended, while uploads of every kind are in flight.
    const inFlight = (kind: Kind) => jobs[kind].filter((j) => j.started && !j.ended).length;
    await ctx.waitFor(
      `${KILL_AFTER_ENDED} uploads ended`,
      () => all.filter((j) => j.ended).length >= KILL_AFTER_ENDED && inFlight('workerSide') + inFlight('tus') + inFlight('presigned') > 0,
      { timeoutMs: 600_000, intervalMs: 100 },
    );
    const inFlightAtKill = { workerSide: inFlight('workerSide'), tus: inFlight('tus'), presigned: inFlight('presigned') };
    const unfinishedAtKill = all.filter((j) => j.started && !j.ended);
    const victim = workers[1]!;
    const openToB = balancer.openConnections()[1]!;
    const killedAt = Date.now();
    await Promise.all([victim.kill('SIGKILL'), replicas[1]!.kill()]);
    const endedAtKill = all.filter((j) => j.ended).length;
    ctx.log(
      `killed ${victim.label} (pid ${victim.pid}) and replica B ${((killedAt - startedAt) / 1000).toFixed(1)} s in: ${endedAtKill} ended, in flight ${JSON.stringify(inFlightAtKill)}, ${openToB} connections open to B`,
    );
    for (const kind of ['workerSide', 'tus', 'presigned'] as const)
      assert.ok(inFlightAtKill[kind] > 0, `no ${kind} upload was in flight at the kill: the kill did not land mid-run`);

    await running;
    const clientsDoneAfter = (Date.now() - startedAt) / 1000;
    ctx.log(`all clients done ${clientsDoneAfter.toFixed(0)} s in; balancer handed A/B ${balancer.connections().join('/')} connections`);

    // Uploads whose client never learnt their id: a create answered with no usable answer (cut by the
    // kill, or a 503 when Temporal was slow to answer) that started its upload anyway. Found by tenant; each must expire.
    const tracked = new Set(ctx.tracked.map((u) => u.workflowId));
    const orphans: TrackedUpload[] = [];
    for await (const execution of ctx.client.workflow.list({ query: `UploadTenant = "${ctx.tenant}"` })) {
      if (tracked.has(execution.workflowId)) continue;
      const key = execution.typedSearchAttributes.get(UploadKey) ?? '';
      const [, uploadId, filename] = key.split('/');
      const job = all.find((j) => j.filename === filename);
      assert.ok(uploadId && job, `an upload of the tenant nobody started: ${execution.workflowId} (key ${key})`);
      assert.equal(execution.workflowId, uploadWorkflowId(ctx.tenant, uploadId));
      ctx.log(`untracked upload ${execution.workflowId} (${filename}): a create its client sent again`);
      orphans.push(
        ctx.trackUpload({
          tenant: ctx.tenant,
          uploadId,
          bucket: ctx.bucket,
          key,
          source: { size: job.file.size, sha256: job.file.sha256 },
          webhookUrl: ctx.webhook.url(),
        }),
      );
    }

    const clientsFailed = all.filter((j) => j.clientFailed);
    for (const job of clientsFailed) ctx.log(`client of ${job.filename} gave up: ${job.clientFailed}`);

    // Every upload ended, with the invariants: the clients that finished got their object.
    const untracked = all.filter((j) => !j.upload);
    assert.ok(
      untracked.every((j) => j.clientFailed),
      `uploads without an id whose client did not fail: ${untracked.map((j) => j.filename).join(', ')}`,
    );
    const settleTimeoutMs = (EXPIRY_SECONDS + 180) * 1000;
    const reports = await checkAll(ctx, [
      ...all
        .filter((j) => j.upload)
        .map((j) => ({
          upload: j.upload!,
          expect: j.clientFailed
            ? { outcome: ['completed', 'compensated'] as const, settleTimeoutMs }
            : { outcome: 'completed' as const, settleTimeoutMs },
        })),
      ...orphans.map((upload) => ({ upload, expect: { outcome: 'compensated' as const, causeType: 'UploadExpired', settleTimeoutMs } })),
    ]);
    const completed = reports.filter((r) => r.outcome === 'completed').length;
    const compensated = reports.filter((r) => r.outcome === 'compensated').length;

    // The worker kill landed mid-upload: a task the dead worker took, a workflow task another completed after.
    const victimIdentity = `${victim.pid}@`;
    let handedOver = 0;
    for (const job of unfinishedAtKill) {
      if (!job.upload) continue;
      const events = (await job.upload.handle.workflow.fetchHistory()).events ?? [];
      const byVictim = events.some((e) => identityOf(e)?.startsWith(victimIdentity) && eventTimeMs(e) <= killedAt);
      const byOtherAfter = events.some(
        (e) => e.workflowTaskCompletedEventAttributes && !identityOf(e)?.startsWith(victimIdentity) && eventTimeMs(e) > killedAt,
      );
      if (byVictim && byOtherAfter) handedOver++;
    }
    assert.ok(handedOver > 0, `no upload in flight at the kill had been taken by ${victim.label} and finished by another worker`);

    // The replica kill landed mid-request: gateway uploads with a request cut at the kill that still completed.
    const gatewayJobs = [...jobs.tus, ...jobs.presigned];
    const cutAndCompleted = gatewayJobs.filter(
      (j) => j.cuts.some((at) => at >= killedAt - 1000 && at <= killedAt + 15_000) && !j.clientFailed,
    ).length;
    assert.ok(cutAndCompleted > 0, 'no gateway upload had a request cut by the replica kill and still completed');

    ctx.summary(
      `${reports.length} uploads (${orphans.length} started by cut creates): ${completed} completed, ${compensated} compensated; ` +
        `killed ${((killedAt - startedAt) / 1000).toFixed(0)} s in with ${endedAtKill} ended and ${inFlightAtKill.workerSide}/${inFlightAtKill.tus}/${inFlightAtKill.presigned} in flight (worker-side/tus/presigned); ` +
        `${handedOver} handed over from the dead worker, ${cutAndCompleted} gateway uploads cut by the dead replica completed through the other; ` +
        `clients done ${clientsDoneAfter.toFixed(0)} s in`,
    );
  },
};
