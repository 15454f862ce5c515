import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { IdleTimer } from '../../runner/idle.js';

const T = 10_000;

describe('IdleTimer', () => {
  let fired: number;
  let timer: IdleTimer;
  beforeEach(() => {
    vi.useFakeTimers();
    fired = 0;
    timer = new IdleTimer(T, () => {
      fired++;
    });
  });
  afterEach(() => {
    timer.stop();
    vi.useRealTimers();
  });

  it('fires after the timeout when idle', () => {
    timer.start();
    vi.advanceTimersByTime(T - 1);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
  });

  it('fires once', () => {
    timer.start();
    vi.advanceTimersByTime(5 * T);
    expect(fired).toBe(1);
  });

  it('never fires while a sync is in flight', () => {
    timer.start();
    vi.advanceTimersByTime(T / 2);
    timer.syncStarted();
    vi.advanceTimersByTime(10 * T);
    expect(fired).toBe(0);
  });

  it('restarts the clock when a sync finishes, not when it starts', () => {
    timer.start();
    timer.syncStarted();
    vi.advanceTimersByTime(0.9 * T);
    timer.syncFinished();
    vi.advanceTimersByTime(0.6 * T); // t = 1.5 T
    expect(fired).toBe(0);
    vi.advanceTimersByTime(0.4 * T - 1); // just before 1.9 T
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1); // t = 1.9 T
    expect(fired).toBe(1);
  });

  it('waits for the last of several concurrent syncs', () => {
    timer.start();
    timer.syncStarted();
    timer.syncStarted();
    vi.advanceTimersByTime(T);
    timer.syncFinished();
    vi.advanceTimersByTime(2 * T);
    expect(fired).toBe(0);
    timer.syncFinished();
    vi.advanceTimersByTime(T);
    expect(fired).toBe(1);
  });

  it('a sync that starts just before the timeout keeps the runner', () => {
    timer.start();
    vi.advanceTimersByTime(T - 1);
    timer.syncStarted();
    vi.advanceTimersByTime(T);
    expect(fired).toBe(0);
  });

  it('stop() prevents firing', () => {
    timer.start();
    vi.advanceTimersByTime(T / 2);
    timer.stop();
    vi.advanceTimersByTime(10 * T);
    expect(fired).toBe(0);
  });

  it('stays stopped when a sync finishes after stop()', () => {
    timer.start();
    timer.syncStarted();
    timer.stop();
    timer.syncFinished();
    vi.advanceTimersByTime(10 * T);
    expect(fired).toBe(0);
  });
});
