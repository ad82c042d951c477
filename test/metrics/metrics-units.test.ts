/**
 * The metrics modules on their own: the breaker gauge's values, the open-streams handle, the
 * tenant opt-in, the S3 middleware against the run's real MinIO, and the scrape endpoint's
 * merging of sources (a failing source left out, not failing the scrape).
 */
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../../src/metrics/gateway-metrics';
import { startMetricsServer } from '../../src/metrics/metrics-server';
import { instrumentS3Client } from '../../src/metrics/s3-middleware';
import { uploadMetricsSinks } from '../../src/metrics/worker-sinks';
import { WorkerMetrics } from '../../src/metrics/worker-metrics';
import { connectTestStack, type TestStack } from '../support/harness';

/** The value of one series in `metrics`' exposition text, or undefined. */
async function sample(text: Promise<string>, series: string): Promise<number | undefined> {
  const line = (await text).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

let stack: TestStack;
beforeAll(async () => {
  stack = await connectTestStack();
});
afterAll(async () => {
  await stack?.close();
});

describe('worker metrics', () => {
  it('show breaker states as 0 closed, 1 half-open, 2 open, through the listener the breaker calls', async () => {
    const metrics = new WorkerMetrics();
    const listener = metrics.circuitBreakerListener;
    listener('http://minio:9000', 'open');
    listener('hooks.example.com', 'halfOpen');
    listener('s3.example.com', 'half-open');
    expect(await sample(metrics.metrics(), 'upload_saga_circuit_breaker_state{target="http://minio:9000"}')).toBe(2);
    expect(await sample(metrics.metrics(), 'upload_saga_circuit_breaker_state{target="hooks.example.com"}')).toBe(1);
    listener('http://minio:9000', 'closed');
    expect(await sample(metrics.metrics(), 'upload_saga_circuit_breaker_state{target="http://minio:9000"}')).toBe(0);
  });

  it('label uploads with their tenant only when opted in, from the workflow id', async () => {
    const info = { workflowId: 'upload:acme:u1' } as never;
    for (const tenantLabel of [false, true]) {
      const metrics = new WorkerMetrics({ tenantLabel });
      const sinks = uploadMetricsSinks(metrics);
      void sinks.uploadMetrics.started.fn(info, 'worker');
      void sinks.uploadMetrics.ended.fn(info, {
        kind: 'worker',
        outcome: 'compensated',
        failure: { step: 'verify', cause: 'ChecksumMismatch', compensations: [{ step: 'upload-parts', status: 'compensated' }] },
      });
      const tenant = tenantLabel ? ',tenant="acme"' : '';
      expect(await sample(metrics.metrics(), `upload_saga_uploads_ended_total{kind="worker",outcome="compensated"${tenant}}`)).toBe(1);
      expect(
        await sample(metrics.metrics(), `upload_saga_upload_failures_total{kind="worker",step="verify",cause="ChecksumMismatch"${tenant}}`),
      ).toBe(1);
      expect(await sample(metrics.metrics(), 'upload_saga_compensations_total{step="upload-parts",status="compensated"}')).toBe(1);
    }
  });

  it('report the age of the oldest running attempt per step, and 0 once none runs', async () => {
    const metrics = new WorkerMetrics();
    const done = metrics.activityStarted('uploadParts');
    await new Promise((r) => setTimeout(r, 50));
    expect(await sample(metrics.metrics(), 'upload_saga_activity_oldest_running_seconds{step="uploadParts"}')).toBeGreaterThanOrEqual(0.04);
    done();
    expect(await sample(metrics.metrics(), 'upload_saga_activity_oldest_running_seconds{step="uploadParts"}')).toBe(0);
  });

  it('count failed S3 requests by operation and classification, with a real MinIO answering', async () => {
    const metrics = new WorkerMetrics();
    instrumentS3Client(stack.s3, metrics);
    await expect(stack.s3.send(new HeadObjectCommand({ Bucket: 'uploads', Key: 'metrics/does-not-exist' }))).rejects.toThrow();
    expect(
      await sample(metrics.metrics(), 'upload_saga_s3_request_errors_total{operation="HeadObject",type="S3.NotFound",retryable="false"}'),
    ).toBe(1);
    // Instrumenting twice replaces the middleware: one count per failure, into the newest metrics.
    const newer = new WorkerMetrics();
    instrumentS3Client(stack.s3, newer);
    await expect(stack.s3.send(new HeadObjectCommand({ Bucket: 'uploads', Key: 'metrics/does-not-exist' }))).rejects.toThrow();
    expect(
      await sample(newer.metrics(), 'upload_saga_s3_request_errors_total{operation="HeadObject",type="S3.NotFound",retryable="false"}'),
    ).toBe(1);
    expect(
      await sample(metrics.metrics(), 'upload_saga_s3_request_errors_total{operation="HeadObject",type="S3.NotFound",retryable="false"}'),
    ).toBe(1);
  });
});

describe('gateway metrics', () => {
  it('count an open stream once, whatever how often its close is called', async () => {
    const metrics = new GatewayMetrics();
    const close = metrics.streamOpened('websocket');
    metrics.streamOpened('sse');
    expect(await sample(metrics.metrics(), 'upload_saga_gateway_open_streams{protocol="websocket"}')).toBe(1);
    close();
    close();
    expect(await sample(metrics.metrics(), 'upload_saga_gateway_open_streams{protocol="websocket"}')).toBe(0);
    expect(await sample(metrics.metrics(), 'upload_saga_gateway_open_streams{protocol="sse"}')).toBe(1);
  });
});

describe('the scrape endpoint', () => {
  it('serves every source one after another, leaving out one that fails', async () => {
    const metrics = new WorkerMetrics();
    metrics.uploadStarted('worker');
    const server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      sources: [
        { name: 'app', collect: () => metrics.metrics() },
        { name: 'broken', collect: () => Promise.reject(new Error('exporter down')) },
        { name: 'sdk', collect: async () => '# TYPE temporal_x_total counter\ntemporal_x_total 3' },
      ],
    });
    try {
      const response = await fetch(`${server.url}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await response.text();
      expect(text).toContain('upload_saga_uploads_started_total{kind="worker"} 1\n');
      expect(text.endsWith('temporal_x_total 3\n')).toBe(true);
      expect((await fetch(`${server.url}/other`)).status).toBe(404);
      expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });
});
