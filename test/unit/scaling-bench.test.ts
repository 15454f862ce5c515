import { describe, expect, it } from 'vitest';
import { clusterOutcome, fastestKeda, figures, targets, type Figures, type ObservedRun, type ObservedRunner } from '../../bench/support/scaling-figures.js';
import { KEDA_CONFIGS, kedaConfigName } from '../../bench/support/scaling-configs.js';
import { CLUSTER_SCALERS, pickScalers, scalerSlug, scalingTable, summarizeRows, type ScalerRow } from '../../bench/support/scaling-report.js';
import { CLUSTER_TRACE_SHAPE, compressShape, DEFAULT_TRACE_SHAPE, generateTrace } from '../../bench/support/scaling-trace.js';

describe('the cluster trace', () => {
  it('fits a 2-core node: 60 syncs within a minute and a half, durations from a few seconds to about half a minute, bursts of about the pool', () => {
    const trace = generateTrace(1, CLUSTER_TRACE_SHAPE);
    expect(trace.syncs).toHaveLength(60);
    expect(trace.spanMs).toBe(90_000);
    const durations = trace.syncs.map((s) => s.durationMs).sort((a, b) => a - b);
    expect(durations[0]).toBeGreaterThanOrEqual(1_000);
    expect(durations[Math.floor(durations.length * 0.95)]).toBeLessThan(40_000);
    // Three bursts of ~15 within their 5 s spread: some 5 s window holds at least 12 syncs.
    const most = Math.max(...trace.syncs.map((s) => trace.syncs.filter((t) => t.atMs >= s.atMs && t.atMs < s.atMs + 5_000).length));
    expect(most).toBeGreaterThanOrEqual(12);
    expect(most).toBeLessThanOrEqual(20);
  });

  it('compresses time, not counts: a factor divides the span, the spread and the durations', () => {
    const shape = compressShape(DEFAULT_TRACE_SHAPE, 5);
    expect(shape).toMatchObject({ syncs: 290, bursts: 4, spanMs: 180_000, burstSpreadMs: 2_000, durationMedianMs: 4_000, podStartMinMs: 3_000, podStartMaxMs: 8_000 });
    const [full, fast] = [generateTrace(3), generateTrace(3, shape)];
    expect(fast.syncs).toHaveLength(full.syncs.length);
    expect(Math.max(...fast.syncs.map((s) => s.atMs))).toBeLessThanOrEqual(180_000);
    // The same draws: the median duration shrinks by the factor, give or take whole records.
    const med = (t: typeof full) => t.syncs.map((s) => s.durationMs).sort((a, b) => a - b)[145]!;
    expect(Math.abs(med(fast) - med(full) / 5)).toBeLessThanOrEqual(200);
  });

  it('keeps a sync at least one record long, and refuses to stretch', () => {
    expect(compressShape(CLUSTER_TRACE_SHAPE, 1000).durationMedianMs).toBe(CLUSTER_TRACE_SHAPE.recordDelayMs);
    expect(compressShape(CLUSTER_TRACE_SHAPE, 1)).toEqual(CLUSTER_TRACE_SHAPE);
    expect(() => compressShape(CLUSTER_TRACE_SHAPE, 0.5)).toThrow(/factor ≥ 1/);
  });
});

describe('KEDA_CONFIGS', () => {
  it('are the 12 of the issue: 3 strategies × 2 trigger modes × polling 30 s and 1 s', () => {
    expect(KEDA_CONFIGS).toHaveLength(12);
    expect(new Set(KEDA_CONFIGS.map(kedaConfigName)).size).toBe(12);
    expect(kedaConfigName(KEDA_CONFIGS[0]!)).toBe('keda default amqp 30s');
  });
});

describe('clusterOutcome', () => {
  const T = 1_000_000;
  const run = (requested: number, started: number | undefined, finished: number | undefined, runnerId: string | undefined, status = 'succeeded'): ObservedRun => ({
    requestedAt: T + requested,
    status,
    runnerId,
    startedAt: started === undefined ? undefined : T + started,
    finishedAt: finished === undefined ? undefined : T + finished,
  });
  const runner = (job: string, created: number | undefined, ended: number | undefined, pod?: string): ObservedRunner => ({
    job,
    pod,
    podCreatedAt: created === undefined ? undefined : T + created,
    podEndedAt: ended === undefined ? undefined : T + ended,
  });

  it('accounts two runners by hand: waits, pod lifetimes, busy slots, a runner that ran nothing', () => {
    const runs = [run(0, 5_000, 15_000, 'tp-a'), run(1_000, 5_000, 10_000, 'tp-a'), run(20_000, 22_000, 30_000, 'tp-a')];
    const runners = [runner('tp-a', 1_000, 60_000, 'tp-a-x1'), runner('tp-b', 2_000, 40_000, 'tp-b-x2')];
    const outcome = clusterOutcome(runs, runners, T + 100_000);
    expect(outcome).toEqual({ waitsMs: [5_000, 4_000, 2_000], runnerMs: 59_000 + 38_000, busySlotMs: 10_000 + 5_000 + 8_000, launched: 2, duplicates: 1, lost: 0 });
    expect(figures(outcome, 2)).toEqual({ waitP50S: 4, waitP95S: 5, waitMaxS: 5, runnerSeconds: 97, efficiency: Math.round((23 / 194) * 1000) / 1000, launched: 2, duplicates: 1, lost: 0 });
  });

  it('finds a KEDA runner by its pod name (its runner id), a tidepool runner by its Job name', () => {
    const runs = [run(0, 1_000, 2_000, 'keda-runner-abc-x7k2p'), run(0, 1_000, 2_000, 'tp-runner-1')];
    const runners = [runner('keda-runner-abc', 0, 10_000, 'keda-runner-abc-x7k2p'), runner('tp-runner-1', 0, 10_000, 'tp-runner-1-q9')];
    expect(clusterOutcome(runs, runners, T + 20_000).duplicates).toBe(0);
  });

  it('counts a runner still alive at the end by its time so far, not as a duplicate; a Job without a pod costs nothing', () => {
    const outcome = clusterOutcome([run(0, 1_000, 2_000, 'a')], [runner('a', 0, 5_000), runner('b', 10_000, undefined), runner('c', undefined, undefined)], T + 30_000);
    expect(outcome).toMatchObject({ runnerMs: 5_000 + 20_000, launched: 3, duplicates: 0 });
  });

  it('counts as lost a sync with no record, one never started, one that did not succeed; their waits are not in the percentiles', () => {
    const outcome = clusterOutcome([undefined, run(0, undefined, undefined, undefined, 'queued'), run(0, 3_000, 4_000, 'a', 'dead_lettered'), run(0, 1_000, 2_000, 'a')], [runner('a', 0, 9_000)], T + 10_000);
    expect(outcome.lost).toBe(3);
    expect(outcome.waitsMs).toEqual([3_000, 1_000]);
  });
});

