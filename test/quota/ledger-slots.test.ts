/**
 * The quota steps run as local activities, which keep their workflow task — and one of the
 * worker's workflow-task slots — while they run; the tenant's ledger is a workflow that needs a slot
 * of the same worker. Here a worker with only 4 slots takes 16 uploads of one tenant at once: more
 * uploads than slots wanting the ledger. Every upload must complete with its quota committed
 * exactly once, which needs the ledger's workflow task to get a slot while uploads wait in
 * reserve-space (the worker lets at most half its slots wait; further reservations are refused
 * with QuotaLedgerBusy and retried after a workflow timer, their slot free).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporal } from '@temporalio/proto';
import { UploadClient } from '../../src/client';
import { createUploadWorker } from '../../src/worker';
import { makeRandomFile, makeTempDir } from '../support/files';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';

const TASK_QUEUE = uniqueId('ledger-slots');
const TENANT = uniqueId('slots');
const UPLOADS = 16;

let stack: TestStack;
let worker: RunningWorker;
let tmp: { dir: string; remove(): Promise<void> };

beforeAll(async () => {
  stack = await connectTestStack({ taskQueue: TASK_QUEUE });
  tmp = await makeTempDir();
  worker = runInBackground(
    await createUploadWorker({
      config: stack.config,
      connection: stack.workerConnection,
      client: stack.client,
      s3: stack.s3,
      workerOptions: { maxConcurrentWorkflowTaskExecutions: 4 },
    }),
  );
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
  await tmp?.remove();
});

describe('quota steps on a worker with few workflow-task slots', () => {
  it(`completes ${UPLOADS} concurrent uploads of one tenant on 4 slots, each reservation committed once`, async () => {
    const uploads = new UploadClient({ client: stack.client, taskQueue: TASK_QUEUE });
    const size = 64 * 1024;
    const files = await Promise.all(Array.from({ length: UPLOADS }, (_, i) => makeRandomFile(tmp.dir, `f${i}.bin`, size)));
    const handles = await Promise.all(
      files.map((file, i) =>
        uploads.start({
          uploadId: `u${i}`,
          tenant: TENANT,
          source: { type: 'file', path: file.path },
          destination: { bucket: 'uploads', key: `${TENANT}/f${i}.bin` },
        }),
      ),
    );
    const results = await Promise.all(handles.map((h) => h.result()));
    expect(results.map((r) => r.size)).toEqual(Array(UPLOADS).fill(size));

    const ledger = await stack.client.workflow
      .getHandle(`quota-ledger:${TENANT}`)
      .query<{ usedBytes: number; reservedBytes: number }>('usage');
    expect(ledger).toMatchObject({ usedBytes: UPLOADS * size, reservedBytes: 0 });

    // How often a reservation was refused because the worker's waiting budget was used up: each
    // such refusal is retried after a workflow timer. Reported, not asserted (it depends on timing).
    let timers = 0;
    for (const h of handles) {
      const events = (await h.workflow.fetchHistory()).events ?? [];
      timers += events.filter((e) => e.eventType === temporal.api.enums.v1.EventType.EVENT_TYPE_TIMER_STARTED).length;
    }
    console.log(`ledger-slots: ${UPLOADS} uploads on 4 workflow-task slots, ${timers} reservation retries after a timer`);
  }, 240_000);
});
