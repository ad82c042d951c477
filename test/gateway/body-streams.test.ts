/**
 * The gateway's memory budget, shown on `upload-saga gateway` as its own process (what a
 * deployment runs) with Redis: more stalled tus PATCHes than its caps allow — the extra ones are
 * refused (429 beyond the tenant's cap, 503 beyond the replica's) before their bodies are read —
 * while the process's peak RSS (VmHWM, reset after a warm-up) stays under the stated bound
 * `base + streams × (parts in flight + 1) × (part size + 5 MiB) + 128 MiB` (buffers not yet collected). After the idle timeout the stalled
 * bodies are ended like dropped connections: HEAD shows every byte they sent, and the slots are
 * free again (the uploads finish). The refusals are the rows of docs/reference/bad-input.md
 * "Gateway body streams", read from the page.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/embedded/free-port';
import { bodyStreamMemoryBound } from '../../src/gateway/body-streams';
import { DEFAULT_TUS_PARTS_IN_FLIGHT } from '../../src/gateway/config';
import { hashToken } from '../../src/gateway/config';
import { siblingModule } from '../../src/module-path';
import { MiB } from '../support/files';
import { connectTestStack, startUploadWorker, type RunningWorker, type TestStack } from '../support/harness';
import { codeSpans, fragmentPattern, readRepoFile, tables } from '../support/markdown';
import { objectSha256 } from '../support/s3-inspect';
import { testTenant, tusRequest } from './gateway-harness';

const REPLICA_CAP = 12;
const TENANT_CAP = 8;
/** PATCHes each tenant sends at once: acme beyond its own cap, beta beyond what the replica has left. */
const ACME_PATCHES = 14;
const BETA_PATCHES = 8;
const IDLE_SECONDS = 8;
const PART_SIZE = 5 * MiB;
const LENGTH = 16 * MiB;
const SENT_BEFORE_STALL = 12 * MiB;
const BUCKET = 'uploads';

let stack: TestStack;
let worker: RunningWorker;
let gateway: ChildProcess;
let gatewayOutput = '';
let url = '';
let metricsUrl = '';
const acme = testTenant('streams-acme');
const beta = testTenant('streams-beta');

