/**
 * The orchestration at S3's limit: 10,000 parts. Stand-in activities (the bytes are not the point
 * here; real uploads of many parts run against MinIO elsewhere) let the real upload workflow walk
 * a 10,000-part plan, and we count what it costs in history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient } from '../../src/client';
import { MiB } from '../../src/upload/part-plan';
import { standInUploadActivities } from '../support/stand-in-upload-activities';
import { bundleUploadWorkflows, createUploadWorker } from '../../src/worker';
import { connectTestStack, runInBackground, uniqueId, type RunningWorker, type TestStack } from '../support/harness';

let stack: TestStack;
let worker: RunningWorker;
const batches: { firstPart: number; lastPart: number }[] = [];

beforeAll(async () => {
  stack = await connectTestStack();
  worker = runInBackground(
    await createUploadWorker({
      config: stack.config,
      connection: stack.workerConnection,
      client: stack.client,
      s3: stack.s3,
      activities: standInUploadActivities({ size: 10_000 * 5 * MiB, onBatch: (b) => batches.push(b) }),
      workflowBundle: await bundleUploadWorkflows(),
    }),
  );
});

afterAll(async () => {
  await worker?.stop();
  await stack?.close();
});

describe('upload at 10,000 parts', () => {
  it('covers every part exactly once in batches and keeps the history far below Temporal’s limits', async () => {
    const uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
    const handle = await uploads.start({
      uploadId: uniqueId('10k'),
      tenant: 't',
      source: { type: 'file', path: '/stand-in/50GiB.bin' },
      destination: { bucket: 'uploads', key: 'scale/10k.bin' },
      partSize: 5 * MiB,
    });
    const result = await handle.result();
    expect(result).toMatchObject({ partCount: 10_000, size: 10_000 * 5 * MiB });

    const covered = batches.flatMap((b) => Array.from({ length: b.lastPart - b.firstPart + 1 }, (_, i) => b.firstPart + i));
    expect(covered).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));

    const history = await handle.workflow.fetchHistory();
    const events = history.events?.length ?? 0;
    const bytes = Buffer.byteLength(JSON.stringify(history));
    console.log(
      `10,000 parts: ${batches.length} upload-parts activities, ${events} history events, ~${Math.round(bytes / 1024)} KiB of history`,
    );
    expect(events).toBeLessThanOrEqual(2_000);
    expect(bytes).toBeLessThan(1024 * 1024);
  });
});
