// The runner's idle timer: it leaves after `timeoutMs` with nothing to do. The clock restarts
// when a sync *finishes* (not when it starts) and never runs while a sync is in flight — a
// runner must not leave in the middle of a long sync, nor right after one.

export class IdleTimer {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private stopped = false;
  /** When the clock last started (nothing in flight since); undefined while a sync runs or once stopped. */
  private since: number | undefined;

  constructor(private readonly timeoutMs: number, private readonly onIdle: () => void) {}

  start(): void {
    this.arm();
  }

  syncStarted(): void {
    this.inFlight++;
    this.disarm();
  }

  syncFinished(): void {
    this.inFlight--;
    if (this.inFlight === 0) this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  /** How long the runner has had nothing in flight (undefined: a sync runs, or the timer stopped). */
  idleFor(now = Date.now()): number | undefined {
    return this.since === undefined ? undefined : now - this.since;
  }

  private arm(): void {
    this.disarm();
    if (this.stopped) return;
    this.since = Date.now();
    this.timer = setTimeout(() => {
      if (this.inFlight === 0 && !this.stopped) this.onIdle();
    }, this.timeoutMs);
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.since = undefined;
  }
}

// The adaptive leave rule. The idle timeout is most of what a pool pays for and does not use:
// after a burst, every runner waits out its full timeout though the pool has far more free
// slots than the arrivals to come need. So an idle runner looks, every heartbeat, at what it
// can read — the queue's ready count, the pool's heartbeats (free slots), how many syncs
// started recently (the runs index) — and leaves early when the pool would still have the
// slots that arrivals fill while a new runner starts. The last warm slots stay for the
// trickle: they go only at the idle timeout. It is each runner's own decision; nobody stops a
// runner, let alone a busy one.

/** One consuming runner, as its heartbeat says. */
export interface PoolMember {
  runnerId: string;
  concurrency: number;
  inFlight: number;
  /** Syncs it has run: a runner that has run none stays longest (it was launched for work it never got). */
  syncsDone: number;
}

export interface LeaveInput {
  runnerId: string;
  concurrency: number;
  /** How long this runner has had nothing in flight. */
  idleForMs: number;
  /** Messages ready in the syncs queue. */
  ready: number;
  /** The consuming runners' heartbeats, this runner's included. */
  pool: readonly PoolMember[];
  /** Syncs started within the last `windowMs` (the recent arrival rate). */
  recentStarts: number;
  windowMs: number;
}

export interface LeaveSettings {
  /** The longest an idle runner stays (the plain rule). */
  idleTimeoutMs: number;
  /** The shortest: an idle runner leaves early only after this long. ≥ idleTimeoutMs: the plain rule alone. */
  idleMinimumMs: number;
  /** How long a new runner takes to start consuming: the free slots kept cover the arrivals meanwhile. */
  refillMs: number;
  /** The pool's floor: no runner leaves early while the pool has this many runners or fewer. */
  minRunners: number;
}

export interface LeaveDecision {
  leave: boolean;
  reason: string;
}

/** Slots arrivals would fill while a new runner starts: the pool keeps at least these free. */
export function warmSlotsNeeded(recentStarts: number, windowMs: number, refillMs: number): number {
  if (recentStarts <= 0 || windowMs <= 0) return 0;
  return Math.ceil((recentStarts / windowMs) * refillMs);
}

export function decideLeave(input: LeaveInput, settings: LeaveSettings): LeaveDecision {
  const { idleForMs, ready, pool, runnerId, concurrency } = input;
  if (idleForMs >= settings.idleTimeoutMs) return { leave: true, reason: 'idle timeout' };
  if (idleForMs < settings.idleMinimumMs) return { leave: false, reason: 'idle less than idleMinimum' };
  if (ready > 0) return { leave: false, reason: `${ready} syncs ready` };
  const members = pool.some((m) => m.runnerId === runnerId) ? pool : [...pool, { runnerId, concurrency, inFlight: 0, syncsDone: 0 }];
  if (members.length <= settings.minRunners) return { leave: false, reason: `pool at minRunners (${settings.minRunners})` };
  const needed = warmSlotsNeeded(input.recentStarts, input.windowMs, settings.refillMs);
  const free = members.reduce((sum, m) => sum + Math.max(0, m.concurrency - m.inFlight), 0);
  // Every idle runner computes the same order from the same heartbeats, so the surplus leaves
  // and no more: the first `surplus` idle runners, those that have run syncs before those that
  // have not (a runner leaving having run nothing is a launch wasted), then by id.
  const surplus = Math.floor((free - needed) / Math.max(1, concurrency));
  const idle = members
    .filter((m) => m.inFlight === 0)
    .sort((a, b) => Number(b.syncsDone > 0) - Number(a.syncsDone > 0) || (a.runnerId < b.runnerId ? -1 : a.runnerId > b.runnerId ? 1 : 0))
    .map((m) => m.runnerId);
  const rank = idle.indexOf(runnerId);
  if (rank >= 0 && rank < surplus) return { leave: true, reason: `pool has ${free} free slots, arrivals need ${needed}` };
  return { leave: false, reason: `warm: pool has ${free} free slots, arrivals need ${needed}` };
}
