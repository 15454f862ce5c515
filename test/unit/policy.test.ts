import { describe, expect, it } from 'vitest';
import { decideLaunches, refillTokens, spendTokens, type ScalingInput } from '../../scaler/policy.js';

const base: ScalingInput = {
  ready: 0,
  inFlight: 0,
  running: 0,
  starting: 0,
  concurrency: 2,
  minRunners: 0,
  maxRunners: 10,
  launchBudget: 100,
};

function decide(overrides: Partial<ScalingInput>) {
  return decideLaunches({ ...base, ...overrides });
}

describe('decideLaunches', () => {
  it.each<[string, Partial<ScalingInput>, number]>([
    ['empty queue, no runners', {}, 0],
    ['empty queue, runners idle', { running: 3 }, 0],
    ['backlog, no runners: ceil(ready / concurrency)', { ready: 5 }, 3],
    ['backlog exactly fills runners', { ready: 4 }, 2],
    ['backlog of one', { ready: 1 }, 1],
    ['capped by maxRunners', { ready: 100, maxRunners: 4 }, 4],
    ['capped by launchBudget', { ready: 100, launchBudget: 3 }, 3],
    ['starting runners count as capacity (KEDA duplicate launch)', { ready: 2, starting: 1 }, 0],
    ['starting runners cover only part of the backlog', { ready: 5, starting: 1 }, 2],
    ['running runners with free slots absorb the backlog', { ready: 3, running: 2, inFlight: 1 }, 0],
    ['in-flight syncs reduce free slots', { ready: 3, running: 2, inFlight: 4 }, 2],
    ['in-flight above capacity (stale heartbeat) counts as no free slot', { ready: 1, running: 1, inFlight: 5 }, 1],
    ['minRunners honoured with an empty queue', { minRunners: 3 }, 3],
    ['minRunners counts starting runners', { minRunners: 3, starting: 2 }, 1],
    ['minRunners already met', { minRunners: 2, running: 2 }, 0],
    ['minRunners capped by budget', { minRunners: 5, launchBudget: 2 }, 2],
    ['pool already at maxRunners', { ready: 50, running: 4, inFlight: 8, maxRunners: 4 }, 0],
    ['pool above maxRunners never goes negative', { ready: 50, running: 6, inFlight: 12, maxRunners: 4 }, 0],
    ['room left below maxRunners', { ready: 50, running: 3, starting: 1, inFlight: 8, maxRunners: 6 }, 2],
    ['fractional budget floors', { ready: 10, launchBudget: 1.99 }, 1],
    ['budget below one launches nothing', { ready: 10, launchBudget: 0.7 }, 0],
    ['negative budget launches nothing', { ready: 10, launchBudget: -2 }, 0],
    ['concurrency 1', { ready: 3, concurrency: 1, running: 1 }, 2],
  ])('%s', (_name, overrides, expected) => {
    expect(decide(overrides).launch).toBe(expected);
  });

  it('says the queue is empty when there is nothing to do', () => {
    expect(decide({}).reason).toMatch(/queue empty/);
  });

  it('names the backlog when it launches for it', () => {
    const d = decide({ ready: 5 });
    expect(d.reason).toMatch(/5 syncs without a slot/);
    expect(d.reason).not.toMatch(/capped/);
  });

  it('names minRunners when it launches for the minimum', () => {
    expect(decide({ minRunners: 2 }).reason).toMatch(/minRunners \(2\)/);
  });

  it('mentions maxRunners when capped by it', () => {
    const d = decide({ ready: 100, maxRunners: 4 });
    expect(d.launch).toBe(4);
    expect(d.reason).toMatch(/capped by maxRunners \(4\)/);
  });

  it('mentions maxRunners when the pool is full and nothing can launch', () => {
    const d = decide({ ready: 10, running: 4, inFlight: 8, maxRunners: 4 });
    expect(d.launch).toBe(0);
    expect(d.reason).toMatch(/maxRunners/);
  });

  it('mentions the launch rate when capped by the budget', () => {
    const d = decide({ ready: 10, launchBudget: 2 });
    expect(d.launch).toBe(2);
    expect(d.reason).toMatch(/capped by launch rate/);
    expect(d.reason).not.toMatch(/maxRunners/);
  });

  it('mentions the launch rate when the budget, not maxRunners, is the tighter cap', () => {
    // wanted 5, room 3 (maxRunners 3), budget 1: the launch is 1 because of the rate limiter.
    const d = decide({ ready: 10, maxRunners: 3, launchBudget: 1 });
    expect(d.launch).toBe(1);
    expect(d.reason).toMatch(/launch rate/);
  });

  it('keeps its invariants over random inputs', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 5000; i++) {
      const concurrency = 1 + rand(8);
      const running = rand(12);
      const starting = rand(6);
      const input: ScalingInput = {
        ready: rand(4) === 0 ? 0 : rand(200),
        inFlight: rand(running * concurrency + 3),
        running,
        starting,
        concurrency,
        minRunners: rand(6),
        maxRunners: 1 + rand(20),
        launchBudget: rand(3) === 0 ? rand(10) : rand(1000) / 100,
      };
      const { launch, reason } = decideLaunches(input);
      const pool = input.running + input.starting;
      const ctx = JSON.stringify({ input, launch, reason });
      expect(Number.isInteger(launch), ctx).toBe(true);
      expect(launch, ctx).toBeGreaterThanOrEqual(0);
      expect(launch, ctx).toBeLessThanOrEqual(Math.max(0, input.maxRunners - pool));
      expect(launch, ctx).toBeLessThanOrEqual(Math.max(0, Math.floor(input.launchBudget)));
      if (launch > 0) {
        const free = Math.max(0, pool * concurrency - input.inFlight);
        const backlogNeeds = Math.ceil(Math.max(0, input.ready - free) / concurrency);
        const minimumNeeds = Math.max(0, input.minRunners - pool);
        expect(launch, ctx).toBeLessThanOrEqual(Math.max(backlogNeeds, minimumNeeds));
        expect(input.ready > free || pool < input.minRunners, ctx).toBe(true);
      }
      expect(reason.length, ctx).toBeGreaterThan(0);
    }
  });
});

