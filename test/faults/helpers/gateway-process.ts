/**
 * A gateway replica as its own process (`upload-saga gateway`, what a deployment runs) and a tus
 * client upload to drive it: shared by the gateway scenarios (15, 17).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as tus from 'tus-js-client';
import { siblingModule } from '../../../src/module-path';
import type { FaultContext } from '../framework';

export interface GatewayProcess {
  readonly url: string;
  readonly child: ChildProcess;
  kill(): Promise<void>;
}

/** Starts `upload-saga gateway` as its own process and waits until it answers. */
export async function startGatewayProcess(
  ctx: FaultContext,
  port: number,
  env: Record<string, string>,
  label: string,
): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', siblingModule(__dirname, '../../../src/cli/main'), 'gateway'], {
    env: { ...process.env, ...env, UPLOAD_SAGA_GATEWAY_PORT: String(port), UPLOAD_SAGA_GATEWAY_HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The last of its output (for a replica that does not start), and every error it logs in the
  // scenario's log, so that a 500 it answered can be explained afterwards.
  let output = '';
  let partial = '';
  const take = (c: Buffer) => {
    output = (output + c.toString()).slice(-20_000);
    const lines = (partial + c.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (/"level":(50|60)\b/.test(line)) ctx.log(`gateway ${label}: ${line.slice(0, 4000)}`);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  ctx.defer(kill);
  const url = `http://127.0.0.1:${port}`;
  await ctx.waitFor(
    `gateway ${label} listening on ${url}`,
    async () => {
      if (child.exitCode !== null) throw new Error(`gateway ${label} exited with ${child.exitCode}:\n${output.slice(-2000)}`);
      return fetch(`${url}/files`, { method: 'OPTIONS' }).then(
        (r) => r.status < 500,
        () => false,
      );
    },
    { timeoutMs: 60_000 },
  );
  ctx.log(`gateway ${label}: pid ${child.pid}, ${url}`);
  return { url, child, kill };
}

/** One tus upload; `done` settles when it succeeds or fails (retries as configured). */
export function tusUpload(data: Buffer, options: tus.UploadOptions): { upload: tus.Upload; done: Promise<void>; offset: () => number } {
  let upload!: tus.Upload;
  let offset = 0;
  const done = new Promise<void>((resolve, reject) => {
    upload = new tus.Upload(data, {
      retryDelays: null,
      storeFingerprintForResuming: false,
      ...options,
      onChunkComplete: (_chunk, accepted) => (offset = accepted),
      onSuccess: () => resolve(),
      onError: (error) => reject(error),
    });
    upload.start();
  });
  return { upload, done, offset: () => offset };
}
