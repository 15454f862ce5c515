import { describe, expect, it } from 'vitest';
import { RETRY_JITTER, backoffDelay, retryDelay, retryNominalDelay } from '../../shared/backoff.js';
import { loadConfig } from '../../shared/config.js';

const defaults = (() => {
  const c = loadConfig({});
  return { baseMs: c.retryBaseDelay, factor: c.retryFactor, maxMs: c.retryMaxDelay };
})();

describe('retry delays per level', () => {
  it('with the default settings: 10 s, 30 s, 90 s, 270 s, then the 10 min cap', () => {
    expect([1, 2, 3, 4, 5, 6, 12].map((n) => retryNominalDelay(n, defaults))).toEqual([10_000, 30_000, 90_000, 270_000, 600_000, 600_000, 600_000]);
  });

  it('grows by the factor from the base', () => {
    const o = { baseMs: 200, factor: 2, maxMs: 60_000 };
    expect([1, 2, 3, 4].map((n) => retryNominalDelay(n, o))).toEqual([200, 400, 800, 1600]);
  });

  it('with the lowest and the highest random value stays within ± jitter of the level', () => {
    const o = { baseMs: 1000, factor: 3, maxMs: 60_000 };
    for (const level of [1, 2, 3]) {
      const nominal = retryNominalDelay(level, o);
      expect(retryDelay(level, o, () => 0)).toBe(Math.round(nominal * (1 - RETRY_JITTER)));
      expect(retryDelay(level, o, () => 0.999_999)).toBeCloseTo(nominal * (1 + RETRY_JITTER), -1);
      expect(retryDelay(level, o, () => 0.5)).toBe(nominal);
    }
  });

  it('stays within ± jitter of its level, in whole milliseconds, for any random value', () => {
    const o = { baseMs: 200, factor: 2, maxMs: 1_000_000 };
    for (let i = 0; i < 2000; i++) {
      const level = 1 + (i % 5);
      const nominal = retryNominalDelay(level, o);
      const d = retryDelay(level, o);
      expect(d).toBeGreaterThanOrEqual(Math.floor(nominal * (1 - RETRY_JITTER)));
      expect(d).toBeLessThanOrEqual(Math.ceil(nominal * (1 + RETRY_JITTER)));
      expect(Number.isInteger(d)).toBe(true);
    }
  });

  it('never exceeds the maximum, even with jitter at the cap', () => {
    const o = { baseMs: 10_000, factor: 3, maxMs: 600_000 };
    for (const r of [0, 0.3, 0.5, 0.9, 0.999_999]) {
      const d = retryDelay(9, o, () => r);
      expect(d).toBeLessThanOrEqual(600_000);
      expect(d).toBeGreaterThanOrEqual(600_000 * (1 - RETRY_JITTER));
    }
  });

  it('is at least 1 ms (an expiration of 0 would skip the delay)', () => {
    expect(retryDelay(1, { baseMs: 1, factor: 1, maxMs: 1 }, () => 0)).toBe(1);
  });

  it('rejects a level below 1', () => {
    expect(() => retryDelay(0, defaults)).toThrow(RangeError);
    expect(() => retryDelay(1.5, defaults)).toThrow(RangeError);
  });
});

describe('backoffDelay (reconnects)', () => {
  it('is unchanged: full jitter between half the ceiling and the ceiling', () => {
    const o = { baseMs: 100, factor: 2, capMs: 1000 };
    expect(backoffDelay(0, o, () => 0)).toBe(50);
    expect(backoffDelay(3, o, () => 1)).toBe(800);
    expect(backoffDelay(10, o, () => 1)).toBe(1000);
  });
});

describe('retry settings', () => {
  it('have the documented defaults and take durations', () => {
    const c = loadConfig({});
    expect([c.retryBaseDelay, c.retryFactor, c.retryMaxDelay, c.maxAttempts, c.deliveryLimit]).toEqual([10_000, 3, 600_000, 5, 10]);
    const t = loadConfig({ TIDEPOOL_RETRY_BASE_DELAY: '200ms', TIDEPOOL_RETRY_FACTOR: '2', TIDEPOOL_RETRY_MAX_DELAY: '2s', TIDEPOOL_MAX_ATTEMPTS: '3' });
    expect([t.retryBaseDelay, t.retryFactor, t.retryMaxDelay, t.maxAttempts]).toEqual([200, 2, 2000, 3]);
  });

  it('refuse a maximum below the base, and a zero base', () => {
    expect(() => loadConfig({ TIDEPOOL_RETRY_BASE_DELAY: '1m', TIDEPOOL_RETRY_MAX_DELAY: '10s' })).toThrow(/TIDEPOOL_RETRY_BASE_DELAY/);
    expect(() => loadConfig({ TIDEPOOL_RETRY_BASE_DELAY: '0' })).toThrow(/TIDEPOOL_RETRY_BASE_DELAY/);
    expect(() => loadConfig({ TIDEPOOL_MAX_ATTEMPTS: '0' })).toThrow(/TIDEPOOL_MAX_ATTEMPTS/);
    expect(() => loadConfig({ TIDEPOOL_RETRY_FACTOR: '0.5' })).toThrow(/TIDEPOOL_RETRY_FACTOR/);
  });
});
