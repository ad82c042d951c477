/**
 * The gateway inside your own fastify app: your routes next to the gateway's under `/uploads`,
 * and a tus upload (tus-js-client, as a browser would send it) through it. A worker runs in the
 * same process so the upload completes.
 *
 * Reads the same environment variables as upload-and-follow.ts; the token below is the tenant
 * UPLOAD_TENANT's (default `acme`). A tenant's quota ledger is a workflow on the task queue of its
 * first upload: run each tenant's uploads on one task queue.
 */
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import * as tus from 'tus-js-client';
import { hashToken, uploadGateway } from 'upload-saga/gateway';
import { connectClient, connectWorker, createS3Client, createTemporalClient, createUploadWorker, loadConfig } from 'upload-saga/worker';

const TOKEN = 'example-token-for-this-tenant';
const TENANT = process.env.UPLOAD_TENANT ?? 'acme';

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
    config: { tokenHashes: new Map([[hashToken(TOKEN), TENANT]]) },
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });

  const data = randomBytes(6 * 1024 * 1024);
  // The worker runs until the saga has ended, not just until the last byte arrived: the gateway's
  // progress stream (Server-Sent Events) says when verify, merge and notify are done.
  const { uploadUrl, outcome } = await worker.runUntil(async () => {
    const uploadUrl = await new Promise<string>((resolve, reject) => {
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
    });
    return { uploadUrl, outcome: await outcomeOf(`${url}/uploads/uploads/${uploadUrl.split('/').pop()!}/events`) };
  });
  console.log(`uploaded through ${uploadUrl}: ${outcome}`);
  console.log(await (await fetch(`${url}/hello`)).json());
  console.log(JSON.stringify({ example: 'gateway-in-fastify', uploadUrl, bytes: data.length, outcome }));

  await app.close();
  s3.destroy();
  await connection.close();
  await workerConnection.close();
}

/** Reads an upload's progress stream until its last event, and returns the outcome it names. */
async function outcomeOf(eventsUrl: string): Promise<string> {
  const response = await fetch(eventsUrl, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (!response.ok || !response.body) throw new Error(`progress stream: ${response.status}`);
  const decoder = new TextDecoder();
  let buffered = '';
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const data = buffered
        .slice(0, end)
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
        .join('');
      buffered = buffered.slice(end + 2);
      const event = data ? (JSON.parse(data) as { outcome: string; phase: string }) : undefined;
      if (event) console.log(`saga: ${event.phase}, ${event.outcome}`);
      if (event && event.outcome !== 'running') {
        await reader.cancel();
        return event.outcome;
      }
    }
  }
  throw new Error('progress stream ended before the upload did');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
