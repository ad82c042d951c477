/**
 * What payload encryption costs: `npx tsx bench/codec.ts [--uploads N]`.
 *
 * Why these two measurements: the codec itself (AES-256-GCM over protobuf-serialized payloads,
 * per payload, at the sizes an upload produces — a request of a few hundred bytes, a result, a
 * larger payload for scale), and what that adds to a whole upload, side by side on one embedded
 * stack: the same 1 MiB upload run one at a time with and without encryption, alternating so that
 * load from other work on the machine hits both alike. Figures, not assertions: the machine is shared.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { Command } from 'commander';
import { UploadClient } from '../src/client';
import { AesGcmPayloadCodec } from '../src/codec';
import { loadConfig } from '../src/config';
import { createS3Client, createTemporalClient } from '../src/connections';
import { startEmbeddedStack } from '../src/embedded';
import { createUploadWorker } from '../src/worker';

const MiB = 1024 * 1024;
const log = (line: string) => process.stderr.write(`${line}\n`);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function codecFigures(): Promise<Record<string, { bytes: number; microsPerRoundTrip: number }>> {
  const codec = new AesGcmPayloadCodec({ encryption: { keys: [{ id: 'bench', key: randomBytes(32) }] } });
  const request = {
    uploadId: 'bench-1',
    tenant: 'acme',
    source: { type: 'file', path: '/data/inbox/some/file.bin' },
    destination: { bucket: 'uploads', key: 'some/key.bin' },
    partSize: 8 * MiB,
    partConcurrency: 4,
  };
  const samples = { request, '64 KiB': 'x'.repeat(64 * 1024), '1 MiB': 'x'.repeat(MiB) };
  const figures: Record<string, { bytes: number; microsPerRoundTrip: number }> = {};
  for (const [name, value] of Object.entries(samples)) {
    const payload = defaultPayloadConverter.toPayload(value);
    const rounds = name === '1 MiB' ? 200 : 20_000;
    for (let i = 0; i < 100; i++) await codec.decode(await codec.encode([payload])); // warm-up
    const started = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) await codec.decode(await codec.encode([payload]));
    const micros = Number(process.hrtime.bigint() - started) / 1000 / rounds;
    figures[name] = { bytes: payload.data!.length, microsPerRoundTrip: Math.round(micros * 10) / 10 };
    log(`codec: ${name} (${payload.data!.length} bytes) encode+decode ${micros.toFixed(1)} µs`);
  }
  return figures;
}

async function main(): Promise<void> {
  const opts = new Command().option('--uploads <n>', 'sequential 1 MiB uploads per mode', '10').parse().opts<{ uploads: string }>();
  const count = Number(opts.uploads);
  const codec = await codecFigures();

  Runtime.install({ logger: new DefaultLogger('WARN') });
  const work = await mkdtemp(path.join(os.tmpdir(), 'upload-saga-bench-codec-'));
  const stack = await startEmbeddedStack({ buckets: ['uploads'] });
  const file = path.join(work, 'small.bin');
  await writeFile(file, randomBytes(MiB));
  const baseEnv = {
    TEMPORAL_ADDRESS: stack.temporal.address,
    S3_ENDPOINT: stack.s3.endpoint,
    S3_REGION: stack.s3.region,
    S3_ACCESS_KEY_ID: stack.s3.accessKeyId,
    S3_SECRET_ACCESS_KEY: stack.s3.secretAccessKey,
    UPLOAD_SAGA_ALLOWED_ROOTS: work,
  };
  const modes = {
    plain: loadConfig({ ...baseEnv, TEMPORAL_TASK_QUEUE: 'bench-plain' }),
    encrypted: loadConfig({
      ...baseEnv,
      TEMPORAL_TASK_QUEUE: 'bench-encrypted',
      UPLOAD_SAGA_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    }),
  };
  const connection = await Connection.connect({ address: stack.temporal.address });
  const workerConnection = await NativeConnection.connect({ address: stack.temporal.address });
  const s3 = createS3Client(modes.plain.s3);
  const durations: Record<keyof typeof modes, number[]> = { plain: [], encrypted: [] };
  const workflowIds: Record<keyof typeof modes, string[]> = { plain: [], encrypted: [] };
  let encodings: Record<keyof typeof modes, string[]> = { plain: [], encrypted: [] };
  try {
    const running = await Promise.all(
      Object.values(modes).map(async (config) => {
        const client = createTemporalClient(connection, config);
        const worker = await createUploadWorker({ config, connection: workerConnection, client, s3 });
        return { worker, run: worker.run(), uploads: new UploadClient({ client, taskQueue: config.temporal.taskQueue }) };
      }),
    );
    const [plain, encrypted] = running as [(typeof running)[0], (typeof running)[0]];
    const once = async (mode: keyof typeof modes, uploads: UploadClient, i: number) => {
      const started = performance.now();
      const handle = await uploads.start({
        uploadId: `${mode}-${i}`,
        tenant: `bench-${mode}`,
        source: { type: 'file', path: file },
        destination: { bucket: 'uploads', key: `${mode}/${i}.bin` },
      });
      await handle.result();
      workflowIds[mode].push(handle.workflowId);
      return performance.now() - started;
    };
    await once('plain', plain.uploads, -1); // warm-up: first workflow task, connections
    await once('encrypted', encrypted.uploads, -1);
    // Alternating which mode goes first, so neither always meets the other's leftovers.
    for (let i = 0; i < count; i++) {
      const order = i % 2 === 0 ? (['plain', 'encrypted'] as const) : (['encrypted', 'plain'] as const);
      for (const mode of order) durations[mode].push(await once(mode, mode === 'plain' ? plain.uploads : encrypted.uploads, i));
    }
    // What the server stored: every workflow input of the encrypted mode must be ciphertext, every
    // one of the plain mode JSON, or the comparison measured nothing. Read without a codec.
    const raw = new Client({ connection });
    const encodingsOf = async (ids: string[]) =>
      Promise.all(
        ids.map(async (id) => {
          const history = await raw.workflow.getHandle(id).fetchHistory();
          const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
          return Buffer.from(input?.metadata?.encoding ?? new Uint8Array()).toString();
        }),
      );
    encodings = { plain: await encodingsOf(workflowIds.plain), encrypted: await encodingsOf(workflowIds.encrypted) };
    if (encodings.encrypted.some((e) => e !== 'binary/encrypted') || encodings.plain.some((e) => e !== 'json/plain'))
      throw new Error(`payload encodings are not what the modes claim: ${JSON.stringify(encodings)}`);
    for (const r of running) r.worker.shutdown();
    await Promise.all(running.map((r) => r.run));
  } finally {
    s3.destroy();
    await connection.close();
    await workerConnection.close();
    await stack.stop();
    await rm(work, { recursive: true, force: true });
  }
  const result = {
    codec,
    sequentialUploads: count,
    plainMedianMs: Math.round(median(durations.plain)),
    encryptedMedianMs: Math.round(median(durations.encrypted)),
    ratio: Math.round((median(durations.encrypted) / median(durations.plain)) * 1000) / 1000,
    storedInputEncodings: { plain: [...new Set(encodings.plain)], encrypted: [...new Set(encodings.encrypted)] },
  };
  log(`1 MiB upload, median of ${count}: plain ${result.plainMedianMs} ms, encrypted ${result.encryptedMedianMs} ms (×${result.ratio})`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
