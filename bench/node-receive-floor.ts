/**
 * The least CPU a Node HTTP server spends receiving a tus PATCH body, for comparing the gateway's
 * cost per byte with what Node itself costs (docs/explanation/performance.md). A plain node:http
 * server receives `size` bytes from curl (another process, so its CPU is not counted) and, per
 * mode, drops each chunk, copies it into a reused part buffer (as the gateway's chunk writer does),
 * or copies it and takes each full part's CRC32C (as the gateway does before UploadPart). Prints
 * the server process's CPU (user + system) per upload, best of `reps`.
 *
 *   npx tsx bench/node-receive-floor.ts [size] [reps]     # default 128MiB 5
 *
 * Not a part of `npm run bench`: it measures Node, not the gateway.
 */
import { execFile } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32c } from '@node-rs/crc32';
import { parseByteSize } from '../src/config';

const MODES = ['drop', 'copy', 'copy + CRC32C'] as const;
type Mode = (typeof MODES)[number];
const PART = 10 * 1024 * 1024;

async function main(): Promise<void> {
  const size = parseByteSize(process.argv[2] ?? '128MiB');
  if (size === undefined || size < 1) throw new Error(`not a size: ${process.argv[2]}`);
  const reps = Number(process.argv[3] ?? 5);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'receive-floor-'));
  const file = path.join(dir, 'body.bin');
  await writeFile(file, randomFillSync(Buffer.alloc(size)));
  const part = Buffer.alloc(PART);
  let mode: Mode = 'drop';
  let cpuMs = 0;
  const server = http.createServer((req, res) => {
    const before = process.cpuUsage();
    let filled = 0;
    req.on('data', (chunk: Buffer) => {
      if (mode === 'drop') return;
      for (let from = 0; from < chunk.length;) {
        const copied = chunk.copy(part, filled, from, Math.min(chunk.length, from + PART - filled));
        filled += copied;
        from += copied;
        if (filled === PART) {
          if (mode === 'copy + CRC32C') crc32c(part);
          filled = 0;
        }
      }
    });
    req.on('end', () => {
      if (mode === 'copy + CRC32C' && filled > 0) crc32c(part.subarray(0, filled));
      const used = process.cpuUsage(before);
      cpuMs = (used.user + used.system) / 1000;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  try {
    console.log(`node ${process.version}, ${size / 1024 / 1024} MiB per PATCH from curl, best of ${reps}:`);
    for (const each of MODES) {
      mode = each;
      const runs: number[] = [];
      for (let i = 0; i < reps; i++) {
        await promisify(execFile)('curl', [
          '-s',
          '-X',
          'PATCH',
          '--data-binary',
          `@${file}`,
          '-H',
          'Content-Type: application/offset+octet-stream',
          url,
        ]);
        runs.push(cpuMs);
      }
      console.log(`  ${each}: ${Math.min(...runs).toFixed(0)} ms of CPU (runs: ${runs.map((r) => r.toFixed(0)).join(', ')})`);
    }
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
