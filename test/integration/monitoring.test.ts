// The operators' monitoring stack, for real: Debian's Prometheus scrapes a scaler (`tidepool
// scaler`, local mode) and the runners it launches, on the targets docs/metrics.md's "Monitoring
// stack" lists (the scaler on TIDEPOOL_METRICS_PORT, its runners on the next maxRunners ports),
// with the shipped alerting rules loaded. Syncs run that succeed, retry and dead-letter, a
// schedule publishes every two seconds and a webhook receiver refuses once then accepts, so that
// every panel of k8s/grafana/tidepool.json has something to show; then every query of the
// dashboard is evaluated through Prometheus's HTTP API, and every rule must evaluate cleanly.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { configEnv, type Config } from '../../shared/config.js';
import { newSyncRequest } from '../../shared/messages.js';
import { CLI_PATH, PACKAGE_ROOT } from '../../shared/paths.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { builtinVariables, dashboardQueries, labelValuesQuery, multiValueRegex, substituteVariables, type Dashboard } from '../helpers/grafana.js';
import { freePortRange } from '../helpers/ports.js';
import { RULES_DIR, localScrapeConfig, startPrometheus, type PrometheusServer } from '../helpers/prometheus.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

const SCRAPE_SECONDS = 1;
// One runner: the second round of syncs must reach the runner whose series the first made.
const MAX_RUNNERS = 1;

interface Series {
  metric: Record<string, string>;
  value?: [number, string];
  values?: Array<[number, string]>;
}

