// The metrics reference, from the metrics themselves: the scaler's, its webhook deliverer's and
// the runner's classes register into registries of their own here, as `tidepool scaler` and
// `tidepool runner` do, without starting anything; each metric's name, type, labels and help are
// read back from prom-client. The processes' own process_* and nodejs_* are left out (prom-client's).
import type { Registry } from 'prom-client';
import { createRegistry } from '../../shared/metrics.js';
import { RunnerMetrics } from '../../runner/metrics.js';
import { ScalerMetrics } from '../../scaler/metrics.js';
import { NotificationMetrics } from '../../scaler/notifications/metrics.js';
import { plainCell, tablePage } from './markdown.js';

/** Who registers what: the process a metric is scraped from. */
const SOURCES: Array<{ process: string; register: (registry: Registry) => unknown }> = [
  { process: 'scaler', register: (registry) => new ScalerMetrics(registry) },
  { process: 'scaler (the leader delivers)', register: (registry) => new NotificationMetrics(registry) },
  { process: 'runner', register: (registry) => new RunnerMetrics(registry) },
];

interface MetricDoc {
  name: string;
  type: string;
  labels: string[];
  help: string;
  processes: string[];
}

/** Every tidepool metric, in registration order, with the processes that export it. */
export function registeredMetrics(): MetricDoc[] {
  const byName = new Map<string, MetricDoc>();
  for (const source of SOURCES) {
    const registry = createRegistry();
    source.register(registry);
    for (const metric of registry.getMetricsAsArray()) {
      const m = metric as unknown as { name: string; help: string; type: string; labelNames?: string[] };
      const known = byName.get(m.name);
      if (known) known.processes.push(source.process);
      else byName.set(m.name, { name: m.name, type: m.type, labels: [...(m.labelNames ?? [])], help: m.help, processes: [source.process] });
    }
  }
  return [...byName.values()];
}

/** docs/reference/metrics.md. */
export function metricsPage(): string {
  const rows = registeredMetrics().map((m) => [`\`${m.name}\``, m.type, m.labels.map((l) => `\`${l}\``).join(', '), m.processes.join(', '), plainCell(m.help)]);
  return tablePage(
    'Metrics reference',
    'the metrics the scaler and the runner register (`scaler/metrics.ts`, `scaler/notifications/metrics.ts`, `runner/metrics.ts`, `shared/metrics.ts`)',
    [
      'Where they are served, how to scrape them and what to read them with is in',
      '[Metrics and monitoring](../metrics.md). Both processes also export prom-client\'s `process_*` and',
      '`nodejs_*` metrics.',
    ],
    ['metric', 'type', 'labels', 'exported by', 'help'],
    rows,
  );
}
