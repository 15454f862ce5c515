import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decideLeave, IdleTimer, warmSlotsNeeded, type LeaveInput, type LeaveSettings, type PoolMember } from '../../runner/idle.js';

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

describe('IdleTimer.idleFor', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('counts from the last sync\'s end, and is undefined while one runs or once stopped', () => {
    const timer = new IdleTimer(T, () => undefined);
    timer.start();
    vi.advanceTimersByTime(1_000);
    expect(timer.idleFor()).toBe(1_000);
    timer.syncStarted();
    expect(timer.idleFor()).toBeUndefined();
    vi.advanceTimersByTime(5_000);
    timer.syncFinished();
    vi.advanceTimersByTime(300);
    expect(timer.idleFor()).toBe(300);
    timer.stop();
    expect(timer.idleFor()).toBeUndefined();
  });
});

const settings: LeaveSettings = { idleTimeoutMs: 30_000, idleMinimumMs: 5_000, refillMs: 10_000, minRunners: 0 };
const member = (runnerId: string, inFlight: number, syncsDone = 1): PoolMember => ({ runnerId, concurrency: 2, inFlight, syncsDone });
function leave(overrides: Partial<LeaveInput>, s: LeaveSettings = settings) {
  const input: LeaveInput = { runnerId: 'b', concurrency: 2, idleForMs: 6_000, ready: 0, pool: [member('a', 0), member('b', 0)], recentStarts: 0, windowMs: 60_000, ...overrides };
  return decideLeave(input, s);
}

describe('warmSlotsNeeded', () => {
  it.each<[number, number, number, number]>([
    [0, 60_000, 10_000, 0],
    [1, 60_000, 10_000, 1],
    [6, 60_000, 10_000, 1],
    [7, 60_000, 10_000, 2],
    [60, 60_000, 10_000, 10],
    [5, 0, 10_000, 0],
  ])('%i starts in %i ms, refill %i ms → %i slots', (starts, window, refill, want) => expect(warmSlotsNeeded(starts, window, refill)).toBe(want));
});

describe('decideLeave', () => {
  it('always leaves at the idle timeout (the plain rule)', () => {
    expect(leave({ idleForMs: 30_000, ready: 5, recentStarts: 1_000 }).leave).toBe(true);
  });

  it('never leaves early before idleMinimum, nor while syncs are ready', () => {
    expect(leave({ idleForMs: 4_999 }).leave).toBe(false);
    expect(leave({ ready: 1 }).reason).toMatch(/1 syncs ready/);
    expect(leave({ ready: 1 }).leave).toBe(false);
  });

  it('is the plain rule when idleMinimum is the idle timeout', () => {
    expect(leave({ idleForMs: 29_000 }, { ...settings, idleMinimumMs: 30_000 }).leave).toBe(false);
  });

  it('leaves when nothing started lately: no slot needs keeping warm', () => {
    expect(leave({}).leave).toBe(true);
  });

  it('keeps the warm slots recent arrivals need: a lone idle runner stays for the trickle', () => {
    expect(leave({ pool: [member('b', 0)], recentStarts: 3 }).leave).toBe(false);
    expect(leave({ pool: [member('b', 0)], recentStarts: 3 }).reason).toMatch(/warm/);
  });

  it('lets exactly the surplus go, the same idle runners whichever asks', () => {
    // 5 runners, 3 busy with one free slot each, 2 idle: 7 free; 12 starts a minute need 2.
    const pool = [member('a', 1), member('b', 0), member('c', 1), member('d', 0), member('e', 1)];
    const asks = (id: string) => leave({ runnerId: id, pool, recentStarts: 12 }).leave;
    // surplus = floor((7 − 2) / 2) = 2: both idle runners go.
    expect([asks('b'), asks('d')]).toEqual([true, true]);
    // 30 starts a minute need 5 slots: surplus 1, the first idle runner by id.
    const asks30 = (id: string) => leave({ runnerId: id, pool, recentStarts: 30 }).leave;
    expect([asks30('b'), asks30('d')]).toEqual([true, false]);
  });

  it('lets runners that ran syncs go before one that has run none (its launch is not wasted yet)', () => {
    const pool = [member('a', 2), member('b', 0, 0), member('c', 0, 3)];
    // 4 free slots, 12 starts a minute need 2: one runner may go; c, which has run syncs.
    expect(leave({ runnerId: 'b', pool, recentStarts: 12 }).leave).toBe(false);
    expect(leave({ runnerId: 'c', pool, recentStarts: 12 }).leave).toBe(true);
  });

  it('never takes the pool below minRunners', () => {
    expect(leave({}, { ...settings, minRunners: 2 }).leave).toBe(false);
    expect(leave({}, { ...settings, minRunners: 1 }).leave).toBe(true);
  });

  it('counts itself when its own heartbeat is not in the pool yet', () => {
    expect(leave({ pool: [member('a', 2)], recentStarts: 0 }).leave).toBe(true);
  });
});
