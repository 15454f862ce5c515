// How test/integration/monitoring.test.ts reads k8s/grafana/tidepool.json: every query, rows'
// nested panels included (a collapsed row keeps its panels inside it), and Grafana's variables
// replaced, an unknown one refused rather than sent to Prometheus as it is.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { builtinVariables, dashboardQueries, labelValuesQuery, legendLabels, multiValueRegex, substituteVariables, type Dashboard } from '../helpers/grafana.js';

describe('reading a Grafana dashboard', () => {
  it('finds the queries of top-level panels and of panels inside rows, collapsed ones too', () => {
    const dashboard: Dashboard = {
      panels: [
        { type: 'row', title: 'open row', panels: [] },
        { title: 'Ready', targets: [{ refId: 'A', expr: 'max(a)', legendFormat: 'ready' }] },
        {
          type: 'row',
          title: 'collapsed',
          panels: [{ title: 'Inside', targets: [{ refId: 'A', expr: 'sum by (connection) (b)', legendFormat: '{{connection}} / {{ stream }}' }, { refId: 'B', expr: 'c', hide: true }] }],
        },
      ],
    };
    expect(dashboardQueries(dashboard)).toEqual([
      { name: 'Ready / A', expr: 'max(a)', legendLabels: [] },
      { name: 'Inside / A', expr: 'sum by (connection) (b)', legendLabels: ['connection', 'stream'] },
    ]);
    expect(() => dashboardQueries({ panels: [{ title: 'Broken', targets: [{ refId: 'A' }] }] })).toThrow(/Broken \/ A: a target without a PromQL expr/);
  });

  it('finds every query of k8s/grafana/tidepool.json', () => {
    const dashboard = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'k8s', 'grafana', 'tidepool.json'), 'utf8')) as Dashboard;
    const exprs = JSON.stringify(dashboard).match(/"expr":/g) ?? [];
    expect(dashboardQueries(dashboard)).toHaveLength(exprs.length);
  });

  it('replaces variables in all three syntaxes and refuses one it has no value for', () => {
    const values: Record<string, string> = { ...builtinVariables(600, 15), connection: multiValueRegex(['a.b', 'c']) };
    expect(values.__interval).toBe('15s');
    expect(values.__rate_interval).toBe('60s');
    expect(substituteVariables('rate(x{connection=~"$connection"}[$__rate_interval]) + ${__range_s} + [[__interval]]', values)).toBe(
      'rate(x{connection=~"(a\\.b|c)"}[60s]) + 600 + 15s',
    );
    expect(substituteVariables('increase(x[${__range}])', values)).toBe('increase(x[600s])');
    expect(() => substituteVariables('x{job="$job"}', values)).toThrow(/no value for the Grafana variable \$job/);
  });

  it("computes $__rate_interval as Grafana does: at least four scrapes, else the panel's interval plus a scrape", () => {
    expect(builtinVariables(30, 1)).toMatchObject({ __interval: '1s', __rate_interval: '4s', __range: '30s', __range_ms: '30000' });
    expect(builtinVariables(120, 1, 10)).toMatchObject({ __interval: '12s', __rate_interval: '13s' });
  });

  it('reads label_values() variable queries and legend formats', () => {
    expect(labelValuesQuery('label_values(tidepool_syncs_total, connection)')).toEqual({ metric: 'tidepool_syncs_total', label: 'connection' });
    expect(() => labelValuesQuery('query_result(up)')).toThrow(/does not know/);
    expect(legendLabels('{{outcome}}')).toEqual(['outcome']);
    expect(legendLabels('p95')).toEqual([]);
    expect(multiValueRegex(['only'])).toBe('only');
  });
});
