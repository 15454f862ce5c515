import { describe, expect, it } from 'vitest';
import { simulate, DEFAULT_SIM_SETTINGS, type ScalerModel } from '../../bench/support/pool-sim.js';
import { kedaJobsToCreate, tidepoolModel } from '../../bench/support/scaler-models.js';
import { adaptiveLeave } from '../../bench/support/scaling-configs.js';
import { generateTrace, seededRandom, DEFAULT_TRACE_SHAPE, type ScalingTrace, type TraceSync } from '../../bench/support/scaling-trace.js';

describe('generateTrace', () => {
  it('gives the same trace for the same seed, another for another seed', () => {
    expect(generateTrace(7)).toEqual(generateTrace(7));
    expect(generateTrace(8).syncs.map((s) => s.atMs)).not.toEqual(generateTrace(7).syncs.map((s) => s.atMs));
  });

  it('draws the same sequence from the same seed', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const draws = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(draws);
    for (const d of draws) expect(d >= 0 && d < 1).toBe(true);
  });

  it('has the issue\'s shape: 290 syncs in order within the span, whole records, pod starts of 3-8 s', () => {
    const trace = generateTrace(3);
    expect(trace.syncs).toHaveLength(DEFAULT_TRACE_SHAPE.syncs);
    trace.syncs.forEach((s, i) => {
      if (i > 0) expect(s.atMs).toBeGreaterThanOrEqual(trace.syncs[i - 1]!.atMs);
      expect(s.atMs).toBeGreaterThanOrEqual(0);
      expect(s.atMs).toBeLessThanOrEqual(trace.spanMs);
      expect(s.durationMs).toBe(s.records * s.delayMs);
    });
    expect(Math.min(...trace.podStartsMs)).toBeGreaterThanOrEqual(3_000);
    expect(Math.max(...trace.podStartsMs)).toBeLessThanOrEqual(8_000);
  });

  it('puts most syncs in bursts: some 10 s window holds a fifth of them', () => {
    const at = generateTrace(5).syncs.map((s) => s.atMs);
    const densest = Math.max(...at.map((t) => at.filter((u) => u >= t && u < t + 10_000).length));
    expect(densest).toBeGreaterThanOrEqual(40);
  });
});

const sync = (i: number, atMs: number, durationMs: number): TraceSync => ({ syncId: `s${i}`, connectionId: `c${i}`, atMs, durationMs, records: durationMs / 100, delayMs: 100 });
const tiny = (syncs: TraceSync[], podStartMs = 5_000): ScalingTrace => ({ seed: 0, syncs, podStartsMs: [podStartMs], spanMs: 60_000 });
const shipped = () => tidepoolModel({ pollIntervalMs: 1_000, concurrency: 2, maxRunners: 40, launchRate: 2, launchBurst: 4, runnerStartTimeoutMs: 120_000 });

/** Launches `n` runners at its first tick, then none. */
function launchesOnce(n: number): ScalerModel {
  let done = false;
  return { intervalMs: 1_000, tick: () => (done ? 0 : ((done = true), n)) };
}

