// What the metrics say, from the inputs they are derived from: run records (runner), tick
// snapshots and launches (scaler); and the dashboard settings a scaler refuses to start with.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { createRegistry } from '../../shared/metrics.js';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import type { LaunchedRunner, RunnerLauncher } from '../../shared/ports/runner-launcher.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { RunnerMetrics } from '../../runner/metrics.js';
import { ScalerMetrics } from '../../scaler/metrics.js';
import { NotificationMetrics } from '../../scaler/notifications/metrics.js';
import type { ScalerSnapshot } from '../../scaler/loop.js';

function run(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    syncId: 's1',
    connectionId: 'orders',
    status: 'succeeded',
    attempt: 1,
    runnerId: 'r1',
    fullRefresh: false,
    requestedAt: '2026-01-01T00:00:00.000Z',
    startedAt: '2026-01-01T00:00:01.000Z',
    finishedAt: '2026-01-01T00:00:04.000Z',
    durationMs: 3000,
    firstRecordMs: 1500,
    records: 30,
    bytes: 3000,
    streams: { users: { records: 10, bytes: 1000 }, purchases: { records: 20, bytes: 2000 } },
    stateCommits: 1,
    ...overrides,
  };
}

async function text(metrics: { registry: { metrics(): Promise<string> } }): Promise<string> {
  return metrics.registry.metrics();
}

describe('runner metrics from run records', () => {
  it('counts a finished sync by outcome, its duration, records and bytes by stream, and publish → first record', async () => {
    const m = new RunnerMetrics(createRegistry());
    m.recordRun(run());
    const out = await text(m);
    expect(out).toContain('tidepool_syncs_total{connection="orders",outcome="succeeded"} 1');
    expect(out).toContain('tidepool_sync_duration_seconds_sum{outcome="succeeded"} 3');
    expect(out).toContain('tidepool_sync_duration_seconds_bucket{le="5",outcome="succeeded"} 1');
    expect(out).toContain('tidepool_sync_records_total{connection="orders",stream="users"} 10');
    expect(out).toContain('tidepool_sync_records_total{connection="orders",stream="purchases"} 20');
    expect(out).toContain('tidepool_sync_bytes_total{connection="orders",stream="purchases"} 2000');
    expect(out).toContain('tidepool_sync_publish_to_first_record_seconds_sum 1.5');
    expect(out).not.toContain('tidepool_sync_retries_total{');
  });

  it('observes each phase a run reached, and none a record holds as garbage', async () => {
    const m = new RunnerMetrics(createRegistry());
    m.recordRun(run({ phases: { queued: 250, lockWait: 5, preparing: 1000, starting: 500, reading: 2000, committing: 100, finishing: 50 } }));
    m.recordRun(run({ syncId: 's2', phases: { queued: -5, reading: Number.NaN, committing: 'x' as unknown as number } }));
    const out = await text(m);
    expect(out).toContain('tidepool_sync_phase_seconds_sum{phase="queued"} 0.25');
    expect(out).toContain('tidepool_sync_phase_seconds_count{phase="reading"} 1');
    expect(out).toContain('tidepool_sync_phase_seconds_count{phase="finishing"} 1');
    expect(out).toContain('tidepool_sync_phase_seconds_count{phase="committing"} 1');
  });

  it('has its series from the start (fixed labels) or the sync start (its connection), at zero: rate() then sees the first count', async () => {
    const m = new RunnerMetrics(createRegistry());
    let out = await text(m);
    expect(out).toContain('tidepool_sync_duration_seconds_count{outcome="succeeded"} 0');
    expect(out).toContain('tidepool_sync_phase_seconds_count{phase="reading"} 0');
    expect(out).not.toContain('tidepool_syncs_total{');
    m.syncStarted('orders');
    out = await text(m);
    expect(out).toContain('tidepool_syncs_total{connection="orders",outcome="succeeded"} 0');
    expect(out).toContain('tidepool_syncs_total{connection="orders",outcome="dead_lettered"} 0');
    expect(out).toContain('tidepool_sync_retries_total{connection="orders"} 0');
  });

  it('counts retries and dead letters, ignores unfinished records, and counts each execution once', async () => {
    const m = new RunnerMetrics(createRegistry());
    m.recordRun(run({ status: 'running' }));
    m.recordRun(run({ status: 'failed' }));
    m.recordRun(run({ status: 'retrying', streams: {} }));
    m.recordRun(run({ status: 'retrying', streams: {} }));
    m.recordRun(run({ status: 'dead_lettered', attempt: 2, startedAt: '2026-01-01T00:01:00.000Z', firstRecordMs: 60_000 }));
    const out = await text(m);
    expect(out).toContain('tidepool_syncs_total{connection="orders",outcome="retrying"} 1');
    expect(out).toContain('tidepool_syncs_total{connection="orders",outcome="dead_lettered"} 1');
    expect(out).not.toContain('outcome="running"');
    expect(out).not.toContain('outcome="failed"');
    expect(out).toContain('tidepool_sync_retries_total{connection="orders"} 1');
    // Only first attempts measure publish latency: a retry's includes its backoff.
    expect(out).toContain('tidepool_sync_publish_to_first_record_seconds_count 1');
  });

  it('labels an execution whose connection was not read `unknown`, however many ids there are', async () => {
    const m = new RunnerMetrics(createRegistry());
    for (let i = 0; i < 50; i++) m.recordRun(run({ syncId: `s${i}`, connectionId: `made-up-${i}`, status: 'dead_lettered', streams: {} }), { connectionKnown: false });
    const out = await text(m);
    expect(out).toContain('tidepool_syncs_total{connection="unknown",outcome="dead_lettered"} 50');
    expect(out).not.toContain('made-up');
  });
});

