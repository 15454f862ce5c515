// Runners that die before they ever heartbeat (a bad setting exits 78, an image that cannot
// start, a broker they cannot reach) would otherwise be replaced on every tick: the queue is
// still deep, so the policy asks for more. That is a restart storm: load on the cluster and
// nothing gained, since the next runner fails the same way (seen with a stale runner image: 8
// failed Jobs in 36 s). After each such failure the scaler holds its launches for a jittered,
// doubling delay; the first runner that heartbeats ends the hold.
import { backoffDelay } from '../shared/backoff.js';
import type { LaunchedRunner } from '../shared/ports/runner-launcher.js';

/** Hold after the n-th consecutive failure (ms): 2-4 s, 4-8 s, ... up to 2.5-5 min. */
export const START_FAILURE_BACKOFF = { baseMs: 4_000, factor: 2, capMs: 300_000 };

export interface StartFailure {
  runnerId: string;
  exitCode: number | null | undefined;
  reason: string | undefined;
}

export class StartFailures {
  private readonly seenAlive = new Set<string>();
  private readonly counted = new Set<string>();
  private consecutive = 0;
  private holdUntil = 0;

  constructor(private readonly random: () => number = Math.random) {}

  /**
   * Takes one tick's view (launched runners, ids heartbeating now) and returns the runners that
   * newly failed at start, so the caller can log them.
   */
  observe(launched: readonly LaunchedRunner[], heartbeating: ReadonlySet<string>, now: number): StartFailure[] {
    const failures: StartFailure[] = [];
    for (const id of heartbeating) {
      if (!this.seenAlive.has(id)) {
        this.seenAlive.add(id);
        // A runner came up: whatever broke earlier works now.
        this.consecutive = 0;
        this.holdUntil = 0;
      }
    }
    for (const r of launched) {
      if (r.phase !== 'finished' || this.counted.has(r.runnerId)) continue;
      this.counted.add(r.runnerId);
      if (this.seenAlive.has(r.runnerId) || r.exitCode === 0) continue;
      this.consecutive += 1;
      this.holdUntil = now + backoffDelay(this.consecutive - 1, START_FAILURE_BACKOFF, this.random);
      failures.push({ runnerId: r.runnerId, exitCode: r.exitCode, reason: r.reason });
    }
    // Forget runners the launcher no longer lists, so the sets stay small.
    const listed = new Set(launched.map((r) => r.runnerId));
    for (const id of this.counted) if (!listed.has(id)) this.counted.delete(id);
    for (const id of this.seenAlive) if (!listed.has(id) && !heartbeating.has(id)) this.seenAlive.delete(id);
    return failures;
  }

  /** Milliseconds launches are still held for (0: launch freely). */
  heldFor(now: number): number {
    return Math.max(0, this.holdUntil - now);
  }

  get consecutiveFailures(): number {
    return this.consecutive;
  }
}