describe('launch token bucket', () => {
  it('refills at `rate` per second, capped at `burst`', () => {
    let s = { tokens: 0, updatedAt: 1_000 };
    s = refillTokens(s, 1_250, 2, 4);
    expect(s.tokens).toBeCloseTo(0.5);
    expect(s.updatedAt).toBe(1_250);
    s = refillTokens(s, 1_500, 2, 4);
    expect(s.tokens).toBeCloseTo(1);
    s = refillTokens(s, 60_000, 2, 4);
    expect(s.tokens).toBe(4);
  });

  it('does not refill when time goes backwards', () => {
    const s = refillTokens({ tokens: 1, updatedAt: 5_000 }, 4_000, 2, 4);
    expect(s.tokens).toBe(1);
  });

  it('spends whole launches and never goes negative', () => {
    expect(spendTokens({ tokens: 3.5, updatedAt: 7 }, 2)).toEqual({ tokens: 1.5, updatedAt: 7 });
    expect(spendTokens({ tokens: 1, updatedAt: 7 }, 5).tokens).toBe(0);
  });

  it('does not mutate the state it is given', () => {
    const s = { tokens: 2, updatedAt: 0 };
    refillTokens(s, 10_000, 1, 10);
    spendTokens(s, 1);
    expect(s).toEqual({ tokens: 2, updatedAt: 0 });
  });

  it('limits launches over time when combined with decideLaunches', () => {
    // Rate 1/s, burst 2, a large backlog: 2 at once, then 1 per second.
    let bucket = { tokens: 2, updatedAt: 0 };
    const launches: number[] = [];
    for (let t = 0; t <= 3_000; t += 500) {
      bucket = refillTokens(bucket, t, 1, 2);
      const { launch } = decideLaunches({ ...base, ready: 1_000, maxRunners: 100, launchBudget: bucket.tokens });
      bucket = spendTokens(bucket, launch);
      launches.push(launch);
    }
    expect(launches).toEqual([2, 0, 1, 0, 1, 0, 1]);
  });
});
