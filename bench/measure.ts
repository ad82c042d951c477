/** Measuring helpers for the benchmark: files, timing, percentiles, a process's peak RSS. */
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';

export const MiB = 1024 * 1024;

/** A file of `size` bytes: a 16 MiB random block repeated, each copy stamped so no two parts are equal. */
export async function makeBenchFile(path: string, size: number): Promise<void> {
  const block = randomBytes(16 * MiB);
  const handle = await open(path, 'w');
  try {
    for (let offset = 0, n = 0; offset < size; offset += block.length, n++) {
      block.writeUInt32BE(n, 0);
      await handle.write(block, 0, Math.min(block.length, size - offset), offset);
    }
  } finally {
    await handle.close();
  }
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const mbps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);

/** Peak resident set size of a process so far (Linux VmHWM), in MiB. */
export async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

export async function currentRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/** CPU time (user + system) a process has used so far, in seconds (Linux /proc/<pid>/stat). */
export async function cpuSeconds(pid: number): Promise<number> {
  return (await statTicks(pid, 11)) / 100; // utime, stime (fields 14 and 15 of the line); USER_HZ is 100 on Linux
}

/**
 * CPU time (user + system) of a process's main thread alone, in seconds: for a Node server, the
 * time its one JavaScript thread was busy (the thread pool's hashing and the V8 helper threads not
 * included).
 */
export async function mainThreadCpuSeconds(pid: number): Promise<number> {
  return (await statTicks(pid, 11, `/proc/${pid}/task/${pid}/stat`)) / 100;
}

/** CPU time (user + system) of the children a process has waited for, in seconds: what a command it ran and saw exit used. */
export async function waitedChildrenCpuSeconds(pid: number): Promise<number> {
  return (await statTicks(pid, 13)) / 100; // cutime, cstime (fields 16 and 17 of the line)
}

async function statTicks(pid: number, first: number, file = `/proc/${pid}/stat`): Promise<number> {
  const stat = await readFile(file, 'utf8');
  // Fields after the command name (which may contain spaces) start at ") ".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[first]) + Number(fields[first + 1]);
}

/** rclone's flags for an on-the-fly S3 remote (`:s3:bucket/key`) on the bench's MinIO. */
export function rcloneS3Flags(s3: { endpoint: string; accessKeyId: string; secretAccessKey: string }): string[] {
  return [
    '--s3-provider',
    'Minio',
    '--s3-endpoint',
    s3.endpoint,
    '--s3-access-key-id',
    s3.accessKeyId,
    '--s3-secret-access-key',
    s3.secretAccessKey,
  ];
}
