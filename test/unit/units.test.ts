import { describe, expect, it } from 'vitest';
import { formatDuration, parseBytes, parseDuration, parseQuantity } from '../../shared/units.js';

describe('parseDuration', () => {
  it.each<[string, number]>([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    ['1500', 1_500],
    ['0', 0],
    [' 30s ', 30_000],
    ['30 s', 30_000],
    ['0.0004s', 0],
  ])('%j → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 's', '-1s', '1w', '1.s', '.5s', '30sec', '1h30m', 'abc', '30S', '1e3'])('rejects %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('parseBytes', () => {
  it.each<[string, number]>([
    ['64MiB', 64 * 1024 * 1024],
    ['512KiB', 512 * 1024],
    ['1GiB', 1024 ** 3],
    ['1GB', 1e9],
    ['1kb', 1000],
    ['1k', 1000],
    ['2M', 2e6],
    ['1000', 1000],
    ['10b', 10],
    ['1.5KiB', 1536],
    [' 64 mib ', 64 * 1024 * 1024],
  ])('%j → %d bytes', (text, n) => {
    expect(parseBytes(text)).toBe(n);
  });

  it.each(['', 'MiB', '0', '0KiB', '-1KiB', '1TB', '1 2', 'lots', '0.0001'])('rejects %j', (text) => {
    expect(parseBytes(text)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each<[number, string]>([
    [0, '0ms'],
    [250, '250ms'],
    [1_500, '1.5s'],
    [45_000, '45.0s'],
    [61_000, '1m1s'],
    [90_000, '1m30s'],
    [125_000, '2m5s'],
  ])('%d ms → %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('never shows 60 seconds in the minutes form (rounds up into the next minute)', () => {
    // 119.6 s is 1 min 59.6 s, which rounds to 2m0s, not "1m60s".
    expect(formatDuration(119_600)).toBe('2m0s');
    for (let ms = 60_000; ms < 600_000; ms += 100) {
      const m = /^(\d+)m(\d+)s$/.exec(formatDuration(ms));
      expect(m, `${ms}`).not.toBeNull();
      expect(Number(m![2]), `${ms} → ${formatDuration(ms)}`).toBeLessThan(60);
    }
  });

  it('round-trips through parseDuration within a second', () => {
    for (const ms of [1_500, 30_000, 61_000, 3_600_000]) {
      const text = formatDuration(ms);
      const parts = /^(?:(\d+)m)?(\d+(?:\.\d+)?)(ms|s)$/.exec(text);
      expect(parts, text).not.toBeNull();
      const back = Number(parts![1] ?? 0) * 60_000 + Number(parts![2]) * (parts![3] === 's' ? 1000 : 1);
      expect(Math.abs(back - ms)).toBeLessThan(1000);
    }
  });
});

describe('parseQuantity', () => {
  it('reads Kubernetes quantities so two can be compared', () => {
    expect(parseQuantity('250m')).toBe(0.25);
    expect(parseQuantity('1.5')).toBe(1.5);
    expect(parseQuantity('96Mi')).toBe(96 * 2 ** 20);
    expect(parseQuantity('1G')).toBe(1e9);
    expect(parseQuantity('128Mi')! > parseQuantity('96Mi')!).toBe(true);
    expect(parseQuantity('lots')).toBeUndefined();
  });
});