describe('targets against the fastest KEDA configuration', () => {
  const f = (waitP95S: number, runnerSeconds: number, duplicates = 0): Figures => ({ waitP50S: 0, waitP95S, waitMaxS: 0, runnerSeconds, efficiency: 0, launched: 0, duplicates, lost: 0 });

  it('picks the lowest wait p95, then the fewest runner-seconds, among KEDA rows only', () => {
    const rows = [
      { name: 'tidepool', family: 'tidepool', figures: f(1, 10) },
      { name: 'a', family: 'keda', figures: f(8, 500) },
      { name: 'b', family: 'keda', figures: f(6, 900) },
      { name: 'c', family: 'keda', figures: f(6, 700) },
    ];
    expect(fastestKeda(rows)?.name).toBe('c');
    expect(fastestKeda(rows.slice(0, 1))).toBeUndefined();
  });

  it('holds each target on its own', () => {
    expect(targets(f(6, 490), f(6, 700))).toEqual({ p95: true, runnerSeconds: true, noDuplicates: true });
    expect(targets(f(6.1, 491, 1), f(6, 700))).toEqual({ p95: false, runnerSeconds: false, noDuplicates: false });
  });
});

describe('bench:scaling scalers and rows', () => {
  it('picks scalers by slug and group, in replay order', () => {
    expect(pickScalers('default').map((s) => s.name)).toEqual(['tidepool', ...KEDA_CONFIGS.map(kedaConfigName)]);
    expect(pickScalers('all')).toHaveLength(14);
    expect(pickScalers('keda-eager-http-1s,tidepool').map((s) => s.name)).toEqual(['tidepool', 'keda eager http 1s']);
    expect(pickScalers('tidepool-idle-minimum-5s')[0]).toMatchObject({ family: 'tidepool', idleMinimum: '5s' });
    expect(() => pickScalers('keda-default-amqp-5s')).toThrow(/unknown scaler keda-default-amqp-5s/);
    expect(CLUSTER_SCALERS.map((s) => scalerSlug(s.name))).toContain('keda-accurate-amqp-30s');
  });

  const row = (scaler: string, family: 'tidepool' | 'keda', waitP95S: number, runnerSeconds: number, duplicates = 0): ScalerRow => ({
    scaler,
    family,
    waitP50S: 1,
    waitP95S,
    waitMaxS: 9,
    runnerSeconds,
    efficiency: 0.5,
    launched: 4,
    duplicates,
    lost: 0,
    apiRequests: 100,
    apiRequestsByResource: {},
    peakRunners: 4,
    podStartP50S: 2,
    otherCpuSeconds: 3,
    poolEmptyAfterS: 150,
    otherNamespaces: [],
  });

  it('judges every tidepool row against the fastest KEDA row; a failed replay is no candidate', () => {
    const rows: ScalerRow[] = [
      row('tidepool', 'tidepool', 5, 600),
      row('keda a', 'keda', 6, 1000, 3),
      row('keda b', 'keda', 4, 700),
      { scaler: 'keda c', family: 'keda', error: 'boom' },
      row('tidepool + idleMinimum 5s', 'tidepool', 4, 450),
    ];
    const summary = summarizeRows(rows);
    expect(summary.fastestKeda).toBe('keda b');
    expect(summary.targets).toEqual({
      tidepool: { p95: false, runnerSeconds: false, noDuplicates: true, all: false },
      'tidepool + idleMinimum 5s': { p95: true, runnerSeconds: true, noDuplicates: true, all: true },
    });
    const table = scalingTable(rows, summary);
    expect(table).toContain('keda c');
    expect(table).toContain('FAILED: boom');
    expect(table).toMatch(/tidepool \+ idleMinimum 5s vs keda b: wait p95 met, runner-seconds ≤ 0.7× met/);
  });
});
