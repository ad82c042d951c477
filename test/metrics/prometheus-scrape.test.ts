/**
 * Proof against a real Prometheus (Debian's `prometheus`): it scrapes a real worker process, run
 * from dist/ with the shipped workflow bundle (its one `/metrics`: prom-client's metrics and the Temporal SDK's) and a real gateway (its metrics
 * port) every second while real uploads run against the run's Temporal dev server and MinIO, and
 * its HTTP API must show the counters moving as the uploads did — one completed, one compensated
 * (a bucket that does not exist), one through the gateway's tus endpoint. The shipped alert rules
 * are loaded too, and must evaluate without error against the real series.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UploadClient, UploadFailedError } from '../../src/client';
import { findFreePorts } from '../../src/embedded/free-port';
import { hashToken } from '../../src/gateway/config';
import { startGatewayFromEnv, type RunningGateway } from '../../src/gateway/run';
import { connectTestStack, stackEnv, uniqueId, type TestStack } from '../support/harness';
import { makeRandomFile, makeTempDir, MiB } from '../support/files';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { startTus, testTenant } from '../gateway/gateway-harness';
import { metricRows } from '../support/metrics-page';
import { REPO_ROOT } from '../support/markdown';

const PROMETHEUS = '/usr/bin/prometheus';

let stack: TestStack;
let worker: WorkerProcess;
let gateway: RunningGateway;
let prometheus: ChildProcess;
let prometheusUrl: string;
let temp: Awaited<ReturnType<typeof makeTempDir>>;
let workerTarget: string;
let gatewayTarget: string;
const tenant = testTenant('prom');

/** One instant query; the vector's samples as { labels, value }. */
async function query(promql: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await response.json()) as {
    status: string;
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  expect(body.status, promql).toBe('success');
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/** The single value of `promql` (0 when the vector is empty). */
async function value(promql: string): Promise<number> {
  const result = await query(promql);
  return result.length === 0 ? 0 : result.reduce((sum, r) => sum + r.value, 0);
}

/** Waits until Prometheus answers `expected` for `promql` (scrapes are 1 s apart). */
async function eventually(promql: string, expected: (v: number) => boolean, timeoutMs = 20_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = NaN;
  while (Date.now() < deadline) {
    last = await value(promql);
    if (expected(last)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${promql} is ${last} after ${timeoutMs} ms`);
}

beforeAll(async () => {
  temp = await makeTempDir('upload-saga-prometheus-');
  const [workerPort, gatewayPort, prometheusPort] = await findFreePorts(3);
  workerTarget = `127.0.0.1:${workerPort}`;
  gatewayTarget = `127.0.0.1:${gatewayPort}`;
  stack = await connectTestStack();
  const env = stackEnv(stack.config.temporal.taskQueue, {
    UPLOAD_SAGA_METRICS_HOST: '127.0.0.1',
    UPLOAD_SAGA_METRICS_PORT: String(workerPort),
    UPLOAD_SAGA_GATEWAY_METRICS_PORT: String(gatewayPort),
    UPLOAD_SAGA_GATEWAY_PORT: '0',
    UPLOAD_SAGA_GATEWAY_TOKENS: `${tenant.name}=${hashToken(tenant.token)}`,
    // info: startWorkerProcess waits for the worker's start line.
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
  });
  // The worker as published: dist/worker.js with its prebundled workflows (`npm run build`), so the
  // sinks are proven from the shipped bundle; the secret scan's worker runs them from the sources.
  const entry = path.join(REPO_ROOT, 'dist/worker.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  [worker, gateway] = await Promise.all([startWorkerProcess(env, { entry }), startGatewayFromEnv(env, { logger: false })]);

  await writeFile(
    path.join(temp.dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: ['${path.join(REPO_ROOT, 'deploy/prometheus/alerts.yml')}']`,
      'scrape_configs:',
      `  - { job_name: upload-saga-worker, static_configs: [{ targets: ['${workerTarget}'] }] }`,
      `  - { job_name: upload-saga-gateway, static_configs: [{ targets: ['${gatewayTarget}'] }] }`,
      '',
    ].join('\n'),
  );
  await mkdir(path.join(temp.dir, 'data'));
  prometheusUrl = `http://127.0.0.1:${prometheusPort}`;
  prometheus = spawn(
    PROMETHEUS,
    [
      `--config.file=${path.join(temp.dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(temp.dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${prometheusPort}`,
      // No consoles, no admin or lifecycle API: the query API is all the test needs.
      `--web.console.templates=${temp.dir}`,
      `--web.console.libraries=${temp.dir}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  prometheus.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ready = await fetch(`${prometheusUrl}/-/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline || prometheus.exitCode !== null) throw new Error(`prometheus did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 120_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus.once('exit', r));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await gateway?.close();
  await worker?.kill('SIGTERM');
  await stack?.close();
  await temp?.remove();
});

describe('a real Prometheus scraping a real worker and gateway', () => {
  it('sees both targets up, the SDK metrics beside the application metrics, and the alert rules healthy', async () => {
    await eventually(`up{instance="${workerTarget}"}`, (v) => v === 1);
    await eventually(`up{instance="${gatewayTarget}"}`, (v) => v === 1);
    // The worker polls: the SDK's own counters reach Prometheus through the worker's one endpoint.
    await eventually(`sum(temporal_long_request_total{operation="PollWorkflowTaskQueue",instance="${workerTarget}"})`, (v) => v > 0);
    const names = ((await (await fetch(`${prometheusUrl}/api/v1/label/__name__/values`)).json()) as { data: string[] }).data;
    for (const row of metricRows('Temporal SDK metrics')) {
      const series = row.type === 'histogram' ? `${row.name}_bucket` : row.name;
      expect(names, `the SDK exports ${row.name}`).toContain(series);
    }
    const rules = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    expect(loaded.length).toBeGreaterThanOrEqual(7);
    await eventually('count(ALERTS)', () => true); // rules evaluated at least once by now
    const refreshed = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as typeof rules;
    for (const rule of refreshed.data.groups.flatMap((g) => g.rules))
      expect({ rule: rule.name, health: rule.health }).toEqual({ rule: rule.name, health: 'ok' });
  });

  it('counts a completed and a compensated worker upload, their bytes, S3 errors and compensations', async () => {
    const file = await makeRandomFile(temp.dir, 'completed.bin', 7 * MiB);
    const uploads = new UploadClient({ client: stack.client, taskQueue: stack.config.temporal.taskQueue });
    const completed = await uploads.start({
      uploadId: uniqueId('ok'),
      tenant: tenant.name,
      source: { type: 'file', path: file.path },
      destination: { bucket: 'uploads', key: `prometheus/${uniqueId('ok')}.bin` },
      partSize: 5 * MiB,
    });
    await completed.result();
    const compensated = await uploads.start({
      uploadId: uniqueId('nobucket'),
      tenant: tenant.name,
      source: { type: 'file', path: file.path },
      destination: { bucket: 'upload-saga-no-such-bucket', key: 'prometheus/never.bin' },
      partSize: 5 * MiB,
    });
    await expect(compensated.result()).rejects.toBeInstanceOf(UploadFailedError);
    // Parts written, then verify refuses them: the saga undoes the upload and the reservation.
    const mismatch = await uploads.start({
      uploadId: uniqueId('mismatch'),
      tenant: tenant.name,
      source: { type: 'file', path: file.path },
      destination: { bucket: 'uploads', key: `prometheus/${uniqueId('mismatch')}.bin` },
      partSize: 5 * MiB,
      expectedChecksum: { algorithm: 'SHA256', value: '0'.repeat(64) },
    });
    await expect(mismatch.result()).rejects.toBeInstanceOf(UploadFailedError);

    const at = `instance="${workerTarget}"`;
    expect(await eventually(`sum(upload_saga_uploads_started_total{kind="worker",${at}})`, (v) => v === 3)).toBe(3);
    expect(await eventually(`sum(upload_saga_uploads_ended_total{kind="worker",outcome="completed",${at}})`, (v) => v === 1)).toBe(1);
    expect(await eventually(`sum(upload_saga_uploads_ended_total{kind="worker",outcome="compensated",${at}})`, (v) => v === 2)).toBe(2);
    // Both uploads that reached upload-parts wrote their two parts (5 MiB + 2 MiB) from the file.
    expect(await eventually(`sum(upload_saga_uploaded_bytes_total{transfer="upload",${at}})`, (v) => v === 2 * file.size)).toBe(
      2 * file.size,
    );
    expect(await eventually(`sum(upload_saga_source_read_bytes_total{source="file",${at}})`, (v) => v === 2 * file.size)).toBe(
      2 * file.size,
    );
    expect(await eventually(`sum(upload_saga_part_upload_duration_seconds_count{${at}})`, (v) => v === 4)).toBe(4);
    // The mismatch's compensations ran and succeeded: the multipart upload aborted, the reservation released.
    await eventually(`sum(upload_saga_compensations_total{status="compensated",${at}})`, (v) => v === 2);
    const compensations = await query(`upload_saga_compensations_total{status="compensated",${at}}`);
    expect(compensations.map((c) => c.metric.step).sort()).toEqual(['reserve-space', 'upload-parts']);
    expect(await eventually(`sum(upload_saga_quota_reservations_total{result="reserved",${at}})`, (v) => v === 2)).toBe(2);
    // Failures by step and cause; the missing bucket also as the classified S3 request error it came from.
    const failures = (await query(`upload_saga_upload_failures_total{${at}}`)).map((f) => `${f.metric.step} ${f.metric.cause} ${f.value}`);
    expect(failures.sort()).toEqual(['inspect-source BucketNotFound 1', 'verify ChecksumMismatch 1']);
    const s3Errors = await query(`upload_saga_s3_request_errors_total{retryable="false",${at}}`);
    expect(s3Errors.map((e) => `${e.metric.operation} ${e.metric.type}`)).toContain('HeadBucket S3.NotFound');
    // No tenant label unless opted in.
    expect((await query(`upload_saga_uploads_ended_total{${at}}`)).every((r) => !('tenant' in r.metric))).toBe(true);
  }, 120_000);

  it('counts a tus upload through the gateway: requests by route and status, bytes, and its outcome on both sides', async () => {
    const data = Buffer.alloc(3 * MiB, 7);
    await startTus(data, {
      endpoint: `${gateway.url}/files`,
      headers: tenant.auth,
      chunkSize: 1 * MiB,
      metadata: { filename: 'prom.bin' },
    }).done;
    const at = `instance="${gatewayTarget}"`;
    expect(await eventually(`sum(upload_saga_gateway_uploads_total{protocol="tus",outcome="created",${at}})`, (v) => v === 1)).toBe(1);
    expect(await eventually(`sum(upload_saga_gateway_uploads_total{protocol="tus",outcome="completed",${at}})`, (v) => v === 1)).toBe(1);
    expect(
      await eventually(`sum(upload_saga_gateway_http_requests_total{route="/files",method="POST",status="201",${at}})`, (v) => v === 1),
    ).toBe(1);
    expect(
      await eventually(`sum(upload_saga_gateway_http_requests_total{route="/files/*",method="PATCH",status="204",${at}})`, (v) => v === 3),
    ).toBe(3);
    expect(await eventually(`sum(upload_saga_gateway_received_bytes_total{protocol="tus",${at}})`, (v) => v === data.length)).toBe(
      data.length,
    );
    expect(
      await eventually(
        `sum(upload_saga_uploads_ended_total{kind="gateway",outcome="completed",instance="${workerTarget}"})`,
        (v) => v === 1,
      ),
    ).toBe(1);
    expect(await value(`sum(upload_saga_gateway_http_requests_total{status=~"5..",${at}})`)).toBe(0);
  }, 120_000);
});
