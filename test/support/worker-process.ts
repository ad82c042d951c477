/**
 * A real worker in its own process (`node --import tsx src/worker.ts`), configured by environment
 * variables, so tests can SIGKILL it the way a crash or an OOM kill would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { siblingModule } from '../../src/module-path';

export interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts a worker process and resolves once it polls. `entry` is the module it runs
 * (@default src/worker.ts; the fault suite passes one that loads a pre-built workflow bundle).
 */
export async function startWorkerProcess(env: Record<string, string>, options: { entry?: string } = {}): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', options.entry ?? siblingModule(__dirname, '../../src/worker')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      output += c.toString();
      if (output.includes('upload-saga worker on task queue')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready:\n${output.slice(-2000)}`)));
  });
  return {
    child,
    output: () => output,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}
