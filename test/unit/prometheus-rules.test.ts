// The alerting rules shipped in k8s/prometheus/: valid for Prometheus (`promtool check rules`),
// right on synthetic series (`promtool test rules`, the tests in tidepool-rules.test.yaml), and
// built only on metrics tidepool defines. promtool comes from Debian's prometheus package, which
// scripts/setup installs: without it these tests fail (CI runs setup first), they never skip.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createRegistry } from '../../shared/metrics.js';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { RunnerMetrics } from '../../runner/metrics.js';
import { ScalerMetrics } from '../../scaler/metrics.js';
import { NotificationMetrics } from '../../scaler/notifications/metrics.js';
import { RULES_DIR, promtool } from '../helpers/prometheus.js';

const dir = join(PACKAGE_ROOT, RULES_DIR);

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

interface AlertTest {
  alertname: string;
  exp_alerts?: unknown[];
}

async function rules(): Promise<Rule[]> {
  const file = parse(await readFile(join(dir, 'tidepool-rules.yaml'), 'utf8')) as { groups: Array<{ rules: Rule[] }> };
  return file.groups.flatMap((g) => g.rules);
}

async function ruleTests(): Promise<Array<{ name: string; alert_rule_test: AlertTest[] }>> {
  return (parse(await readFile(join(dir, 'tidepool-rules.test.yaml'), 'utf8')) as { tests: Array<{ name: string; alert_rule_test: AlertTest[] }> }).tests;
}

describe('the alerting rules (k8s/prometheus/tidepool-rules.yaml)', () => {
  const scratch: string[] = [];
  afterAll(async () => {
    for (const d of scratch) await rm(d, { recursive: true, force: true });
  });

  it('pass promtool check rules', () => {
    const { status, output } = promtool(['check', 'rules', 'tidepool-rules.yaml'], dir);
    expect(status, output).toBe(0);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('pass their unit tests (promtool test rules)', () => {
    const { status, output } = promtool(['test', 'rules', 'tidepool-rules.test.yaml'], dir);
    expect(status, output).toBe(0);
    expect(output).toContain('SUCCESS');
  });

  it('a rule promtool finds wrong, or an alert that does not fire as its test expects, fails the check', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tidepool-rules-'));
    scratch.push(d);
    await writeFile(join(d, 'bad.yaml'), 'groups:\n  - name: bad\n    rules:\n      - alert: Broken\n        expr: sum(rate(tidepool_syncs_total[5m])\n');
    expect(promtool(['check', 'rules', 'bad.yaml'], d).status).not.toBe(0);
    await writeFile(join(d, 'good.yaml'), 'groups:\n  - name: g\n    rules:\n      - alert: Never\n        expr: vector(1) < 0\n');
    await writeFile(
      join(d, 'good.test.yaml'),
      'rule_files: [good.yaml]\ntests:\n  - interval: 1m\n    input_series: []\n    alert_rule_test:\n      - { eval_time: 1m, alertname: Never, exp_alerts: [{ exp_labels: {} }] }\n',
    );
    const failed = promtool(['test', 'rules', 'good.test.yaml'], d);
    expect(failed.status, failed.output).not.toBe(0);
  });

  it('use only metrics that tidepool defines', async () => {
    const defined = new Set<string>();
    const scaler = new ScalerMetrics(createRegistry());
    new NotificationMetrics(scaler.registry);
    for (const registry of [scaler.registry, new RunnerMetrics(createRegistry()).registry]) {
      for (const metric of await registry.getMetricsAsJSON()) defined.add(metric.name);
    }
    const used = new Set((await rules()).flatMap((r) => [...r.expr.matchAll(/\btidepool_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))));
    expect(used.size).toBeGreaterThanOrEqual(8);
    expect([...used].filter((name) => !defined.has(name))).toEqual([]);
  });

  it('are alerts with a severity, a summary, a description and a for: duration', async () => {
    for (const rule of await rules()) {
      expect(rule.alert, rule.expr).toMatch(/^Tidepool[A-Z]\w+$/);
      expect(rule.labels?.severity, rule.alert).toMatch(/^(warning|critical)$/);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.description, rule.alert).toBeTruthy();
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
    }
  });

  it('each alert has a test where it fires, and stays silent in the healthy installation', async () => {
    const tests = await ruleTests();
    const healthy = tests.find((t) => /healthy/.test(t.name));
    expect(healthy, 'a test named "... healthy ..."').toBeDefined();
    const fires = new Set(tests.flatMap((t) => t.alert_rule_test.filter((a) => (a.exp_alerts ?? []).length > 0).map((a) => a.alertname)));
    const silentWhenHealthy = new Set(healthy!.alert_rule_test.filter((a) => (a.exp_alerts ?? []).length === 0).map((a) => a.alertname));
    for (const { alert } of await rules()) {
      expect(fires, `${alert} fires in some test`).toContain(alert);
      expect(silentWhenHealthy, `${alert} is silent in "${healthy!.name}"`).toContain(alert);
    }
  });
});
