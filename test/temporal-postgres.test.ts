/**
 * The upload saga end to end on the real Temporal server (v1.29.1) on PostgreSQL, not the dev
 * server: this file starts its own server on databases of its own (the run's MinIO stays), then
 * runs a real upload, a compensated one and a cancelled one, lists them through the SQL visibility
 * store by search attribute, restarts the server on the same databases, and drops them on stop.
 *
 * The rest of the suite runs on this server too with UPLOAD_SAGA_TEST_TEMPORAL=postgres; this file
 * keeps the proof in every `npm test` at the cost of one server start (see docs/explanation/testing.md).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient, UploadFailedError } from '../src/client';
import { startTemporalPostgresServer, type TemporalPostgresServer } from '../src/embedded';
import { TemporalQuotaLedger } from '../src/quota/temporal-ledger';
import { UPLOAD_SEARCH_ATTRIBUTE_TYPES } from '../src/upload/search-attributes';
import type { UploadRequest } from '../src/upload/request';
import { makeRandomFile, makeTempDir, MiB } from './support/files';
import { connectTestStack, uniqueId, type RunningWorker, type TestStack } from './support/harness';
import { incompleteUploads, objectSha256 } from './support/s3-inspect';
import { expectNothingLeftBehind as expectSagaLeftNothing, startSagaWorker } from './support/upload-saga-worker';

const TENANT = uniqueId('pg-tenant');
const BUCKET = 'uploads';

let tmp: { dir: string; remove(): Promise<void> };
let server: TemporalPostgresServer;
let stack: TestStack;
let ledger: TemporalQuotaLedger;
let uploads: UploadClient;
let slowUploads: UploadClient;
const workers: RunningWorker[] = [];
/** Set by the last test, which stops everything itself. */
let stopped = false;

