/**
 * The shipped alerting rules (deploy/prometheus/alerts.yml) checked and unit-tested by Debian's
 * `promtool`: `check rules` (syntax, PromQL), then `test rules` over alerts.test.yml, where each
 * alert has a case that fires and one that does not. Every alert also has a test case and a
 * description in the metrics reference page.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readRepoFile, REPO_ROOT, section, tables } from '../support/markdown';

const run = promisify(execFile);
const PROMTOOL = '/usr/bin/promtool';
const RULES = 'deploy/prometheus/alerts.yml';
const RULE_TESTS = 'deploy/prometheus/alerts.test.yml';

interface RuleFile {
  groups: { rules: { alert?: string; expr: string; annotations?: Record<string, string> }[] }[];
}
interface RuleTests {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

const alerts = (parse(readRepoFile(RULES)) as RuleFile).groups.flatMap((g) => g.rules).filter((r) => r.alert);

describe('alerting rules (deploy/prometheus/alerts.yml)', () => {
  it('pass promtool check rules', async () => {
    const { stdout } = await run(PROMTOOL, ['check', 'rules', RULES], { cwd: REPO_ROOT });
    expect(stdout).toContain(`SUCCESS: ${alerts.length} rules found`);
  });

  it('pass their unit tests (promtool test rules)', async () => {
    const result = await run(PROMTOOL, ['test', 'rules', RULE_TESTS], { cwd: REPO_ROOT }).catch(
      (err: { stdout?: string; stderr?: string }) => err,
    );
    expect(`${result.stdout ?? ''}${result.stderr ?? ''}`).toMatch(/SUCCESS/);
    expect(result).not.toBeInstanceOf(Error);
  });

  it('each have a case where they fire and one where they stay silent', () => {
    const cases = (parse(readRepoFile(RULE_TESTS)) as RuleTests).tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const { alert } of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} fires in a test`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} stays silent in a test`,
      ).toBe(true);
    }
  });

  it('each have a summary and a runbook line, and a row in the metrics reference', () => {
    const documented = tables(section(readRepoFile('docs/reference/metrics.md'), 'Alerts'))
      .filter((t) => t.header[0] === 'alert')
      .flatMap((t) => t.rows.map((row) => row[0]!.replace(/`/g, '')));
    for (const rule of alerts) {
      expect(rule.annotations?.summary, `${rule.alert} has a summary`).toBeTruthy();
      expect(rule.annotations?.runbook, `${rule.alert} has a runbook line`).toBeTruthy();
    }
    expect(documented.sort()).toEqual(alerts.map((r) => r.alert!).sort());
  });
});
