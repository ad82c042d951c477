/**
 * Start an upload and follow its progress: a worker and the application in one process.
 *
 * Reads the worker's environment variables (TEMPORAL_ADDRESS, TEMPORAL_TASK_QUEUE, S3_ENDPOINT,
 * S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, UPLOAD_SAGA_ALLOWED_ROOTS, …; see the README), writes a
 * 24 MiB file into the system's temp directory (which UPLOAD_SAGA_ALLOWED_ROOTS must allow) and
 * uploads it to the bucket UPLOAD_BUCKET (default `uploads`) for the tenant UPLOAD_TENANT (default
 * `example`). A tenant's quota ledger is a workflow on the task queue of its first upload: run
 * each tenant's uploads on one task queue.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UploadClient } from 'upload-saga';
import { connectClient, connectWorker, createS3Client, createTemporalClient, createUploadWorker, loadConfig } from 'upload-saga/worker';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const connection = await connectClient(config.temporal);
  const client = createTemporalClient(connection, config);
  const s3 = createS3Client(config.s3);
  // The worker uses the workflow bundle shipped in the package: nothing is bundled at start.
  const workerConnection = await connectWorker(config.temporal);
  const worker = await createUploadWorker({ config, connection: workerConnection, client, s3 });

  const file = path.join(os.tmpdir(), `upload-saga-example-${randomUUID()}.bin`);
  await writeFile(file, randomBytes(24 * 1024 * 1024));
  const uploads = new UploadClient({ client, taskQueue: config.temporal.taskQueue });

  const result = await worker.runUntil(async () => {
    const handle = await uploads.start({
      tenant: process.env.UPLOAD_TENANT ?? 'example',
      uploadId: randomUUID(),
      source: { type: 'file', path: file },
      destination: { bucket: process.env.UPLOAD_BUCKET ?? 'uploads', key: `examples/${path.basename(file)}` },
      partSize: 5 * 1024 * 1024,
    });
    const result = handle.result();
    let finished = false;
    void result.finally(() => (finished = true)).catch(() => undefined);
    while (!finished) {
      await Promise.race([result, new Promise((resolve) => setTimeout(resolve, 250))]);
      if (finished) break;
      const p = await handle.progress().catch(() => undefined); // undefined: not queryable yet
      if (p) console.log(`progress: ${p.phase} ${p.bytesDone}/${p.totalBytes ?? '?'} bytes`);
    }
    return result;
  });
  console.log(`uploaded s3://${result.bucket}/${result.key}: ${result.size} bytes in ${result.partCount} parts`);
  console.log(JSON.stringify({ example: 'upload-and-follow', outcome: 'completed', size: result.size }));

  await rm(file, { force: true });
  s3.destroy();
  await connection.close();
  await workerConnection.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
