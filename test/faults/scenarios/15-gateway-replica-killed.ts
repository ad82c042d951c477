/**
 * Scenario 15 (beyond the list): a gateway replica dies mid-upload. Two tus clients upload
 * through gateway A (a real `upload-saga gateway` process, Redis for locks) in 1 MiB chunks; A is
 * SIGKILLed while both are under way, holding one upload's lock. Gateway B (a new process, another
 * port: another replica behind the load balancer) takes over with nothing but Temporal and Redis:
 * - the first client asks B for the offset (HEAD) and resumes; the lock A held lapses (its TTL)
 *   and the upload completes byte-identical;
 * - the second client never comes back: the workflow's expiry timer compensates it — multipart
 *   upload aborted, staged segment deleted, reservation released.
 * The invariants are asserted on both.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { findFreePorts } from '../../../src/embedded/free-port';
import { MiB } from '../../support/files';
import type { FaultScenario } from '../framework';
import { startGatewayProcess, tusUpload } from '../helpers/gateway-process';

const EXPIRY_SECONDS = 90;

export const scenario: FaultScenario = {
  name: 'gateway-replica-killed',
  proves:
    'a gateway replica SIGKILLed mid-upload: another replica resumes one tus upload from the durable offset (the dead one’s lock lapses) and the abandoned one expires, compensated',
  timeoutMs: 480_000,
  async run(ctx) {
    await ctx.startWorker();
    const token = randomBytes(24).toString('base64url');
    const env = ctx.workerEnv({
      UPLOAD_SAGA_GATEWAY_TOKENS: `${ctx.tenant}=${createHash('sha256').update(token).digest('hex')}`,
      UPLOAD_SAGA_GATEWAY_BUCKET: ctx.bucket,
      UPLOAD_SAGA_GATEWAY_REDIS_URL: 'redis://127.0.0.1:6379',
      UPLOAD_SAGA_GATEWAY_WEBHOOKS: `${ctx.tenant}=${ctx.webhook.url()}`,
      UPLOAD_SAGA_GATEWAY_UPLOAD_EXPIRY: `${EXPIRY_SECONDS}s`,
      // Both clients' PATCHes, HEADs and retries stay far below it.
      UPLOAD_SAGA_GATEWAY_RATE_LIMIT: '500',
    });
    const [portA, portB] = await findFreePorts(2);
    const gatewayA = await startGatewayProcess(ctx, portA!, env, 'A');
    const headers = { Authorization: `Bearer ${token}` };

    const files = [await ctx.makeFile(16 * MiB, 'resumed.bin'), await ctx.makeFile(9 * MiB, 'abandoned.bin')];
    const data = await Promise.all(files.map((f) => readFile(f.path)));
    const first = files.map((f, i) =>
      tusUpload(data[i]!, {
        endpoint: `${gatewayA.url}/files`,
        chunkSize: 1 * MiB,
        headers,
        metadata: { filename: f.path.split('/').pop()! },
      }),
    );
    const failures = first.map((run) =>
      run.done.then(
        () => 'finished' as const,
        (err: unknown) => err,
      ),
    );
    await ctx.waitFor('both uploads 6 MiB in', () => first.every((run) => run.offset() >= 6 * MiB), { timeoutMs: 120_000, intervalMs: 20 });
    const killedAt = Date.now();
    await gatewayA.kill();
    for (const outcome of await Promise.all(failures))
      assert.notEqual(outcome, 'finished', 'an upload finished before gateway A was killed: make the files larger');

    const uploadIds = first.map((run) => run.upload.url!.split('/').pop()!);
    const tracked = files.map((file, i) =>
      ctx.trackUpload({
        tenant: ctx.tenant,
        uploadId: uploadIds[i]!,
        bucket: ctx.bucket,
        key: `${ctx.tenant}/${uploadIds[i]}/${file.path.split('/').pop()}`,
        source: { size: file.size, sha256: file.sha256 },
        webhookUrl: ctx.webhook.url(),
      }),
    );

    const gatewayB = await startGatewayProcess(ctx, portB!, env, 'B');
    const resumeUrl = `${gatewayB.url}/files/${uploadIds[0]}`;
    const head = await fetch(resumeUrl, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.status, 200, `HEAD on gateway B answered ${head.status}`);
    const offset = Number(head.headers.get('upload-offset'));
    assert.ok(offset >= 6 * MiB && offset < files[0]!.size, `gateway B reports offset ${offset}: what A accepted, from the workflow`);
    // The lock A held on a PATCH in flight lapses after its TTL (30 s): retries ride it out.
    const resumed = tusUpload(data[0]!, {
      uploadUrl: resumeUrl,
      chunkSize: 1 * MiB,
      headers,
      retryDelays: [1000, 2000, 5000, 10_000, 10_000, 10_000],
    });
    await resumed.done;
    const resumedAfter = (Date.now() - killedAt) / 1000;

    await ctx.assertInvariants(tracked[0]!, { outcome: 'completed' });
    await ctx.assertInvariants(tracked[1]!, {
      outcome: 'compensated',
      causeType: 'UploadExpired',
      settleTimeoutMs: (EXPIRY_SECONDS + 120) * 1000,
    });
    const expiredAfter = (Date.now() - killedAt) / 1000;
    ctx.summary(
      `resumed from ${(offset / MiB).toFixed(1)} MiB on replica B, completed ${resumedAfter.toFixed(0)} s after A died; the abandoned upload compensated ${expiredAfter.toFixed(0)} s after`,
    );
  },
};
