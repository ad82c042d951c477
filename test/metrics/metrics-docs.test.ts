/**
 * docs/reference/metrics.md against the code: the worker's and the gateway's tables list exactly
 * the metrics their registries define, each with the registry's type, labels (tenant included, as
 * with the opt-in on) and help text as the start of its meaning; names follow Prometheus
 * conventions. The Temporal SDK's table is checked against a real scrape in prometheus-scrape.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Registry } from 'prom-client';
import { GatewayMetrics } from '../../src/metrics/gateway-metrics';
import { WorkerMetrics } from '../../src/metrics/worker-metrics';
import { plain } from '../support/markdown';
import { METRICS_PAGE as PAGE, metricRows, type MetricRow } from '../support/metrics-page';

async function registryRows(registry: Registry): Promise<MetricRow[]> {
  return (await registry.getMetricsAsJSON()).map((m) => ({
    name: m.name,
    type: String(m.type),
    labels: [...((registry.getSingleMetric(m.name) as unknown as { labelNames?: string[] }).labelNames ?? [])],
    unit: m.name.endsWith('_seconds') ? 'seconds' : /_bytes(_total)?$/.test(m.name) ? 'bytes' : '—',
    meaning: m.help,
  }));
}

describe(`the metrics reference (${PAGE})`, () => {
  it.each([
    ['Worker metrics', () => new WorkerMetrics({ tenantLabel: true }).registry],
    ['Gateway metrics', () => new GatewayMetrics({ tenantLabel: true }).registry],
  ] as const)('%s: exactly the metrics the registry defines, with their type, labels, unit and help', async (heading, registryOf) => {
    const documented = metricRows(heading);
    const defined = await registryRows(registryOf());
    expect(documented.map((r) => r.name).sort()).toEqual(defined.map((r) => r.name).sort());
    for (const row of defined) {
      const doc = documented.find((d) => d.name === row.name)!;
      expect({ type: doc.type, labels: doc.labels, unit: doc.unit }, row.name).toEqual({
        type: row.type,
        labels: row.labels,
        unit: row.unit,
      });
      expect(doc.meaning.startsWith(plain(row.meaning)), `${row.name}: meaning starts with its help text:\n  ${row.meaning}`).toBe(true);
    }
  });

  it('names follow Prometheus conventions: upload_saga_ prefix, _total counters, base units', async () => {
    for (const registry of [new WorkerMetrics().registry, new GatewayMetrics().registry]) {
      for (const m of await registryRows(registry)) {
        expect(m.name).toMatch(/^upload_saga_[a-z0-9_]+$/);
        expect(m.name.endsWith('_total'), `${m.name} is a counter iff it ends in _total`).toBe(m.type === 'counter');
        expect(m.name, 'no milliseconds or other non-base units').not.toMatch(/_(milliseconds|ms|kilobytes|mib)(_|$)/);
      }
    }
  });

  it('has no tenant label unless the operator opts in', async () => {
    for (const registry of [new WorkerMetrics().registry, new GatewayMetrics().registry]) {
      for (const m of await registryRows(registry)) expect(m.labels, m.name).not.toContain('tenant');
    }
  });
});
