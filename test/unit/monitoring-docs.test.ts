// The "Monitoring stack" scrape configurations of docs/metrics.md: the local one is the configuration
// test/integration/monitoring.test.ts gives its Prometheus (so that test scrapes the way the
// page says) and promtool accepts it; the Kubernetes one keeps the pods the scrape annotations
// mark. (Debian's Prometheus is built without Kubernetes discovery, so promtool cannot check that one.)
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { localScrapeConfig, promtool } from '../helpers/prometheus.js';

/** The YAML blocks of docs/metrics.md's "Monitoring stack", in order, unindented. */
async function monitoringBlocks(): Promise<string[]> {
  const page = await readFile(join(PACKAGE_ROOT, 'docs', 'metrics.md'), 'utf8');
  const start = page.indexOf('## Monitoring stack');
  expect(start).toBeGreaterThan(0);
  const end = page.indexOf('\n## ', start + 1);
  const section = page.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^( *)```yaml\n([\s\S]*?)^ *```/gm)].map((m) => m[2]!.replace(new RegExp(`^${m[1]}`, 'gm'), ''));
}

describe("docs/metrics.md's monitoring stack", () => {
  it('local mode: the scaler on TIDEPOOL_METRICS_PORT and its runners on the next ports, as the monitoring test scrapes them; promtool accepts it', async () => {
    const [, local] = await monitoringBlocks();
    const config = parse(local!) as { scrape_configs: unknown[] };
    // The page's example: TIDEPOOL_METRICS_PORT=9464 and maxRunners 3.
    expect(config.scrape_configs).toEqual([localScrapeConfig(9464, 3)]);
    const dir = await mkdtemp(join(tmpdir(), 'tidepool-prometheus-config-'));
    try {
      await writeFile(join(dir, 'prometheus.yml'), local!);
      const checked = promtool(['check', 'config', 'prometheus.yml'], dir);
      expect(checked.status, checked.output).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('Kubernetes: pod discovery keeping the annotated pods, at the annotated port and path', async () => {
    const [kubernetes] = await monitoringBlocks();
    const [job] = (parse(kubernetes!) as { scrape_configs: Array<{ kubernetes_sd_configs: unknown; relabel_configs: Array<Record<string, unknown>> }> }).scrape_configs;
    expect(job!.kubernetes_sd_configs).toEqual([{ role: 'pod', namespaces: { names: ['tidepool'] } }]);
    const relabel = job!.relabel_configs;
    expect(relabel).toContainEqual({ source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'], regex: 'true', action: 'keep' });
    const address = relabel.find((r) => r.target_label === '__address__')!;
    // What Prometheus does with it: source labels joined by ";", the regex anchored.
    const rewrite = (addr: string) => `${addr};9464`.replace(new RegExp(`^(?:${address.regex as string})$`), (address.replacement as string).replace(/\$(\d)/g, '$$$1'));
    expect(rewrite('10.1.2.3')).toBe('10.1.2.3:9464');
    expect(rewrite('10.1.2.3:8080')).toBe('10.1.2.3:9464');
  });
});
