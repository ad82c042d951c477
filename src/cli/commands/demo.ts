/**
 * `upload-saga demo [--keep-running] [--size 64MiB]` (also `npm run demo`): the whole system on
 * one machine, end to end, with nothing installed but Node and Go.
 *
 * Why it is built this way: it runs the real pieces, not stand-ins — the embedded Temporal and
 * MinIO servers (built from Go modules on first use), a worker from `createUploadWorker` whose
 * configuration comes from `loadConfig` over the same variables a user would export, and an upload
 * through `UploadClient` with the progress bar the `upload` command shows. It then checks the
 * result independently of the saga (GetObject + SHA-256 against the generated file) and tears
 * everything down in reverse order of creation, whatever happened; Ctrl-C at any point after the
 * servers are up takes the same clean path.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Connection } from '@temporalio/client';
import { Runtime, type NativeConnection, type Worker } from '@temporalio/worker';
import { createLogger, TemporalLogger } from '../../logging';
import type { S3Client } from '@aws-sdk/client-s3';
import { UploadClient, UploadFailedError } from '../../client';
import { loadConfig } from '../../config';
import { connectClient, connectWorker, createS3Client, createTemporalClient } from '../../connections';
import { startEmbeddedStack, type EmbeddedStack } from '../../embedded';
import { hashToken } from '../../gateway/config';
import { startGatewayFromEnv, type RunningGateway } from '../../gateway/run';
import { uploadWorkflowId } from '../../upload/request';
import { createUploadWorker } from '../../worker';
import { CliError, ExitCode } from '../errors';
import { formatBytes } from '../format';
import { note, out, type CliIo } from '../io';
import { sha256OfObject } from '../object-digest';
import { UploadProgressBar } from '../progress-bar';
import { writeRandomFile } from '../random-file';
import { waitForShutdownSignal } from '../signals';
import { embeddedStackEnv, exportLines } from '../stack-env';
import { failureReportLines, resultLines } from '../upload-report';
import { watchUpload } from '../watch-upload';
import { uploadUiLink } from '../web-ui';

/** Options of the `demo` command. */
export interface DemoCommandOptions {
  /** After the demo, keep the stack and the worker running until Ctrl-C. @default false */
  keepRunning?: boolean;
  /** Size of the generated file in bytes. @default 64 MiB */
  size?: number;
}

export const DEMO_BUCKET = 'uploads';
export const DEMO_TENANT = 'demo';
export const DEMO_TASK_QUEUE = 'upload-saga';
export const DEFAULT_DEMO_SIZE = 64 * 1024 * 1024;

/** The object read back from S3 differs from the generated file. */
export class DemoVerificationError extends CliError {
  override readonly name = 'DemoVerificationError';
  constructor(expected: string, actual: string) {
    super('verification failed: the object in S3 differs from the uploaded file', ExitCode.Failure, [
      `  file   sha256 ${expected}`,
      `  object sha256 ${actual}`,
    ]);
  }
}

/** The user pressed Ctrl-C: shut down cleanly and exit 130. */
class Interrupted extends CliError {
  constructor(signal: NodeJS.Signals) {
    super(`${signal}: demo interrupted, everything was shut down`, ExitCode.Interrupted);
  }
}

/**
 * Worker lifecycle chatter would tear through the progress bar; warnings and errors still show.
 * The runtime must not stop the worker on Ctrl-C by itself: the demo shuts everything down in order.
 */
function quietTemporalRuntime(env: NodeJS.ProcessEnv): void {
  try {
    // The process's pino logger (src/logging.ts) at warn, in LOG_FORMAT when it says json or pretty.
    const format = env.LOG_FORMAT === 'json' || env.LOG_FORMAT === 'pretty' ? env.LOG_FORMAT : undefined;
    const logger = createLogger({ level: 'warn', ...(format ? { format } : {}) }, { name: 'demo' });
    Runtime.install({ logger: new TemporalLogger(logger), shutdownSignals: [] });
  } catch {
    // A runtime already exists in this process (embedding): keep its logger.
  }
}