/** Database names on the local PostgreSQL (trust authentication, as the test machine has it). */
function databasesOnServer(): string[] {
  const result = spawnSync('psql', ['-h', '127.0.0.1', '-U', 'postgres', '-Atc', 'SELECT datname FROM pg_database'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`psql failed: ${result.stderr}`);
  return result.stdout.split('\n').filter(Boolean);
}

async function startWorker(taskQueue: string, sourceDelayMs = 0): Promise<void> {
  workers.push(await startSagaWorker(stack, ledger, { taskQueue, sourceDelayMs }));
}

beforeAll(async () => {
  tmp = await makeTempDir('upload-saga-pg-');
  server = await startTemporalPostgresServer({ dataDir: path.join(tmp.dir, 'temporal'), searchAttributes: UPLOAD_SEARCH_ATTRIBUTE_TYPES });
  stack = await connectTestStack({ env: { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace } });
  ledger = new TemporalQuotaLedger({ client: stack.client, taskQueue: stack.config.temporal.taskQueue, limits: stack.config.quota });
  uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
  const slowQueue = uniqueId('pg-slow');
  slowUploads = new UploadClient({ client: stack.client, taskQueue: slowQueue });
  await startWorker(stack.config.temporal.taskQueue);
  await startWorker(slowQueue, 700);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  if (!stopped) await stack?.close();
  await server?.stop();
  await tmp?.remove();
});

function request(overrides: Partial<UploadRequest> & { source: UploadRequest['source'] }): UploadRequest {
  const uploadId = uniqueId('up');
  return { uploadId, tenant: TENANT, destination: { bucket: BUCKET, key: `tests/pg/${uploadId}.bin` }, partSize: 5 * MiB, ...overrides };
}

const expectNothingLeftBehind = (req: UploadRequest): Promise<void> => expectSagaLeftNothing(stack, ledger, req);

describe('the upload saga on Temporal v1.29.1 on PostgreSQL', () => {
  it('runs on databases of its own, with the schema of both stores set up', async () => {
    const { serverVersion } = await stack.connection.workflowService.getSystemInfo({});
    expect(serverVersion).toBe('1.29.1');
    expect(server.databases.visibility).toBe(`${server.databases.default}_visibility`);
    expect(databasesOnServer()).toEqual(expect.arrayContaining([server.databases.default, server.databases.visibility]));
  });

  it('uploads a file in parts, byte-identical', async () => {
    const file = await makeRandomFile(tmp.dir, 'ok.bin', 12 * MiB + 321);
    const req = request({ source: { type: 'file', path: file.path }, partsPerActivity: 2 });
    const result = await (await uploads.start(req)).result();
    expect(result).toMatchObject({ bucket: BUCKET, key: req.destination.key, size: file.size, partCount: 3, tenant: TENANT });
    expect(await objectSha256(stack.s3, BUCKET, req.destination.key)).toBe(file.sha256);
    expect(await incompleteUploads(stack.s3, BUCKET, req.destination.key)).toEqual([]);
    expect((await ledger.usage(TENANT)).reservedBytes).toBe(0);
  });

  it('compensates an upload whose expected checksum does not match', async () => {
    const file = await makeRandomFile(tmp.dir, 'mismatch.bin', 7 * MiB);
    const req = request({ source: { type: 'file', path: file.path }, expectedChecksum: { algorithm: 'SHA256', value: '0'.repeat(64) } });
    const err = (await (await uploads.start(req)).result().catch((e: unknown) => e)) as UploadFailedError;
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.outcome).toBe('compensated');
    expect(err.report?.compensations.map((c) => [c.step, c.status])).toEqual([
      ['upload-parts', 'compensated'],
      ['reserve-space', 'compensated'],
    ]);
    await expectNothingLeftBehind(req);
  });

  it('compensates a cancelled upload: the multipart upload is aborted, the reservation released', async () => {
    const file = await makeRandomFile(tmp.dir, 'cancel.bin', 30 * MiB);
    const req = request({ source: { type: 'file', path: file.path }, partConcurrency: 1 });
    const handle = await slowUploads.start(req);
    await expect.poll(async () => (await handle.progress()).partsDone, { timeout: 30_000, interval: 300 }).toBeGreaterThan(0);
    expect(await incompleteUploads(stack.s3, BUCKET, req.destination.key)).toHaveLength(1);
    await handle.cancel();
    const err = (await handle.result().catch((e: unknown) => e)) as UploadFailedError;
    expect(err).toBeInstanceOf(UploadFailedError);
    expect(err.outcome).toBe('cancelled');
    expect(err.report?.compensations.map((c) => c.status)).toEqual(['compensated', 'compensated']);
    await expectNothingLeftBehind(req);
  });

  it('lists the three uploads by search attribute through the SQL visibility store', async () => {
    const query = `UploadTenant = '${TENANT}'`;
    await expect
      .poll(
        async () => {
          const outcomes: string[] = [];
          for await (const execution of stack.client.workflow.list({ query })) {
            outcomes.push(String(execution.searchAttributes.UploadOutcome?.[0]));
          }
          return outcomes.sort();
        },
        { timeout: 20_000, interval: 500 },
      )
      .toEqual(['cancelled', 'compensated', 'completed']);
  });

  it('restarts a killed server on the same address and databases, with its workflows kept', async () => {
    const handle = await stack.client.workflow.start('notServedByAnyWorker', {
      taskQueue: uniqueId('pg-idle'),
      workflowId: uniqueId('survives'),
    });
    const pidBefore = server.pid;
    server.kill('SIGKILL');
    await server.exited;
    await server.restart();
    expect(server.pid).not.toBe(pidBefore);
    const description = await stack.client.workflow.getHandle(handle.workflowId).describe();
    expect(description.status.name).toBe('RUNNING');
    await handle.terminate('test done');
  });

  it('drops its databases on stop', async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop()));
    await stack.close();
    stopped = true;
    await server.stop();
    const remaining = databasesOnServer();
    expect(remaining).not.toContain(server.databases.default);
    expect(remaining).not.toContain(server.databases.visibility);
  });
});
