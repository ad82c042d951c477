/**
 * Scenario 17: Redis goes away under a gateway replica for 20 s, in the middle of a tus upload.
 * The gateway (a real `upload-saga gateway` process) reaches the machine's Redis through a TCP
 * relay the scenario cuts and restores — Redis itself is shared by the machine and never stopped.
 *
 * While Redis is unreachable:
 * - what needs Redis (the per-tenant rate limit of every authenticated request, tus locks,
 *   presigned sessions) answers 503 with `Retry-After`, quickly — not 500, not a hang;
 * - `/readyz` is 503 with `redis` down, `/livez` stays 200.
 * Once Redis is back, with nothing restarted: `/readyz` is ready again (ioredis reconnects by
 * itself), the tus client (which retries 5xx) finishes the upload it had started before the
 * outage, byte-identical (the runner's invariants).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { findFreePorts } from '../../../src/embedded/free-port';
import { startCuttableRelay } from '../../support/cuttable-relay';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';
import { startGatewayProcess, tusUpload } from '../helpers/gateway-process';

const OUTAGE_MS = 20_000;
/** A request that needs Redis answers within this while Redis is away (the gateway bounds each call at 2 s). */
const ANSWER_WITHIN_MS = 5_000;

export const scenario: FaultScenario = {
  name: 'gateway-redis-outage',
  proves: `Redis unreachable for ${OUTAGE_MS / 1000} s under a gateway: requests that need it answer 503 with Retry-After (no 500, no hang), /readyz shows Redis down, and once it is back the gateway recovers by itself and the upload started before completes byte-identical`,
  timeoutMs: 480_000,
  async run(ctx) {
    const relay = await startCuttableRelay({ host: '127.0.0.1', port: 6379 });
    ctx.defer(() => relay.close());
    await ctx.startWorker();
    const token = randomBytes(24).toString('base64url');
    const env = ctx.workerEnv({
      UPLOAD_SAGA_GATEWAY_TOKENS: `${ctx.tenant}=${createHash('sha256').update(token).digest('hex')}`,
      UPLOAD_SAGA_GATEWAY_BUCKET: ctx.bucket,
      UPLOAD_SAGA_GATEWAY_REDIS_URL: `redis://127.0.0.1:${relay.port}`,
      UPLOAD_SAGA_GATEWAY_WEBHOOKS: `${ctx.tenant}=${ctx.webhook.url()}`,
      UPLOAD_SAGA_GATEWAY_RATE_LIMIT: '500',
    });
    const [port] = await findFreePorts(1);
    const gateway = await startGatewayProcess(ctx, port!, env, 'A');
    const headers = { Authorization: `Bearer ${token}` };
    const tusHeaders = { ...headers, 'Tus-Resumable': '1.0.0' };

    const file = await ctx.makeFile(24 * MiB, 'across-the-outage.bin');
    const data = await readFile(file.path);
    // Created first, then uploaded by a client that knows only its URL: tus-js-client given an
    // `endpoint` answers any non-2xx HEAD (here the outage's 503) by creating a NEW upload and
    // sending everything again, abandoning the first; with `uploadUrl` alone it retries the HEAD.
    const created = await fetch(`${gateway.url}/files`, {
      method: 'POST',
      headers: {
        ...tusHeaders,
        'Upload-Length': String(file.size),
        'Upload-Metadata': `filename ${Buffer.from('across-the-outage.bin').toString('base64')}`,
      },
    });
    assert.equal(created.status, 201, `POST /files answered ${created.status}`);
    const run = tusUpload(data, {
      uploadUrl: new URL(created.headers.get('location')!, gateway.url).toString(),
      chunkSize: 1 * MiB,
      headers,
      // tus-js-client retries 5xx: enough delays to ride out the outage and a lapsing lock.
      retryDelays: [1000, 2000, 3000, 5000, 5000, 5000, 5000, 5000, 10_000, 10_000, 10_000, 10_000],
    });
    await ctx.waitFor('4 MiB of the upload in', () => run.offset() >= 4 * MiB, { timeoutMs: 120_000, intervalMs: 20 });
    const uploadId = run.upload.url!.split('/').pop()!;
    const tracked = ctx.trackUpload({
      tenant: ctx.tenant,
      uploadId,
      bucket: ctx.bucket,
      key: `${ctx.tenant}/${uploadId}/across-the-outage.bin`,
      source: { size: file.size, sha256: file.sha256 },
      webhookUrl: ctx.webhook.url(),
    });

    relay.cut();
    const cutAt = Date.now();
    const offsetAtCut = run.offset();
    assert.ok(offsetAtCut < file.size, 'the upload finished before Redis was cut: make the file larger');
    ctx.log(`Redis cut at offset ${offsetAtCut}`);
    const probes: { what: string; status: number; retryAfter: string | null; ms: number }[] = [];
    const probe = async (what: string, url: string, init: RequestInit) => {
      const started = Date.now();
      const answer = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) });
      const body = await answer.text();
      probes.push({ what, status: answer.status, retryAfter: answer.headers.get('retry-after'), ms: Date.now() - started });
      ctx.log(`${what}: ${answer.status} in ${Date.now() - started} ms, Retry-After ${answer.headers.get('retry-after')}: ${body.trim()}`);
      return { answer, body };
    };
    await ctx.sleep(500); // let ioredis notice the cut connection
    await probe('tus POST', `${gateway.url}/files`, {
      method: 'POST',
      headers: { ...tusHeaders, 'Upload-Length': '1024', 'Upload-Metadata': `filename ${Buffer.from('x.bin').toString('base64')}` },
    });
    await probe('tus HEAD', `${gateway.url}/files/${uploadId}`, { method: 'HEAD', headers: tusHeaders });
    await probe('tus PATCH', `${gateway.url}/files/${uploadId}`, {
      method: 'PATCH',
      headers: { ...tusHeaders, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
      body: new Uint8Array(16),
    });
    await probe('uppy session', `${gateway.url}/uppy/sessions`, { method: 'POST', headers });
    // A session route is authenticated by its session, looked up in Redis (not by the rate limiter first).
    await probe(
      'presigned by session',
      `${gateway.url}/uppy/session/${randomBytes(32).toString('base64url')}/s3/params?filename=p.bin`,
      {},
    );
    const outageAnswers = [...probes];
    for (const p of outageAnswers) {
      assert.equal(p.status, 503, `${p.what} while Redis is away must answer 503, not ${p.status}`);
      assert.ok(p.retryAfter && Number(p.retryAfter) > 0, `${p.what}: 503 without Retry-After`);
      assert.ok(p.ms < ANSWER_WITHIN_MS, `${p.what} took ${p.ms} ms: a request must not hang on Redis`);
    }
    const ready = await probe('readyz', `${gateway.url}/readyz`, {});
    assert.equal(ready.answer.status, 503);
    const checks = (JSON.parse(ready.body) as { checks: Record<string, { status: string }> }).checks;
    assert.equal(checks.redis?.status, 'down', `/readyz must show Redis down: ${ready.body}`);
    assert.equal(checks.temporal?.status, 'up');
    const live = await probe('livez', `${gateway.url}/livez`, {});
    assert.equal(live.answer.status, 200);

    await ctx.sleep(Math.max(0, OUTAGE_MS - (Date.now() - cutAt)));
    relay.restore();
    const restoredAt = Date.now();
    ctx.log('Redis restored');
    await ctx.waitFor(
      '/readyz ready again',
      async () => (await fetch(`${gateway.url}/readyz`, { signal: AbortSignal.timeout(10_000) })).status === 200,
      {
        timeoutMs: 60_000,
        intervalMs: 500,
      },
    );
    const readyAfter = (Date.now() - restoredAt) / 1000;
    assert.equal(gateway.child.exitCode, null, 'the gateway process must not have exited');

    ctx.log(`ready again ${readyAfter.toFixed(1)} s after Redis returned`);
    await Promise.race([
      run.done,
      ctx.sleep(180_000).then(() => {
        throw new Error(`the tus upload did not finish within 180 s of Redis returning (offset ${run.offset()} of ${file.size})`);
      }),
    ]);
    await ctx.assertInvariants(tracked, { outcome: 'completed' });
    const after = await probe('tus HEAD after', `${gateway.url}/files/${uploadId}`, { method: 'HEAD', headers: tusHeaders });
    assert.equal(after.answer.status, 200, `HEAD after the outage: ${after.answer.status}`);
    assert.equal(after.answer.headers.get('upload-offset'), String(file.size));

    const slowest = Math.max(...outageAnswers.map((p) => p.ms));
    ctx.summary(
      `cut at ${(offsetAtCut / MiB).toFixed(0)} of ${file.size / MiB} MiB; ${outageAnswers.length} requests during the outage answered 503 + Retry-After (slowest ${slowest} ms); ready ${readyAfter.toFixed(1)} s after Redis returned; the upload begun before completed byte-identical ${((Date.now() - restoredAt) / 1000).toFixed(0)} s after`,
    );
  },
};