beforeAll(async () => {
  stack = await connectTestStack();
  worker = await startUploadWorker(stack);
  const metricsPort = await findFreePort();
  gateway = spawn(process.execPath, ['--import', 'tsx', siblingModule(__dirname, '../../src/cli/main'), 'gateway', '--port', '0'], {
    env: {
      ...process.env,
      ...stack.env,
      UPLOAD_SAGA_GATEWAY_TOKENS: [acme, beta].map((t) => `${t.name}=${hashToken(t.token)}`).join(','),
      UPLOAD_SAGA_GATEWAY_RATE_LIMIT: '1000',
      UPLOAD_SAGA_GATEWAY_REDIS_URL: 'redis://127.0.0.1:6379',
      UPLOAD_SAGA_GATEWAY_BODY_STREAMS: String(REPLICA_CAP),
      UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS: String(TENANT_CAP),
      // beta may send more than the replica has room for: its extra bodies meet the replica's cap.
      UPLOAD_SAGA_GATEWAY_TENANT_BODY_STREAMS_OVERRIDES: `${beta.name}=100`,
      UPLOAD_SAGA_GATEWAY_BODY_IDLE_TIMEOUT: `${IDLE_SECONDS}s`,
      UPLOAD_SAGA_GATEWAY_METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  gateway.stderr!.on('data', (c: Buffer) => (gatewayOutput += c.toString()));
  url = await new Promise<string>((resolve, reject) => {
    gateway.stdout!.on('data', (chunk: Buffer) => {
      gatewayOutput += chunk.toString();
      const match = /url\s+(http:\/\/\S+)/.exec(gatewayOutput);
      if (match && gatewayOutput.includes('press Ctrl-C')) resolve(match[1]!);
    });
    gateway.once('exit', (code) => reject(new Error(`the gateway exited with ${code}:\n${gatewayOutput.slice(-2000)}`)));
  });
  metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
}, 120_000);

afterAll(async () => {
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
    const exited = new Promise((r) => gateway.once('exit', r));
    gateway.kill('SIGKILL');
    await exited;
  }
  await worker?.stop();
  await stack?.close();
});

/** VmRSS or VmHWM of the gateway process, in bytes. */
async function memory(field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${gateway.pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)\\s+kB`).exec(status)![1]) * 1024;
}

async function createUpload(tenant: typeof acme): Promise<string> {
  const answer = await tusRequest(`${url}/files`, 'POST', { ...tenant.auth, 'Upload-Length': String(LENGTH) });
  expect(answer.status, await answer.text()).toBe(201);
  return new URL(answer.headers.get('location')!, url).toString();
}

async function headOffset(upload: string, tenant: typeof acme): Promise<number> {
  const answer = await tusRequest(upload, 'HEAD', tenant.auth);
  expect(answer.status).toBe(200);
  return Number(answer.headers.get('upload-offset'));
}

/** What became of one stalled PATCH: refused (status and message), or ended without an answer. */
interface StalledPatch {
  /** Settles with the refusal, or `closed` once the gateway ended the connection. */
  outcome: Promise<{ status: number; message: string } | 'closed'>;
  /** Resolves once the client handed all its bytes to the socket. */
  written: Promise<void>;
}

/** A PATCH that declares the whole upload, sends `bytes` of `data` (unless refused first) and then nothing more. */
function stalledPatch(upload: string, tenant: typeof acme, data: Buffer, bytes: number): StalledPatch {
  let written!: () => void;
  const writtenPromise = new Promise<void>((r) => (written = r));
  const outcome = new Promise<{ status: number; message: string } | 'closed'>((resolve) => {
    const request = http.request(upload, {
      method: 'PATCH',
      agent: false,
      headers: {
        ...tenant.auth,
        'Tus-Resumable': '1.0.0',
        'Content-Type': 'application/offset+octet-stream',
        'Upload-Offset': '0',
        'Content-Length': String(data.length),
      },
    });
    request.on('response', (response) => {
      let text = '';
      response.on('data', (c: Buffer) => (text += c.toString()));
      response.on('end', () => {
        const message = (() => {
          try {
            return (JSON.parse(text) as { message: string }).message;
          } catch {
            return text;
          }
        })();
        resolve({ status: response.statusCode!, message });
        request.destroy();
      });
    });
    let answered = false;
    request.on('response', () => (answered = true));
    request.on('error', () => resolve('closed'));
    request.on('close', () => resolve('closed'));
    // Headers first: a refusal comes before the body is read, and a client that has it sends no body
    // (what it would send is read and discarded, which only adds garbage to the RSS measured here).
    request.flushHeaders();
    setTimeout(() => {
      if (answered) return written();
      request.write(data.subarray(0, bytes), () => written());
    }, 1_000);
  });
  return { outcome, written: writtenPromise };
}

async function metric(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || l.startsWith(`${name}${labels}{`));
  return Number(line?.split(' ').pop() ?? NaN);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('the gateway keeps its memory budget', () => {
  /** Refusals seen, by the catalogue row they answer. */
  const refusals = new Map<string, { status: number; message: string }[]>();

  it('refuses streams beyond the tenant (429) and replica (503) caps before reading them, stays under the stated RSS bound, and ends stalled bodies after the idle timeout', async () => {
    expect(gatewayOutput).toContain(`at most ${REPLICA_CAP} at once (${TENANT_CAP} per tenant), ended after ${IDLE_SECONDS} s idle`);
    const data = randomBytes(LENGTH);

    // Warm-up: one whole upload through every path (create, parts, staging, merge), then the base.
    const warm = await createUpload(acme);
    const done = await tusRequest(warm, 'PATCH', { ...acme.auth, 'Upload-Offset': '0' }, data);
    expect(done.status, await done.text()).toBe(204);
    const acmeUploads = await Promise.all(Array.from({ length: ACME_PATCHES }, () => createUpload(acme)));
    const betaUploads = await Promise.all(Array.from({ length: BETA_PATCHES }, () => createUpload(beta)));
    const base = await memory('VmRSS');
    await writeFile(`/proc/${gateway.pid}/clear_refs`, '5'); // VmHWM := VmRSS

    /** Waits until all but the `admitted` PATCHes were answered; what each became. */
    const settledSoon = async (patches: StalledPatch[], admitted: number) => {
      const seen: ({ status: number; message: string } | 'closed' | 'stalled')[] = patches.map(() => 'stalled');
      patches.forEach((p, i) => void p.outcome.then((o) => (seen[i] = o)));
      await expect
        .poll(() => seen.filter((o) => o !== 'stalled').length, { timeout: 30_000, interval: 200 })
        .toBe(patches.length - admitted);
      return seen;
    };
    // acme: 14 at once against its cap of 8 (the replica has room for 12): 8 stall, 6 get 429.
    const acmePatches = acmeUploads.map((u) => stalledPatch(u, acme, data, SENT_BEFORE_STALL));
    await expect.poll(() => metric('upload_saga_gateway_body_streams'), { timeout: 30_000, interval: 200 }).toBe(TENANT_CAP);
    const acmeSeen = await settledSoon(acmePatches, TENANT_CAP);
    // beta: 8 at once; the replica has 4 slots left: 4 stall, 4 get 503.
    const betaPatches = betaUploads.map((u) => stalledPatch(u, beta, data, SENT_BEFORE_STALL));
    await expect.poll(() => metric('upload_saga_gateway_body_streams'), { timeout: 30_000, interval: 200 }).toBe(REPLICA_CAP);
    const betaSeen = await settledSoon(betaPatches, REPLICA_CAP - TENANT_CAP);
    const refusedBy = (seen: typeof acmeSeen) => seen.filter((o): o is { status: number; message: string } => typeof o === 'object');
    expect(refusedBy(acmeSeen).map((o) => o.status)).toEqual(Array(ACME_PATCHES - TENANT_CAP).fill(429));
    expect(refusedBy(betaSeen).map((o) => o.status)).toEqual(Array(BETA_PATCHES - (REPLICA_CAP - TENANT_CAP)).fill(503));
    refusals.set("a body beyond the tenant's cap", refusedBy(acmeSeen));
    refusals.set("a body beyond the replica's cap", refusedBy(betaSeen));
    const stalled = [
      ...acmePatches.flatMap((p, i) => (acmeSeen[i] === 'stalled' ? [{ upload: acmeUploads[i]!, tenant: acme, patch: p }] : [])),
      ...betaPatches.flatMap((p, i) => (betaSeen[i] === 'stalled' ? [{ upload: betaUploads[i]!, tenant: beta, patch: p }] : [])),
    ];
    expect(stalled).toHaveLength(REPLICA_CAP);
    expect(await metric('upload_saga_gateway_body_streams_refused_total', '{scope="tenant"}')).toBe(ACME_PATCHES - TENANT_CAP);
    expect(await metric('upload_saga_gateway_body_streams_refused_total', '{scope="replica"}')).toBe(
      BETA_PATCHES - (REPLICA_CAP - TENANT_CAP),
    );

    // Every admitted body sent its bytes and stalls; the peak stays under the stated bound.
    await Promise.all(stalled.map((s) => s.patch.written));
    const { perStreamBytes, totalBytes } = bodyStreamMemoryBound({
      bodyStreams: REPLICA_CAP,
      partSize: PART_SIZE,
      partsInFlight: DEFAULT_TUS_PARTS_IN_FLIGHT,
    });
    expect(perStreamBytes).toBe((DEFAULT_TUS_PARTS_IN_FLIGHT + 1) * (PART_SIZE + 5 * MiB));
    const rssWhileStalled = await memory('VmRSS');
    const outcomes = await Promise.all(stalled.map((s) => s.patch.outcome)); // ended by the idle timeout
    const peak = await memory('VmHWM');
    console.log(
      `body streams: base ${(base / MiB).toFixed(0)} MiB, ${REPLICA_CAP} stalled after ${SENT_BEFORE_STALL / MiB} MiB each: ` +
        `RSS ${(rssWhileStalled / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB ` +
        `(+${((peak - base) / MiB).toFixed(0)} MiB; bound base + ${REPLICA_CAP} × ${perStreamBytes / MiB} MiB + 128 MiB = +${totalBytes / MiB} MiB)`,
    );
    expect(peak - base).toBeLessThanOrEqual(totalBytes);

    // The idle timeout ended them like dropped connections: no answer, every byte kept.
    expect(outcomes).toEqual(Array(REPLICA_CAP).fill('closed'));
    refusals.set('a body that sends nothing for the idle timeout', []);
    for (const { upload, tenant } of stalled) expect(await headOffset(upload, tenant)).toBe(SENT_BEFORE_STALL);
    await expect.poll(() => metric('upload_saga_gateway_body_streams'), { timeout: 10_000, interval: 200 }).toBe(0);
    expect(await metric('upload_saga_gateway_body_streams_idle_ended_total')).toBe(REPLICA_CAP);

    // The slots are free again: every stalled upload finishes from its offset, byte-identical.
    const rest = data.subarray(SENT_BEFORE_STALL);
    const finished = await Promise.all(
      stalled.map(({ upload, tenant }) =>
        tusRequest(upload, 'PATCH', { ...tenant.auth, 'Upload-Offset': String(SENT_BEFORE_STALL) }, rest).then((r) => r.status),
      ),
    );
    expect(finished).toEqual(Array(REPLICA_CAP).fill(204));
    // Byte-identical, at the default key <tenant>/<upload id>/file (the first of each tenant).
    for (const { upload, tenant } of [stalled[0]!, stalled.at(-1)!]) {
      expect(await objectSha256(stack.s3, BUCKET, `${tenant.name}/${upload.split('/').pop()!}/file`)).toBe(sha256(data));
    }
  }, 180_000);

  it('answers each row of the catalogue, "Gateway body streams", with its status and message', () => {
    const found = tables(readRepoFile('docs/reference/bad-input.md')).filter((t) => t.heading === 'Gateway body streams');
    expect(found).toHaveLength(1);
    expect(found[0]!.header).toEqual(['request', 'status', 'answer']);
    const rows = found[0]!.rows;
    expect(rows.map(([request]) => request).sort()).toEqual([...refusals.keys()].sort());
    for (const [request, status, answer] of rows) {
      const seen = refusals.get(request!)!;
      if (status === 'connection closed') {
        expect(seen).toEqual([]);
        continue;
      }
      expect(seen.length).toBeGreaterThan(0);
      for (const refusal of seen) {
        expect(refusal.status).toBe(Number(status));
        for (const fragment of codeSpans(answer!)) expect(refusal.message).toMatch(fragmentPattern(fragment));
      }
    }
  });
});
