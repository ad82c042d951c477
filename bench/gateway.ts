/**
 * `npx tsx bench/gateway.ts [--size 256MiB]`: the HTTP gateway measured as a deployment runs it —
 * `upload-saga gateway` as its own process, a worker, the embedded Temporal and MinIO — with
 * tus-js-client uploading from this process. Prints, per way of chunking: throughput, the
 * gateway's peak RSS (VmHWM; the claim is "about one part per PATCH in flight"), and the history
 * events of the upload's last workflow run. Measures; asserts nothing.
 *
 * Why a separate script: the numbers depend on the machine, so they belong in docs/explanation/performance.md with
 * the command that produced them, not in a test.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import * as tus from 'tus-js-client';
import { loadConfig, parseByteSize } from '../src/config';
import { createS3Client } from '../src/connections';
import { startEmbeddedStack } from '../src/embedded';
import { hashToken } from '../src/gateway/config';
import { uploadWorkflowId } from '../src/upload/request';
import { createUploadWorker } from '../src/worker';
import { currentRssMiB, mbps, MiB, peakRssMiB, timed } from './measure';

const log = (line: string) => process.stderr.write(`[bench:gateway] ${line}\n`);

async function main(): Promise<void> {
  const sizeArg = process.argv.indexOf('--size');
  const size = sizeArg > 0 ? (parseByteSize(process.argv[sizeArg + 1] ?? '') ?? 256 * MiB) : 256 * MiB;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const stack = await startEmbeddedStack({ buckets: ['uploads'] });
  const closers: (() => Promise<unknown>)[] = [() => stack.stop()];
  try {
    const env = {
      ...process.env,
      TEMPORAL_ADDRESS: stack.temporal.address,
      TEMPORAL_NAMESPACE: stack.temporal.namespace,
      TEMPORAL_TASK_QUEUE: 'bench-gateway',
      S3_ENDPOINT: stack.s3.endpoint,
      S3_REGION: stack.s3.region,
      S3_ACCESS_KEY_ID: stack.s3.accessKeyId,
      S3_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
    };
    const config = loadConfig(env);
    const workerConnection = await NativeConnection.connect({ address: config.temporal.address });
    const connection = await Connection.connect({ address: config.temporal.address });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const s3 = createS3Client(config.s3);
    const worker = await createUploadWorker({ config, connection: workerConnection, client, s3 });
    const running = worker.run();
    closers.push(async () => {
      worker.shutdown();
      await running;
      s3.destroy();
      await connection.close();
      await workerConnection.close();
    });

    const token = randomBytes(18).toString('base64url');
    const gateway = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, '../src/cli/main.ts'), 'gateway', '--port', '0'], {
      env: {
        ...env,
        UPLOAD_SAGA_GATEWAY_TOKENS: `bench=${hashToken(token)}`,
        UPLOAD_SAGA_GATEWAY_MAX_UPLOAD_SIZE: '10GiB',
        UPLOAD_SAGA_GATEWAY_RATE_LIMIT: '1000',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    closers.push(async () => {
      gateway.kill('SIGTERM');
      await new Promise((resolve) => gateway.once('exit', resolve));
    });
    const url = await new Promise<string>((resolve, reject) => {
      let output = '';
      gateway.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /url\s+(http:\/\/\S+)/.exec(output);
        if (match) resolve(match[1]!);
      });
      gateway.once('exit', (code) => reject(new Error(`the gateway exited with ${code}`)));
    });
    log(`gateway ${url} (pid ${gateway.pid}), idle RSS ${(await currentRssMiB(gateway.pid!)).toFixed(0)} MiB`);

    const data = randomBytes(size);
    const rows: string[] = [];
    for (const [label, chunkSize] of [
      ['one PATCH', undefined],
      ['8 MiB PATCHes', 8 * MiB],
      ['1 MiB PATCHes', 1 * MiB],
    ] as const) {
      let uploadUrl = '';
      const { ms } = await timed(
        () =>
          new Promise<void>((resolve, reject) => {
            const upload = new tus.Upload(data, {
              endpoint: `${url}/files`,
              headers: { Authorization: `Bearer ${token}` },
              ...(chunkSize ? { chunkSize } : {}),
              retryDelays: null,
              storeFingerprintForResuming: false,
              onSuccess: () => resolve(),
              onError: reject,
              onUploadUrlAvailable: () => (uploadUrl = upload.url ?? ''),
            });
            upload.start();
          }),
      );
      const history = await client.workflow.getHandle(uploadWorkflowId('bench', uploadUrl.split('/').pop()!)).fetchHistory();
      const peak = await peakRssMiB(gateway.pid!);
      rows.push(
        `| ${label} | ${(size / MiB).toFixed(0)} MiB | ${mbps(size, ms).toFixed(1)} | ${peak.toFixed(0)} | ${history.events?.length ?? 0} |`,
      );
      log(rows.at(-1)!);
    }
    process.stdout.write(
      [
        '| chunking | size | MB/s | gateway peak RSS (MiB, cumulative) | events (last run) |',
        '| --- | --- | --- | --- | --- |',
        ...rows,
      ].join('\n') + '\n',
    );
  } finally {
    for (const close of closers.reverse()) await close().catch((err: unknown) => log(`cleanup: ${String(err)}`));
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
