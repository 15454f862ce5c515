// Reading a Grafana dashboard the way Grafana runs it against Prometheus: every panel's queries
// (rows' nested panels included, so a panel added later is covered without a test change), the
// labels each legend shows, and the template variables substituted with concrete values.

export interface DashboardQuery {
  /** "<panel title> / <refId>", for messages. */
  name: string;
  expr: string;
  /** Labels the legend format names ({{label}}): every series the query returns must carry them. */
  legendLabels: string[];
}

interface Panel {
  title?: string;
  type?: string;
  targets?: Array<{ refId?: string; expr?: string; legendFormat?: string; hide?: boolean }>;
  panels?: Panel[];
}

export interface Dashboard {
  panels?: Panel[];
  templating?: { list?: Array<{ name: string; type: string; multi?: boolean; includeAll?: boolean; definition?: string; query?: unknown }> };
}

/** The labels a legend format shows: `{{connection}} / {{stream}}` → connection, stream. */
export function legendLabels(legendFormat: string | undefined): string[] {
  return [...(legendFormat ?? '').matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)].map((m) => m[1]!);
}

/** Every query of every panel, rows' nested panels too; a target without `expr` is an error (it would go untested). */
export function dashboardQueries(dashboard: Dashboard): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  const walk = (panels: Panel[] | undefined) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        const name = `${panel.title ?? panel.type ?? 'panel'} / ${target.refId ?? '?'}`;
        if (target.hide) continue;
        if (typeof target.expr !== 'string' || target.expr.trim() === '') throw new Error(`${name}: a target without a PromQL expr`);
        queries.push({ name, expr: target.expr, legendLabels: legendLabels(target.legendFormat) });
      }
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  return queries;
}

/** `label_values(metric, label)` of a query variable: what Grafana asks Prometheus for its choices. */
export function labelValuesQuery(definition: string): { metric: string; label: string } {
  const m = /^label_values\(\s*([^,]+?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$/.exec(definition.trim());
  if (!m) throw new Error(`a template variable query this test does not know how to run: ${definition}`);
  return { metric: m[1]!, label: m[2]! };
}

/** Values of several chosen options in a regex matcher, as Grafana formats them for Prometheus: (a|b), regex-escaped. */
export function multiValueRegex(values: string[]): string {
  const escaped = values.map((v) => v.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'));
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
}

/**
 * `expr` with Grafana's variables ($name, ${name}, ${name:format}, [[name]]) replaced by `values`;
 * a variable with no value is an error, so a new one is not sent to Prometheus unreplaced.
 */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)/g, (whole, braced?: string, bracketed?: string, bare?: string) => {
    const name = (braced ?? bracketed ?? bare)!;
    const value = values[name];
    if (value === undefined) throw new Error(`no value for the Grafana variable ${whole} in: ${expr}`);
    return value;
  });
}

/**
 * Grafana's built-in interval variables for a dashboard showing `rangeSeconds` up to now, with a
 * data source scraped every `scrapeSeconds` (its "min interval"): $__interval is the range over
 * the panel's points, never below the scrape interval; $__rate_interval is
 * max($__interval + scrape interval, 4 × scrape interval), as Grafana documents it. Grafana also
 * rounds a longer $__interval to a round value (21.6 s to 20 s); a test's range of a minute or two
 * over 1000 points stays below the scrape interval, where no rounding applies.
 */
export function builtinVariables(rangeSeconds: number, scrapeSeconds: number, maxDataPoints = 1000): Record<string, string> {
  const interval = Math.max(scrapeSeconds, Math.ceil(rangeSeconds / maxDataPoints));
  const rateInterval = Math.max(interval + scrapeSeconds, 4 * scrapeSeconds);
  const range = Math.ceil(rangeSeconds);
  return {
    __interval: `${interval}s`,
    __interval_ms: String(interval * 1000),
    __rate_interval: `${rateInterval}s`,
    __range: `${range}s`,
    __range_s: String(range),
    __range_ms: String(range * 1000),
  };
}
