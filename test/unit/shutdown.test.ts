// A stopping runner must end whatever it waits for: its syncs get a grace, then an abort and a
// bounded wait; what it holds is released last acquired first, each within a bound.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { drainSyncs, Releasers, RELEASE_WAIT_MS, SYNC_ABORT_WAIT_MS, type Draining } from '../../runner/shutdown.js';

function capturingLogger() {
  const lines: { msg: string; releasing?: string }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
  return { logger, lines };
}

/** A sync that finishes when told to, or on abort after `abortTakesMs` (never: undefined). */
function sync(label: string, abortTakesMs?: number): Draining & { finish(): void; aborted: boolean } {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const s = {
    label,
    done,
    aborted: false,
    finish,
    abort() {
      s.aborted = true;
      if (abortTakesMs !== undefined) setTimeout(finish, abortTakesMs);
    },
  };
  return s;
}

describe('Releasers', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('releases in reverse order of acquisition, each once', async () => {
    const { logger } = capturingLogger();
    const releasers = new Releasers(logger);
    const order: string[] = [];
    for (const name of ['redis', 'broker session', 'runner record', 'heartbeat timer']) releasers.add(name, () => void order.push(name));
    expect(await releasers.releaseAll()).toEqual([]);
    expect(order).toEqual(['heartbeat timer', 'runner record', 'broker session', 'redis']);
    expect(await releasers.releaseAll()).toEqual([]);
    expect(order).toHaveLength(4);
  });

  it('goes on past one that fails or hangs, waiting for a hanging one only its bound', async () => {
    const { logger, lines } = capturingLogger();
    const releasers = new Releasers(logger);
    const order: string[] = [];
    releasers.add('first', () => void order.push('first'));
    releasers.add('hangs', () => new Promise(() => undefined));
    releasers.add('slow but bounded longer', () => new Promise<void>((resolve) => setTimeout(() => resolve(void order.push('slow')), 7_000)), 8_000);
    releasers.add('throws', () => {
      throw new Error('store away');
    });
    releasers.add('rejects', () => Promise.reject(new Error('channel gone')));
    const released = releasers.releaseAll();
    await vi.advanceTimersByTimeAsync(7_000);
    expect(order).toEqual(['slow']);
    await vi.advanceTimersByTimeAsync(RELEASE_WAIT_MS - 1);
    expect(order).toEqual(['slow']);
    await vi.advanceTimersByTimeAsync(1);
    expect(await released).toEqual(['rejects', 'throws', 'hangs']);
    expect(order).toEqual(['slow', 'first']);
    expect(lines.map((l) => [l.releasing, l.msg])).toEqual([
      ['rejects', 'could not release: going on without it'],
      ['throws', 'could not release: going on without it'],
      ['hangs', 'not released in time: going on without it'],
    ]);
  });
});

describe('drainSyncs', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  const never = new Promise<void>(() => undefined);

  it('aborts nothing when the syncs finish within the grace', async () => {
    const a = sync('a');
    const drained = drainSyncs([a], { graceMs: 1_000, force: never });
    await vi.advanceTimersByTimeAsync(500);
    a.finish();
    expect(await drained).toEqual({ aborted: 0, left: [] });
    expect(a.aborted).toBe(false);
  });

  it('aborts the ones left after the grace and waits for them to wind down', async () => {
    const quick = sync('quick');
    const slow = sync('slow', 200);
    const drained = drainSyncs([quick, slow], { graceMs: 1_000, force: never });
    quick.finish();
    await vi.advanceTimersByTimeAsync(999);
    expect(slow.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(slow.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(200);
    expect(await drained).toEqual({ aborted: 1, left: [] });
    expect(quick.aborted).toBe(false);
  });

  it('a second signal aborts at once', async () => {
    let force!: () => void;
    const forced = new Promise<void>((resolve) => (force = resolve));
    const a = sync('a', 0);
    const drained = drainSyncs([a], { graceMs: 60_000, force: forced });
    force();
    await vi.advanceTimersByTimeAsync(0);
    expect(a.aborted).toBe(true);
    expect(await drained).toEqual({ aborted: 1, left: [] });
  });

  it('waits for aborted syncs that never end only SYNC_ABORT_WAIT_MS, and says which they are', async () => {
    const stuck = sync('sync-stuck');
    let result: { aborted: number; left: string[] } | undefined;
    void drainSyncs([stuck], { graceMs: 0, force: never }).then((r) => (result = r));
    await vi.advanceTimersByTimeAsync(SYNC_ABORT_WAIT_MS - 1);
    expect(stuck.aborted).toBe(true);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toEqual({ aborted: 1, left: ['sync-stuck'] });
  });
});
