/**
 * Your own saga, with a compensation, on the same worker as the uploads: the worker bundles your
 * workflows file (trip-workflows.ts, which re-exports `upload-saga/workflows`) at start and
 * registers your activities next to the upload activities. Then one upload and one trip run on it.
 *
 * Reads the same environment variables as upload-and-follow.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { UploadClient } from 'upload-saga';
import { connectClient, connectWorker, createS3Client, createTemporalClient, createUploadWorker, loadConfig } from 'upload-saga/worker';
import { journal, tripActivities } from './trip-activities';
import type { bookTrip } from './trip-workflows';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const connection = await connectClient(config.temporal);
  const client = createTemporalClient(connection, config);
  const s3 = createS3Client(config.s3);
  const workerConnection = await connectWorker(config.temporal);
  const worker = await createUploadWorker({
    config,
    connection: workerConnection,
    client,
    s3,
    // Bundled at start, with the saga's workflow interceptors.
    workflowsPath: require.resolve('./trip-workflows'),
    extraActivities: tripActivities,
  });

  const file = path.join(os.tmpdir(), `upload-saga-example-${randomUUID()}.bin`);
  await writeFile(file, randomBytes(6 * 1024 * 1024));
  const uploads = new UploadClient({ client, taskQueue: config.temporal.taskQueue });

  const { upload, trip } = await worker.runUntil(async () => {
    const handle = await uploads.start({
      tenant: process.env.UPLOAD_TENANT ?? 'example',
      uploadId: randomUUID(),
      source: { type: 'file', path: file },
      destination: { bucket: process.env.UPLOAD_BUCKET ?? 'uploads', key: `examples/${path.basename(file)}` },
    });
    const tripRun = client.workflow
      .execute<typeof bookTrip>('bookTrip', {
        taskQueue: config.temporal.taskQueue,
        workflowId: `trip-${randomUUID()}`,
        args: [{ tripId: 'lisbon', amount: 120 }],
      })
      .then(
        (seat) => `booked ${seat}`,
        (err: unknown) => (err instanceof WorkflowFailedError ? `failed and compensated: ${err.cause?.message}` : Promise.reject(err)),
      );
    return { upload: await handle.result(), trip: await tripRun };
  });

  console.log(`upload: s3://${upload.bucket}/${upload.key} (${upload.size} bytes)`);
  console.log(`trip: ${trip}`);
  for (const line of journal) console.log(`  ${line}`);
  console.log(
    JSON.stringify({
      example: 'own-saga',
      upload: upload.size,
      trip,
      compensated: journal.some((line) => line.startsWith('released')),
    }),
  );

  await rm(file, { force: true });
  s3.destroy();
  await connection.close();
  await workerConnection.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