/** Everything the demo starts, in creation order; closed in reverse. */
interface DemoResources {
  workDir?: string;
  stack?: EmbeddedStack;
  workerConnection?: NativeConnection;
  clientConnection?: Connection;
  s3?: S3Client;
  worker?: Worker;
  workerRun?: Promise<void>;
  /** The HTTP gateway (with --keep-running). */
  gateway?: RunningGateway;
  /** Cancels client calls still in flight before the connection closes (see watch-upload.ts). */
  inflight: AbortController;
}

async function shutDown(r: DemoResources, io: CliIo): Promise<void> {
  const errors: unknown[] = [];
  const attempt = async (what: string, fn: () => unknown) => {
    try {
      await fn();
    } catch (error) {
      errors.push(error);
      note(io, `  ${what} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  note(io, '[6/6] shutting down: worker, connections, stack…');
  r.inflight.abort();
  if (r.gateway) await attempt('stopping the gateway', () => r.gateway?.close());
  if (r.worker && r.worker.getState() === 'RUNNING') r.worker.shutdown();
  if (r.workerRun) await attempt('worker shutdown', () => r.workerRun);
  r.s3?.destroy();
  if (r.clientConnection) await attempt('closing the client connection', () => r.clientConnection?.close());
  if (r.workerConnection) await attempt('closing the worker connection', () => r.workerConnection?.close());
  if (r.stack) await attempt('stopping the stack', () => r.stack?.stop());
  if (r.workDir) await attempt('removing the work dir', () => rm(r.workDir!, { recursive: true, force: true }));
  if (errors.length === 0) note(io, 'shut down cleanly');
}

/** Runs the demo. Resolves after a clean shutdown; throws (after shutting down) when a step failed. */
export async function runDemo(options: DemoCommandOptions, io: CliIo): Promise<void> {
  const size = options.size ?? DEFAULT_DEMO_SIZE;
  quietTemporalRuntime(io.env);
  const r: DemoResources = { inflight: new AbortController() };
  const step = (n: number, text: string) => note(io, `[${n}/6] ${text}`);

  step(1, 'starting Temporal + MinIO on free ports (the first run builds both from Go modules: several minutes)…');
  r.workDir = await mkdtemp(path.join(os.tmpdir(), 'upload-saga-demo-'));
  try {
    r.stack = await startEmbeddedStack({ buckets: [DEMO_BUCKET], binaries: { logger: io.stderr } });
  } catch (error) {
    await rm(r.workDir, { recursive: true, force: true });
    throw error;
  }
  note(io, `      temporal ${r.stack.temporal.address} · web ui ${r.stack.temporal.uiUrl} · s3 ${r.stack.s3.endpoint}`);

  // From here on Ctrl-C (or a worker that dies) ends the current step and takes the clean path.
  const interrupt = waitForShutdownSignal();
  const interrupted = interrupt.received.then((signal) => Promise.reject(new Interrupted(signal)));
  interrupted.catch(() => undefined);
  let workerDied: Promise<never> = new Promise<never>(() => undefined);
  const guard = <T>(work: Promise<T>): Promise<T> => Promise.race([work, interrupted, workerDied]);

  try {
    step(2, 'starting a worker configured by loadConfig from the stack’s variables…');
    const env = { ...embeddedStackEnv(r.stack), TEMPORAL_TASK_QUEUE: DEMO_TASK_QUEUE, UPLOAD_SAGA_ALLOWED_ROOTS: r.workDir };
    const config = loadConfig(env);
    r.workerConnection = await guard(connectWorker(config.temporal));
    r.clientConnection = await guard(connectClient(config.temporal));
    const client = createTemporalClient(r.clientConnection, config);
    r.s3 = createS3Client(config.s3);
    r.worker = await guard(createUploadWorker({ config, connection: r.workerConnection, client, s3: r.s3 }));
    r.workerRun = r.worker.run();
    workerDied = r.workerRun.then(() => Promise.reject(new CliError('the worker stopped unexpectedly')));
    workerDied.catch(() => undefined);

    step(3, `generating ${formatBytes(size)} of random bytes…`);
    const fileName = `random-${randomBytes(3).toString('hex')}.bin`;
    const filePath = path.join(r.workDir, fileName);
    const sha256 = await guard(writeRandomFile(filePath, size));
    note(io, `      ${filePath} (sha256 ${sha256})`);

    step(4, 'uploading through the saga…');
    const uploads = new UploadClient({ client, taskQueue: config.temporal.taskQueue });
    const request = {
      uploadId: fileName.replace(/\.bin$/, ''),
      tenant: DEMO_TENANT,
      source: { type: 'file' as const, path: filePath },
      destination: { bucket: DEMO_BUCKET, key: `demo/${fileName}` },
      expectedChecksum: { algorithm: 'SHA256' as const, value: sha256 },
    };
    const workflowId = uploadWorkflowId(request.tenant, request.uploadId);
    const uiLink = uploadUiLink({ uiUrl: r.stack.temporal.uiUrl, namespace: config.temporal.namespace, workflowId });
    const handle = await guard(uploads.start(request));
    const bar = new UploadProgressBar({ stream: io.stderr, fallbackTotal: size });
    let result;
    try {
      result = await guard(watchUpload(handle, { sink: bar, stop: r.inflight.signal, scope: client }));
    } catch (error) {
      bar.stop();
      if (error instanceof UploadFailedError) {
        const [first = '', ...rest] = failureReportLines(error, { workflowId, uiLink });
        throw new CliError(first, ExitCode.Failure, rest, { cause: error });
      }
      throw error;
    }
    out(io, '', ...resultLines(result, { uiLink }), '');
    if (!options.keepRunning) note(io, '      (the Web UI stops with the demo; run with --keep-running to browse it)');

    step(5, 'verifying: reading the object back from S3 and comparing SHA-256…');
    const actual = await guard(sha256OfObject(r.s3, result.bucket, result.key));
    if (actual !== sha256) throw new DemoVerificationError(sha256, actual);
    out(io, `verified: bytes identical (sha256 ${actual})`);

    if (options.keepRunning) {
      // The HTTP gateway on the same worker: uploads from a browser or tus client, as tenant "demo".
      const token = randomBytes(18).toString('base64url');
      r.gateway = await guard(
        startGatewayFromEnv({
          ...env,
          UPLOAD_SAGA_GATEWAY_TOKENS: `${DEMO_TENANT}=${hashToken(token)}`,
          UPLOAD_SAGA_GATEWAY_PORT: io.env.UPLOAD_SAGA_GATEWAY_PORT ?? '0',
        }),
      );
      out(io, '', `HTTP gateway: ${r.gateway.url} (tus endpoint ${r.gateway.url}/files), tenant ${DEMO_TENANT}, token ${token}`);
      // The fragment never reaches the server: the page reads the token from it and drops it from the address bar.
      out(io, `upload page: ${r.gateway.url}/#token=${token} (drop a file, watch its saga)`);
      out(
        io,
        '',
        'still running (--keep-running): the worker polls task queue ' + DEMO_TASK_QUEUE + '; from another terminal:',
        ...exportLines({ ...env, UPLOAD_SAGA_ALLOWED_ROOTS: r.workDir }),
        `  upload-saga list --tenant ${DEMO_TENANT}`,
        `  upload-saga upload <file under ${r.workDir}> --bucket ${DEMO_BUCKET} --key <key> --tenant ${DEMO_TENANT}`,
        'press Ctrl-C to stop',
      );
      await guard(interrupt.received).catch((error: unknown) => {
        if (!(error instanceof Interrupted)) throw error;
      });
    }
  } finally {
    await shutDown(r, io);
    interrupt.dispose();
  }
}
