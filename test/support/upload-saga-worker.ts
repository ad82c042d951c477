/**
 * An upload worker with the real activities on a task queue of the test's choosing (optionally a
 * slowed source, or activities wrapped to fail on cue), and the check that a compensated upload
 * left nothing behind. Shared by the end-to-end files that run on the dev server and on the server
 * on PostgreSQL, so both prove the same things the same way.
 */
import type { Worker } from '@temporalio/worker';
import { expect } from 'vitest';
import { createActivities, type UploadActivities } from '../../src/activities';
import { LocalFileResolver } from '../../src/activities/sources/local-file';
import type { TemporalQuotaLedger } from '../../src/quota/temporal-ledger';
import type { UploadRequest } from '../../src/upload/request';
import { stagingPrefixOf } from '../../src/upload/staging';
import { createUploadWorker, type bundleUploadWorkflows } from '../../src/worker';
import { runInBackground, type RunningWorker, type TestStack } from './harness';
import { incompleteUploads, keysUnder, objectExists } from './s3-inspect';
import { slowSource } from './slow-source';

/** Options of {@link startSagaWorker}. */
export interface SagaWorkerOptions {
  readonly taskQueue: string;
  /** Wraps the real activities (to fail or count on cue). */
  readonly customize?: (real: UploadActivities) => UploadActivities;
  /** Delay before each read of the source, to keep an upload running long enough to act on it. @default 0 */
  readonly sourceDelayMs?: number;
  /** A workflow bundle built once per file. @default each worker bundles */
  readonly workflowBundle?: ReturnType<typeof bundleUploadWorkflows>;
}

/** Starts the upload worker with real activities on `options.taskQueue`, running until stopped. */
export async function startSagaWorker(stack: TestStack, ledger: TemporalQuotaLedger, options: SagaWorkerOptions): Promise<RunningWorker> {
  const config = { ...stack.config, temporal: { ...stack.config.temporal, taskQueue: options.taskQueue } };
  const files = new LocalFileResolver({ allowedRoots: config.allowedRoots });
  const real = createActivities({
    s3: stack.s3,
    sources: options.sourceDelayMs ? slowSource(files, options.sourceDelayMs) : files,
    quota: ledger,
    webhook: config.webhook,
  });
  const worker: Worker = await createUploadWorker({
    config,
    connection: stack.workerConnection,
    client: stack.client,
    s3: stack.s3,
    ...(options.workflowBundle ? { workflowBundle: await options.workflowBundle } : {}),
    activities: options.customize ? options.customize(real) : real,
  });
  return runInBackground(worker);
}

/** No incomplete multipart upload, no object, no staging keys, no reserved bytes. */
export async function expectNothingLeftBehind(stack: TestStack, ledger: TemporalQuotaLedger, req: UploadRequest): Promise<void> {
  const { bucket, key } = req.destination;
  expect(await incompleteUploads(stack.s3, bucket, key)).toEqual([]);
  expect(await objectExists(stack.s3, bucket, key)).toBe(false);
  expect(await keysUnder(stack.s3, bucket, stagingPrefixOf(req.tenant, req.uploadId))).toEqual([]);
  expect((await ledger.usage(req.tenant)).reservedBytes).toBe(0);
}
