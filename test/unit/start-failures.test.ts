// The scaler's hold on launches when runners die before their first heartbeat (a restart storm
// otherwise: the queue is still deep, so every tick would launch replacements).
import { describe, expect, it } from 'vitest';
import type { LaunchedRunner } from '../../shared/ports/runner-launcher.js';
import { StartFailures } from '../../scaler/start-failures.js';

const finished = (runnerId: string, exitCode: number | null, reason?: string): LaunchedRunner => ({ runnerId, phase: 'finished', launchedAt: 0, exitCode, ...(reason ? { reason } : {}) });
const running = (runnerId: string): LaunchedRunner => ({ runnerId, phase: 'running', launchedAt: 0 });
const half = () => 0.5; // backoffDelay: ceiling/2 + 0.5 × ceiling/2 = 0.75 × ceiling

describe('StartFailures', () => {
  it('holds launches after a runner dies before its first heartbeat, longer after each one in a row', () => {
    const s = new StartFailures(half);
    expect(s.observe([running('a')], new Set(), 0)).toEqual([]);
    expect(s.heldFor(0)).toBe(0);
    expect(s.observe([finished('a', 78, 'Error')], new Set(), 1000)).toEqual([{ runnerId: 'a', exitCode: 78, reason: 'Error' }]);
    expect(s.heldFor(1000)).toBe(3000); // 0.75 × 4 s
    // The same finished runner is counted once, however many ticks see it.
    expect(s.observe([finished('a', 78)], new Set(), 2000)).toEqual([]);
    s.observe([finished('a', 78), finished('b', 1)], new Set(), 5000);
    expect(s.consecutiveFailures).toBe(2);
    expect(s.heldFor(5000)).toBe(6000); // 0.75 × 8 s
    expect(s.heldFor(11_000)).toBe(0);
  });

  it('does not count runners that heartbeated, or that exited 0 (idle)', () => {
    const s = new StartFailures(half);
    s.observe([running('a'), running('b')], new Set(['a']), 0);
    expect(s.observe([finished('a', 1), finished('b', 0)], new Set(), 1000)).toEqual([]);
    expect(s.heldFor(1000)).toBe(0);
  });

  it('ends the hold as soon as any runner heartbeats', () => {
    const s = new StartFailures(half);
    s.observe([finished('a', 78), finished('b', 78), finished('c', 78)], new Set(), 0);
    expect(s.heldFor(0)).toBeGreaterThan(0);
    s.observe([finished('a', 78), running('d')], new Set(['d']), 100);
    expect(s.heldFor(100)).toBe(0);
    expect(s.consecutiveFailures).toBe(0);
  });

  it('caps the hold', () => {
    const s = new StartFailures(() => 1);
    for (let i = 0; i < 20; i++) s.observe([finished(`r${i}`, 78)], new Set(), 0);
    expect(s.heldFor(0)).toBe(300_000);
  });
});
