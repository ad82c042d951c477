/**
 * The metrics reference page (docs/reference/metrics.md) as data: its metric tables, for the tests
 * that compare them with the registries and with a real scrape.
 */
import { expect } from 'vitest';
import { codeSpans, plain, readRepoFile, section, tables } from './markdown';

export const METRICS_PAGE = 'docs/reference/metrics.md';

export interface MetricRow {
  name: string;
  type: string;
  labels: string[];
  unit: string;
  meaning: string;
}

/** The rows of the metrics table under `heading`. */
export function metricRows(heading: string): MetricRow[] {
  const found = tables(section(readRepoFile(METRICS_PAGE), heading)).filter((t) => t.header[0] === 'metric');
  expect(found.length, `one metrics table under "${heading}"`).toBe(1);
  expect(found[0]!.header).toEqual(['metric', 'type', 'labels', 'unit', 'meaning']);
  return found[0]!.rows.map(([name, type, labels, unit, meaning]) => ({
    name: codeSpans(name!)[0]!,
    type: plain(type!),
    labels: codeSpans(labels!),
    unit: plain(unit!),
    meaning: plain(meaning!),
  }));
}
