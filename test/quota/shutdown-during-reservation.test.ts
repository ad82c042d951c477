/**
 * A worker stopped while an upload's reservation waits for the tenant's quota ledger finishes
 * stopping. The reservation is a local activity that waits for the ledger workflow's Update; when
 * no worker can run the ledger's workflow task (here: its task queue has no worker at all; in
 * production: the only worker is the one stopping), the Update does not answer, and before the
 * reservation honoured its cancellation the stopping worker waited for it forever. The SDK does
 * not cancel a local activity when its worker stops; its timeout (reserve-space's 30 s
 * start-to-close) does, so stopping takes up to that long.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient } from '../../src/client';
import { quotaLedgerWorkflowId } from '../../src/workflows/quota-ledger';
import { TemporalQuotaLedger, createUploadWorker } from '../../src/worker';
import { makeRandomFile, makeTempDir } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';

const TASK_QUEUE = uniqueId('shutdown-reserve');
const TENANT = uniqueId('stopping');

let stack: TestStack;
let worker: RunningWorker | undefined;
let tmp: { dir: string; remove(): Promise<void> };
const started: string[] = [];

beforeAll(async () => {
  stack = await connectTestStack({ taskQueue: TASK_QUEUE });
  tmp = await makeTempDir();
});

afterAll(async () => {
  await worker?.stop();
  for (const id of [...started, quotaLedgerWorkflowId(TENANT)]) {
    await stack?.client.workflow
      .getHandle(id)
      .terminate('test cleanup')
      .catch(() => undefined);
  }
  await stack?.close();
  await tmp?.remove();
});

describe('a worker stopped while a reservation waits for the quota ledger', () => {
  it('finishes stopping: the waiting reservation is cancelled, not awaited', async () => {
    // The ledger runs on a task queue no worker serves: its Update can never be answered.
    const running = runInBackground(
      await createUploadWorker({
        config: stack.config,
        connection: stack.workerConnection,
        client: stack.client,
        s3: stack.s3,
        quota: new TemporalQuotaLedger({ client: stack.client, taskQueue: uniqueId('nobody-serves'), limits: stack.config.quota }),
      }),
    );
    worker = running;
    const file = await makeRandomFile(tmp.dir, 'f.bin', 1024);
    const upload = await new UploadClient({ client: stack.client, taskQueue: TASK_QUEUE }).start({
      uploadId: 'waits-for-its-ledger',
      tenant: TENANT,
      source: { type: 'file', path: file.path },
      destination: { bucket: 'uploads', key: `${TENANT}/f.bin` },
    });
    started.push(upload.workflowId);
    // The reservation is under way once it started the tenant's ledger (Update-with-Start).
    const ledger = stack.client.workflow.getHandle(quotaLedgerWorkflowId(TENANT));
    await expect
      .poll(
        () =>
          ledger.describe().then(
            () => true,
            () => false,
          ),
        { timeout: 20_000, interval: 100 },
      )
      .toBe(true);
    const stopping = Date.now();
    const stopped = running.stop().then(() => Date.now() - stopping);
    const outcome = await Promise.race([
      stopped,
      new Promise<'still stopping'>((resolve) => setTimeout(() => resolve('still stopping'), 45_000)),
    ]);
    expect(outcome).not.toBe('still stopping');
    worker = undefined;
  }, 60_000);
});