describe('scaler metrics from ticks and launches', () => {
  const snapshot = (over: Partial<ScalerSnapshot>): ScalerSnapshot => ({ at: 0, leader: true, ready: 0, deadLetters: 0, inFlight: 0, running: 0, starting: 0, launched: 0, reason: '', ...over });

  it('sets queue and runner gauges from a tick, and its duration from when it began to when it ended', async () => {
    const m = new ScalerMetrics(createRegistry());
    m.observe(snapshot({ at: 10_000, ready: 7, inFlight: 3, deadLetters: 2, running: 2, starting: 1, leader: false }), 10_040);
    const out = await text(m);
    expect(out).toContain('tidepool_queue_ready_messages 7');
    expect(out).toContain('tidepool_queue_in_flight_messages 3');
    expect(out).toContain('tidepool_dead_letter_messages 2');
    expect(out).toContain('tidepool_runners{state="running"} 2');
    expect(out).toContain('tidepool_runners{state="starting"} 1');
    expect(out).toContain('tidepool_scaler_leader 0');
    expect(out).toContain('tidepool_scaler_tick_duration_seconds_sum 0.04');
    expect(out).toContain('tidepool_scaler_last_tick_timestamp_seconds 10.04');
    expect(out).toContain('tidepool_scaler_tick_failures_total 0');
    m.tickFailed();
    m.tickFailed();
    expect(await text(m)).toContain('tidepool_scaler_tick_failures_total 2');
  });

  it('backlog age: how long the queue has held ready messages without being empty', async () => {
    const m = new ScalerMetrics(createRegistry());
    m.observe(snapshot({ at: 1_000, ready: 0 }));
    m.observe(snapshot({ at: 2_000, ready: 5 }));
    m.observe(snapshot({ at: 9_000, ready: 1 }));
    expect(await text(m)).toContain('tidepool_queue_backlog_age_seconds 7');
    m.observe(snapshot({ at: 10_000, ready: 0 }));
    expect(await text(m)).toContain('tidepool_queue_backlog_age_seconds 0');
    m.observe(snapshot({ at: 11_000, ready: 3 }));
    m.observe(snapshot({ at: 12_500, ready: 3 }));
    expect(await text(m)).toContain('tidepool_queue_backlog_age_seconds 1.5');
  });

  it('counts launches and launch failures through the launcher', async () => {
    const m = new ScalerMetrics(createRegistry());
    let fail = false;
    const inner: RunnerLauncher = {
      kind: 'test',
      launch: (n) => (fail ? Promise.reject(new Error('quota exceeded')) : Promise.resolve(Array.from({ length: n }, (_, i) => `r${i}`))),
      list: () => Promise.resolve([] as LaunchedRunner[]),
      close: () => Promise.resolve(),
    };
    const launcher = m.instrument(inner);
    expect(await launcher.launch(3)).toEqual(['r0', 'r1', 'r2']);
    fail = true;
    await expect(launcher.launch(2)).rejects.toThrow('quota exceeded');
    const out = await text(m);
    expect(out).toContain('tidepool_runner_launches_total 3');
    expect(out).toContain('tidepool_runner_launch_failures_total 2');
    expect(launcher.kind).toBe('test');
  });
});

