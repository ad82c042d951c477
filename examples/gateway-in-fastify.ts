/**
 * The gateway inside your own fastify app: your routes next to the gateway's under `/uploads`,
 * and a tus upload (tus-js-client, as a browser would send it) through it. A worker runs in the
 * same process so the upload completes.
 *
 * Reads the same environment variables as upload-and-follow.ts.
 */
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import * as tus from 'tus-js-client';
import { hashToken, uploadGateway } from 'upload-saga/gateway';
import { connectClient, connectWorker, createS3Client, createTemporalClient, createUploadWorker, loadConfig } from 'upload-saga/worker';

const TOKEN = 'example-token-for-tenant-acme';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const connection = await connectClient(config.temporal);
  const client = createTemporalClient(connection, config);
  const s3 = createS3Client(config.s3);
  const workerConnection = await connectWorker(config.temporal);
  const worker = await createUploadWorker({ config, connection: workerConnection, client, s3 });

  const app = Fastify();
  app.get('/hello', async () => ({ hello: 'from your app' }));
  await app.register(uploadGateway, {
    prefix: '/uploads',
    client,
    s3,
    taskQueue: config.temporal.taskQueue,
    config: { tokenHashes: new Map([[hashToken(TOKEN), 'acme']]) },
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });

  const data = randomBytes(6 * 1024 * 1024);
  const uploadUrl = await worker.runUntil(
    new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint: `${url}/uploads/files`,
        chunkSize: 2 * 1024 * 1024,
        headers: { Authorization: `Bearer ${TOKEN}` },
        metadata: { filename: 'from-example.bin' },
        retryDelays: null,
        storeFingerprintForResuming: false,
        onProgress: (sent, total) => console.log(`tus: ${sent}/${total} bytes`),
        onSuccess: () => resolve(upload.url!),
        onError: reject,
      });
      upload.start();
    }),
  );
  console.log(`uploaded through ${uploadUrl}`);
  console.log(await (await fetch(`${url}/hello`)).json());
  console.log(JSON.stringify({ example: 'gateway-in-fastify', uploadUrl, bytes: data.length }));

  await app.close();
  s3.destroy();
  await connection.close();
  await workerConnection.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