describe('simulate', () => {
  it('accounts one sync by hand: launched at 0, consuming at 5 s, done at 15 s, gone at 45 s', () => {
    const r = simulate(tiny([sync(0, 0, 10_000)]), shipped(), undefined);
    expect(r.waitsMs).toEqual([5_000]);
    expect(r.runnerMs).toBe(45_000);
    expect(r.busySlotMs).toBe(10_000);
    expect(r).toMatchObject({ launched: 1, duplicates: 0, lost: 0, peakRunners: 1 });
  });

  it('puts two syncs on one runner with two slots', () => {
    const r = simulate(tiny([sync(0, 0, 10_000), sync(1, 0, 4_000)]), shipped(), undefined);
    expect(r.launched).toBe(1);
    expect(r.waitsMs).toEqual([5_000, 5_000]);
    expect(r.busySlotMs).toBe(14_000);
    expect(r.runnerMs).toBe(45_000); // idle clock from the last sync's end, 15 s
  });

  it('a sync arriving while a runner is idle restarts its idle clock', () => {
    const r = simulate(tiny([sync(0, 0, 1_000), sync(1, 20_000, 1_000)]), shipped(), undefined);
    expect(r.launched).toBe(1);
    expect(r.waitsMs).toEqual([5_000, 0]);
    expect(r.runnerMs).toBe(51_000); // 21 s + 30 s idle
  });

  it('counts a runner that never ran anything as a duplicate launch, and its lifetime as waste', () => {
    const r = simulate(tiny([sync(0, 0, 10_000)]), launchesOnce(2), undefined);
    expect(r).toMatchObject({ launched: 2, duplicates: 1, lost: 0 });
    expect(r.runnerMs).toBe(45_000 + 35_000);
  });

  it('counts syncs no runner ever took as lost', () => {
    const r = simulate(tiny([sync(0, 0, 1_000), sync(1, 0, 1_000)]), launchesOnce(0), undefined, { ...DEFAULT_SIM_SETTINGS, drainLimitMs: 10_000 });
    expect(r.lost).toBe(2);
    expect(r.waitsMs).toEqual([]);
  });

  it('lets a leave rule end an idle runner at a heartbeat', () => {
    const r = simulate(tiny([sync(0, 0, 10_000)]), shipped(), () => true);
    expect(r.runnerMs).toBe(15_000); // beats every 2 s from 5 s: the one at 15 s finds it idle
  });

  it('with the adaptive leave rule, the surplus runner leaves early and the last warm one at the timeout', () => {
    const leave = adaptiveLeave({ idleTimeoutMs: 30_000, idleMinimumMs: 5_000, refillMs: 10_000, minRunners: 0 }, 60_000);
    const r = simulate(tiny([0, 1, 2, 3].map((i) => sync(i, 0, 10_000))), shipped(), leave());
    expect(r.launched).toBe(2);
    // Both idle from 15 s; 4 starts a minute need 1 warm slot, so one runner of two is surplus:
    // r0000 leaves at its first heartbeat 5 s idle (21 s), r0001 at its 30 s idle (45 s).
    expect(r.runners.map((x) => x.exitedAt)).toEqual([21_000, 45_000]);
    expect(r.runnerMs).toBe(66_000);
  });

  it('replays a generated trace deterministically, losing nothing', () => {
    const trace = generateTrace(11);
    const a = simulate(trace, shipped(), undefined);
    expect(simulate(trace, shipped(), undefined)).toEqual(a);
    expect(a.lost).toBe(0);
    expect(a.waitsMs).toHaveLength(trace.syncs.length);
  });
});

describe('kedaJobsToCreate (scale_jobs.go, cases from its tests)', () => {
  const create = (strategy: 'default' | 'accurate' | 'eager', maxScale: number, running: number, pending: number, maxReplicaCount: number) =>
    kedaJobsToCreate(strategy, { maxScale, running, pending, maxReplicaCount, scaleTo: 1_000 });
  it.each<['accurate' | 'eager', number, number, number, number, number]>([
    ['accurate', 3, 2, 0, 5, 3],
    ['accurate', 5, 2, 0, 5, 3],
    ['accurate', 3, 4, 2, 10, 1],
    ['accurate', 5, 4, 2, 5, 1],
    ['eager', 4, 3, 0, 10, 4],
    ['eager', 4, 0, 3, 10, 4],
    ['eager', 4, 7, 0, 10, 3],
    ['eager', 4, 1, 6, 10, 3],
  ])('%s maxScale %i running %i pending %i max %i → %i', (strategy, m, r, p, x, want) => expect(create(strategy, m, r, p, x)).toBe(want));
  it('default subtracts every unfinished Job, busy or not', () => {
    expect(create('default', 5, 3, 0, 10)).toBe(2);
    expect(create('default', 2, 3, 0, 10)).toBe(0);
  });
  it('creates no more than scaleTo (queueLength) for default and accurate', () => {
    expect(kedaJobsToCreate('default', { maxScale: 5, running: 0, pending: 0, maxReplicaCount: 10, scaleTo: 3 })).toBe(3);
  });
});