describe('dashboard settings', () => {
  it('refuses a dashboard off loopback without a token, naming the setting', () => {
    expect(() => loadConfig({ TIDEPOOL_DASHBOARD_PORT: '8080', TIDEPOOL_DASHBOARD_HOST: '0.0.0.0' })).toThrow(
      /TIDEPOOL_DASHBOARD_TOKEN is required when TIDEPOOL_DASHBOARD_HOST \(0\.0\.0\.0\) is not a loopback address/,
    );
    expect(() => loadConfig({ TIDEPOOL_DASHBOARD_PORT: '8080', TIDEPOOL_DASHBOARD_HOST: '0.0.0.0', TIDEPOOL_DASHBOARD_TOKEN: 'short' })).toThrow(/TIDEPOOL_DASHBOARD_TOKEN: at least 16 characters/);
  });

  it('accepts loopback without a token, anywhere with one, and a dashboard that is off', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '[::1]', '127.0.0.2']) {
      expect(loadConfig({ TIDEPOOL_DASHBOARD_PORT: '8080', TIDEPOOL_DASHBOARD_HOST: host }).dashboardHost).toBe(host);
    }
    expect(loadConfig({ TIDEPOOL_DASHBOARD_PORT: '8080', TIDEPOOL_DASHBOARD_HOST: '0.0.0.0', TIDEPOOL_DASHBOARD_TOKEN: 'x'.repeat(32) }).dashboardPort).toBe(8080);
    expect(loadConfig({ TIDEPOOL_DASHBOARD_HOST: '0.0.0.0' }).dashboardPort).toBe(0);
    expect(loadConfig({}, undefined, { dashboardPort: 9000, dashboardHost: '10.0.0.5', dashboardToken: 'y'.repeat(20) }).dashboardHost).toBe('10.0.0.5');
    expect(() => loadConfig({}, undefined, { dashboardPort: 9000, dashboardHost: '10.0.0.5' })).toThrow(/TIDEPOOL_DASHBOARD_TOKEN/);
  });
});

describe('the Grafana dashboard (k8s/grafana/tidepool.json)', () => {
  it('queries only metrics that tidepool defines', async () => {
    const defined = new Set<string>();
    const notifications = createRegistry();
    new NotificationMetrics(notifications);
    for (const registry of [new ScalerMetrics(createRegistry()).registry, new RunnerMetrics(createRegistry()).registry, notifications]) {
      for (const metric of await registry.getMetricsAsJSON()) defined.add(metric.name);
    }
    const dashboard = readFileSync(join(PACKAGE_ROOT, 'k8s', 'grafana', 'tidepool.json'), 'utf8');
    const used = new Set([...dashboard.matchAll(/\btidepool_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')));
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((name) => !defined.has(name))).toEqual([]);
  });
});
