import { afterEach, describe, expect, it, vi } from 'vitest';
import { SilenceClock, tickFor, watchConnectors, type Activity } from '../../runner/sync/watchdog.js';

describe('SilenceClock', () => {
  it('counts silence from the last progress', () => {
    const clock = new SilenceClock(0);
    expect(clock.observe(0, { progress: 0, expected: true })).toBe(0);
    expect(clock.observe(500, { progress: 0, expected: true })).toBe(500);
    expect(clock.observe(900, { progress: 10, expected: true })).toBe(0);
    expect(clock.observe(2900, { progress: 10, expected: true })).toBe(2000);
  });

  it('does not count while the connector is not expected to act, and starts afresh after', () => {
    const clock = new SilenceClock(0);
    clock.observe(0, { progress: 5, expected: true });
    // Blocked behind the destination, say: not its fault.
    expect(clock.observe(10_000, { progress: 5, expected: false })).toBe(0);
    expect(clock.observe(10_500, { progress: 5, expected: true })).toBe(500);
  });

  it('takes any change of the counter as progress', () => {
    const clock = new SilenceClock(0);
    clock.observe(0, { progress: 100, expected: true });
    expect(clock.observe(1000, { progress: 99, expected: true })).toBe(0);
  });
});

describe('tickFor', () => {
  it('samples ten times per timeout, at most once a second', () => {
    expect(tickFor(2000)).toBe(200);
    expect(tickFor(30 * 60_000)).toBe(1000);
    expect(tickFor(50)).toBe(10);
  });
});

describe('watchConnectors', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const subject = (sample: () => Activity) => {
    const hung = vi.fn<() => void>();
    return { watched: { sample, onHung: hung }, hung };
  };

  it('calls onHung once, for a connector silent for the timeout while expected, and stops', () => {
    vi.useFakeTimers();
    let progress = 0;
    const busy = subject(() => ({ progress: progress++, expected: true }));
    const silent = subject(() => ({ progress: 7, expected: true }));
    watchConnectors(1000, [busy.watched, silent.watched], () => Date.now());
    vi.advanceTimersByTime(900);
    expect(silent.hung).not.toHaveBeenCalled();
    vi.advanceTimersByTime(300);
    expect(silent.hung).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(5000);
    expect(silent.hung).toHaveBeenCalledTimes(1);
    expect(busy.hung).not.toHaveBeenCalled();
  });

  it('never fires for a connector that is not expected to act', () => {
    vi.useFakeTimers();
    const idle = subject(() => ({ progress: 0, expected: false }));
    const stop = watchConnectors(1000, [idle.watched], () => Date.now());
    vi.advanceTimersByTime(60_000);
    expect(idle.hung).not.toHaveBeenCalled();
    stop();
  });

  it('watches nothing with timeout 0, and stop() ends the watch', () => {
    vi.useFakeTimers();
    const silent = subject(() => ({ progress: 0, expected: true }));
    watchConnectors(0, [silent.watched], () => Date.now());
    vi.advanceTimersByTime(60_000);
    expect(silent.hung).not.toHaveBeenCalled();
    const stop = watchConnectors(1000, [silent.watched], () => Date.now());
    stop();
    vi.advanceTimersByTime(60_000);
    expect(silent.hung).not.toHaveBeenCalled();
  });
});