describe('Prometheus scraping a scaler and its runners, the Grafana dashboard and the alerting rules', () => {
  let config: Config;
  let services: TestServices;
  let prometheus: PrometheusServer | undefined;
  let scaler: ChildProcess | undefined;
  let dir: string;
  let metricsPort: number;
  const startedAt = Date.now();
  const syncIds: Record<string, string> = {};

  // A webhook receiver that refuses the first delivery and accepts the rest: deliveries and
  // failures both have series for the dashboard's webhook panel.
  let receiver: Server | undefined;
  let received = 0;
  const query = async (expr: string) => (await prometheus!.api<{ result: Series[] }>('query', { query: expr })).result;
  const hasSeries = async (expr: string) => (await query(expr)).length > 0;

  async function publish(key: string, connectionId: string): Promise<void> {
    const topology = topologyFor(config.prefix, config);
    const connection = await connectBroker({ url: config.amqpUrl, logger: services.logger, timeoutMs: 10_000 });
    try {
      const request = newSyncRequest(connectionId);
      syncIds[key] = request.syncId;
      await publishSync(await openConfirmChannel(connection, topology, services.logger), topology, request);
    } finally {
      await connection.close();
    }
  }

  async function syncsEnded(): Promise<void> {
    const ended = (r: RunRecord | undefined) => r?.status === 'succeeded' || r?.status === 'dead_lettered';
    await waitFor('the syncs published so far to end', async () => (await Promise.all(Object.values(syncIds).map((id) => services.store.runs.get(id)))).every(ended), 90_000, 250);
  }

  beforeAll(async () => {
    // Runners stay up (idleTimeout) until the queries ran: a runner's counters leave with it.
    config = testConfig('monitoring', {
      idleTimeout: '10m',
      maxRunners: MAX_RUNNERS,
      pollInterval: '500ms',
      heartbeatInterval: '500ms',
      heartbeatTtl: '5s',
      maxAttempts: 2,
      retryBaseDelay: '500ms',
      retryMaxDelay: '1s',
    });
    services = openTestServices(config);
    dir = await mkdtemp(join(tmpdir(), `${config.prefix}-`));
    await services.store.connections.apply({
      id: 'faker-users',
      source: { connector: 'source-faker', config: { count: 20, purchasesPerUser: 2 } },
      destination: { connector: 'destination-jsonl', config: { destination_path: join(dir, 'out') } },
    });
    // Fails transiently every time: attempt 1 is retried, attempt 2 (maxAttempts) dead-lettered.
    await services.store.connections.apply({
      id: 'always-down',
      source: { connector: 'source-e2e-test', config: { records: 2, then: 'transient', counterFile: join(dir, 'always-down.count'), failTimes: 1000, message: 'upstream unavailable' } },
      destination: { connector: 'destination-e2e-test', config: { mode: 'echo' } },
    });

    // A schedule every two seconds (skip: at most one of its syncs at a time), for the schedule panels.
    await services.store.connections.apply({
      id: 'every-two-seconds',
      source: { connector: 'source-faker', config: { count: 5 } },
      destination: { connector: 'destination-jsonl', config: { destination_path: join(dir, 'scheduled') } },
      schedule: { cron: '*/2 * * * * *', timezone: 'UTC', overlap: 'skip', catchUp: 'none' },
    });
    receiver = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        received++;
        res.writeHead(received === 1 ? 500 : 204).end();
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;

    metricsPort = await freePortRange(1 + MAX_RUNNERS);
    prometheus = await startPrometheus({
      scrapeConfigs: [localScrapeConfig(metricsPort, MAX_RUNNERS)],
      ruleFiles: [join(PACKAGE_ROOT, RULES_DIR, 'tidepool-rules.yaml')],
      intervalSeconds: SCRAPE_SECONDS,
    });
    scaler = spawn(process.execPath, [CLI_PATH, 'scaler'], {
      env: {
        PATH: process.env.PATH ?? '',
        ...configEnv(config),
        TIDEPOOL_METRICS_PORT: String(metricsPort),
        TIDEPOOL_NOTIFICATIONS: JSON.stringify([{ url: hookUrl, secret: 'monitoring-test-secret', events: ['sync.succeeded', 'sync.failed', 'sync.dead_lettered'] }]),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    scaler.stderr?.resume();

    // Two rounds on the one runner: a runner's labelled series appear at their first count, so
    // the histogram panels (rates of buckets) have something to show only for counts that came
    // after a scrape. The first round creates the series, the second moves them.
    await publish('first', 'faker-users');
    await syncsEnded();
    await waitFor('Prometheus to have scraped the runner after its first sync', () => hasSeries('tidepool_syncs_total{outcome="succeeded"}'), 30_000, 250);
    await publish('second', 'faker-users');
    await publish('down', 'always-down');
    await syncsEnded();
    // Prometheus has the runner's last counts (and the scaler its dead letter) once a scrape after them landed.
    await waitFor(
      'Prometheus to have scraped the syncs',
      async () =>
        (await hasSeries('tidepool_syncs_total{outcome="dead_lettered"}')) &&
        (await hasSeries('sum(tidepool_syncs_total{outcome="succeeded"}) >= 2')) &&
        (await hasSeries('tidepool_sync_retries_total')) &&
        (await hasSeries('max(tidepool_dead_letter_messages) >= 1')) &&
        (await hasSeries('tidepool_schedule_slots_total{outcome="published"} > 0')) &&
        (await hasSeries('tidepool_notifications_failed_total')) &&
        (await hasSeries('tidepool_notifications_delivered_total')) &&
        // A few scrapes more: rate() over $__rate_interval (4 scrapes) needs two samples of a series.
        (await hasSeries('min(count_over_time(tidepool_syncs_total[1m])) >= 6')),
      30_000,
      250,
    );
  }, 180_000);

  afterAll(async () => {
    scaler?.kill('SIGKILL');
    // Local runners are detached from the scaler (they outlive its restarts): stop them by their heartbeats' pids.
    for (const runner of (await services?.store.runners.alive().catch(() => [])) ?? []) {
      try {
        process.kill(runner.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await prometheus?.stop();
    receiver?.close();
    await services?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('runs the syncs: two succeed; the failing one is retried once, then dead-lettered', async () => {
    expect((await services.store.runs.get(syncIds.first!))?.status).toBe('succeeded');
    expect((await services.store.runs.get(syncIds.second!))?.status).toBe('succeeded');
    expect(await services.store.runs.get(syncIds.down!)).toMatchObject({ status: 'dead_lettered', attempt: 2 });
  });

  it("scrapes the scaler and the runners it launched on the documented targets", async () => {
    const up = await query('up{job="tidepool"} == 1');
    const instances = (component: string) => up.filter((s) => s.metric.component === component).map((s) => s.metric.instance);
    expect(instances('scaler')).toEqual([`127.0.0.1:${metricsPort}`]);
    const runners = instances('runner');
    expect(runners.length).toBeGreaterThanOrEqual(1);
    for (const instance of runners) expect(Number(instance!.split(':')[1])).toBeGreaterThan(metricsPort);
    // Runner metrics come from the runner targets, the queue's from the scaler's.
    expect(new Set((await query('tidepool_syncs_total')).map((s) => s.metric.component))).toEqual(new Set(['runner']));
    expect(new Set((await query('tidepool_queue_ready_messages')).map((s) => s.metric.component))).toEqual(new Set(['scaler']));
  });

  it('answers every query of k8s/grafana/tidepool.json with series carrying the labels its legend shows', async () => {
    const dashboard = JSON.parse(await readFile(join(PACKAGE_ROOT, 'k8s', 'grafana', 'tidepool.json'), 'utf8')) as Dashboard;
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(20);
    const rangeSeconds = (Date.now() - startedAt) / 1000 + 10;
    const values = { ...builtinVariables(rangeSeconds, SCRAPE_SECONDS), ...(await templateValues(dashboard)) };
    const problems: string[] = [];
    for (const q of queries) {
      const expr = substituteVariables(q.expr, values);
      const series = await query(expr);
      if (series.length === 0) {
        problems.push(`${q.name}: no series for ${expr}`);
        continue;
      }
      for (const label of q.legendLabels) {
        const missing = series.filter((s) => !s.metric[label]);
        if (missing.length > 0) problems.push(`${q.name}: series without "${label}" (its legend shows it) for ${expr}: ${JSON.stringify(missing[0]!.metric)}`);
      }
      // What the panel draws over the test's span (Grafana asks for a range): some point is a number.
      const range = await prometheus!.api<{ result: Series[] }>('query_range', {
        query: expr,
        start: String(startedAt / 1000),
        end: String(Date.now() / 1000),
        step: values.__interval!,
      });
      if (!range.result.some((s) => (s.values ?? []).some(([, v]) => Number.isFinite(Number(v))))) problems.push(`${q.name}: no finite value over the test for ${expr}`);
    }
    expect(problems).toEqual([]);

    /** Each template variable's value: a query variable gets every choice its label_values() query offers. */
    async function templateValues(d: Dashboard): Promise<Record<string, string>> {
      const out: Record<string, string> = {};
      for (const variable of d.templating?.list ?? []) {
        if (variable.type === 'datasource') continue;
        if (variable.type !== 'query') throw new Error(`template variable ${variable.name}: type ${variable.type} is not handled by this test`);
        const { metric, label } = labelValuesQuery(variable.definition ?? '');
        const choices = await prometheus!.api<string[]>(`label/${label}/values`, { 'match[]': metric });
        expect(choices, `${variable.name}'s choices`).toEqual(expect.arrayContaining(['faker-users', 'always-down']));
        out[variable.name] = variable.multi ? multiValueRegex(choices) : choices[0]!;
      }
      return out;
    }
  });

  it('loads the alerting rules, every one evaluating with health "ok"', async () => {
    const file = await readFile(join(PACKAGE_ROOT, RULES_DIR, 'tidepool-rules.yaml'), 'utf8');
    const declared = [...file.matchAll(/^\s*- alert: (\S+)/gm)].map((m) => m[1]);
    type Rule = { name: string; health: string; lastError?: string; lastEvaluation: string };
    const rules = await waitFor(
      'every rule to have been evaluated',
      async () => {
        const { groups } = await prometheus!.api<{ groups: Array<{ rules: Rule[] }> }>('rules');
        const all = groups.flatMap((g) => g.rules);
        return all.length === declared.length && all.every((r) => !r.lastEvaluation.startsWith('0001-')) ? all : undefined;
      },
      10_000,
      250,
    );
    expect(rules.map((r) => r.name).sort()).toEqual([...declared].sort());
    expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual([]);
  });

  it('fires the dead-letter alerts on the real series, naming the connection, and fires no other', async () => {
    type Alert = { labels: Record<string, string>; state: string };
    const alerts = await waitFor(
      'the dead-letter alerts',
      async () => {
        const { alerts: all } = await prometheus!.api<{ alerts: Alert[] }>('alerts');
        return all.some((a) => a.labels.alertname === 'TidepoolConnectionDeadLettering') && all.some((a) => a.labels.alertname === 'TidepoolDeadLettersRising') ? all : undefined;
      },
      10_000,
      250,
    );
    // Pending ones are left out: a rule with a `for:` may be pending on a minute of fresh data.
    const firing = alerts.filter((a) => a.state === 'firing').map((a) => `${a.labels.alertname} ${a.labels.connection ?? ''}`.trim());
    expect(firing.sort()).toEqual(['TidepoolConnectionDeadLettering always-down', 'TidepoolDeadLettersRising']);
  });
});
