// A discrete-event model of a runner pool fed by a queue: syncs arrive (a ScalingTrace), a
// scaler looks every interval at what it can see and launches runners, each runner starts
// consuming after its pod start, takes up to `concurrency` syncs (the broker hands ready
// messages round-robin to consumers with a free slot), heartbeats every 2 s and after each
// sync, and leaves by a leave rule. No clock, no I/O: a 15-minute trace replays in milliseconds,
// so a policy change is tried on many traces before a cluster run. Not modelled: connection
// locks (a trace's bursts use distinct connections), connector start-up inside a sync, failures.
import type { PoolOutcome } from './scaling-figures.js';
import type { ScalingTrace } from './scaling-trace.js';

export interface SimRunner {
  id: string;
  launchedAt: number;
  /** When it starts consuming (its first heartbeat). */
  consumingAt: number;
  /** Kubernetes would call its pod Running from here (the process is still connecting). */
  podRunningAt: number;
  exitedAt: number | undefined;
  inFlight: number;
  /** What its last heartbeat said. */
  reportedInFlight: number;
  syncsDone: number;
  /** Since when it has had nothing in flight; undefined while busy. */
  idleSince: number | undefined;
  /** Connection and start of each sync it runs, as a heartbeat could carry them. */
  running: Map<string, { connectionId: string; startedAt: number }>;
}

/** What a scaler model may read at a tick. */
export interface PoolView {
  now: number;
  /** Ready messages (not delivered). */
  ready: number;
  /** Delivered and unacked: the syncs running now, as the broker counts them. */
  unacked: number;
  runners: readonly SimRunner[];
  /** Durations of the syncs finished so far, by connection (the run history). */
  history: ReadonlyMap<string, number[]>;
}

export interface ScalerModel {
  intervalMs: number;
  /** How many runners to launch now. */
  tick(view: PoolView): number;
}

/** Asked every heartbeat of an idle runner: leave now? With one, the rule enforces the idle timeout too (at heartbeat precision). */
export type LeaveModel = (runner: SimRunner, view: PoolView & { recentStarts: (windowMs: number) => number }) => boolean;

export interface SimSettings {
  concurrency: number;
  idleTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Of a pod's start, how long its process takes to connect after Kubernetes says Running. */
  processStartMs: number;
  /** Give up this long after the trace's span (syncs not run by then are lost). */
  drainLimitMs: number;
}

export const DEFAULT_SIM_SETTINGS: SimSettings = { concurrency: 2, idleTimeoutMs: 30_000, heartbeatIntervalMs: 2_000, processStartMs: 1_000, drainLimitMs: 3_600_000 };

/** The outcome bench:scaling measures on a cluster too (scaling-figures.ts), and what only a simulation sees. */
export interface SimResult extends PoolOutcome {
  /** Runners at once, at most. */
  peakRunners: number;
  /** Every runner launched, as the run left it. */
  runners: SimRunner[];
}

type Event =
  | { kind: 'arrive'; sync: number }
  | { kind: 'consuming'; runner: SimRunner }
  | { kind: 'finish'; runner: SimRunner; sync: number }
  | { kind: 'beat'; runner: SimRunner }
  | { kind: 'idle'; runner: SimRunner; since: number }
  | { kind: 'tick' };

/** A binary heap of events by time, then by insertion order (equal times replay deterministically). */
class Agenda {
  private heap: { at: number; seq: number; event: Event }[] = [];
  private seq = 0;

  push(at: number, event: Event): void {
    const heap = this.heap;
    heap.push({ at, seq: this.seq++, event });
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  pop(): { at: number; event: Event } | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined) return undefined;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const [l, r] = [2 * i + 1, 2 * i + 2];
        let m = i;
        if (l < heap.length && this.before(l, m)) m = l;
        if (r < heap.length && this.before(r, m)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }

  private before(a: number, b: number): boolean {
    const x = this.heap[a]!;
    const y = this.heap[b]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
}

export function simulate(trace: ScalingTrace, scaler: ScalerModel, leave: LeaveModel | undefined, settings: SimSettings = DEFAULT_SIM_SETTINGS): SimResult {
  return new PoolSimulation(trace, scaler, leave, settings).run();
}

class PoolSimulation {
  private readonly agenda = new Agenda();
  private readonly queue: number[] = [];
  private readonly runners: SimRunner[] = [];
  private readonly history = new Map<string, number[]>();
  private readonly starts: number[] = [];
  private readonly waits: number[] = [];
  private now = 0;
  private finished = 0;
  private nextConsumer = 0;
  private busySlotMs = 0;
  private peak = 0;

  constructor(
    private readonly trace: ScalingTrace,
    private readonly scaler: ScalerModel,
    private readonly leave: LeaveModel | undefined,
    private readonly settings: SimSettings,
  ) {}

  run(): SimResult {
    this.trace.syncs.forEach((s, i) => this.agenda.push(s.atMs, { kind: 'arrive', sync: i }));
    this.agenda.push(0, { kind: 'tick' });
    const limit = this.trace.spanMs + this.settings.drainLimitMs;
    for (let next = this.agenda.pop(); next && next.at <= limit; next = this.agenda.pop()) {
      this.now = next.at;
      this.handle(next.event);
      if (this.finished === this.trace.syncs.length && this.runners.every((r) => r.exitedAt !== undefined)) break;
    }
    const runnerMs = this.runners.reduce((sum, r) => sum + ((r.exitedAt ?? this.now) - r.launchedAt), 0);
    return {
      waitsMs: this.waits,
      runnerMs,
      busySlotMs: this.busySlotMs,
      launched: this.runners.length,
      duplicates: this.runners.filter((r) => r.exitedAt !== undefined && r.syncsDone === 0).length,
      lost: this.trace.syncs.length - this.finished,
      peakRunners: this.peak,
      runners: this.runners,
    };
  }

  private handle(event: Event): void {
    switch (event.kind) {
      case 'arrive':
        this.queue.push(event.sync);
        break;
      case 'consuming':
        event.runner.idleSince = this.now;
        this.armIdle(event.runner);
        this.agenda.push(this.now + this.settings.heartbeatIntervalMs, { kind: 'beat', runner: event.runner });
        break;
      case 'finish':
        this.finish(event.runner, event.sync);
        break;
      case 'beat':
        this.beat(event.runner);
        return;
      case 'idle':
        if (event.runner.exitedAt === undefined && event.runner.idleSince === event.since) this.exit(event.runner);
        return;
      case 'tick':
        this.tick();
        return;
    }
    this.dispatch();
  }

  private tick(): void {
    const launches = this.scaler.tick(this.view());
    for (let i = 0; i < launches; i++) {
      const n = this.runners.length;
      const start = this.trace.podStartsMs[n % this.trace.podStartsMs.length]!;
      const runner: SimRunner = {
        id: `r${String(n).padStart(4, '0')}`,
        launchedAt: this.now,
        consumingAt: this.now + start,
        podRunningAt: this.now + Math.max(0, start - this.settings.processStartMs),
        exitedAt: undefined,
        inFlight: 0,
        reportedInFlight: 0,
        syncsDone: 0,
        idleSince: undefined,
        running: new Map(),
      };
      this.runners.push(runner);
      this.agenda.push(runner.consumingAt, { kind: 'consuming', runner });
    }
    this.peak = Math.max(this.peak, this.runners.filter((r) => r.exitedAt === undefined).length);
    if (this.finished < this.trace.syncs.length || this.runners.some((r) => r.exitedAt === undefined)) {
      this.agenda.push(this.now + this.scaler.intervalMs, { kind: 'tick' });
    }
  }

  private view(): PoolView {
    const live = this.runners.filter((r) => r.exitedAt === undefined);
    return { now: this.now, ready: this.queue.length, unacked: live.reduce((sum, r) => sum + r.inFlight, 0), runners: live, history: this.history };
  }

  /** Ready messages to consumers with a free slot, round-robin over consumers as RabbitMQ does. */
  private dispatch(): void {
    const consumers = this.runners.filter((r) => r.exitedAt === undefined && r.consumingAt <= this.now);
    while (this.queue.length > 0) {
      const n = consumers.length;
      let picked: SimRunner | undefined;
      for (let k = 0; k < n && !picked; k++) {
        const candidate = consumers[(this.nextConsumer + k) % n]!;
        if (candidate.inFlight < this.settings.concurrency) {
          picked = candidate;
          this.nextConsumer = (this.nextConsumer + k + 1) % n;
        }
      }
      if (!picked) return;
      this.start(picked, this.queue.shift()!);
    }
  }

  private start(runner: SimRunner, index: number): void {
    const sync = this.trace.syncs[index]!;
    runner.inFlight++;
    runner.idleSince = undefined;
    runner.running.set(sync.syncId, { connectionId: sync.connectionId, startedAt: this.now });
    this.waits.push(this.now - sync.atMs);
    this.starts.push(this.now);
    this.agenda.push(this.now + sync.durationMs, { kind: 'finish', runner, sync: index });
  }

  private finish(runner: SimRunner, index: number): void {
    const sync = this.trace.syncs[index]!;
    runner.inFlight--;
    runner.syncsDone++;
    runner.running.delete(sync.syncId);
    this.busySlotMs += sync.durationMs;
    this.finished++;
    const past = this.history.get(sync.connectionId) ?? [];
    past.push(sync.durationMs);
    this.history.set(sync.connectionId, past);
    // The runner heartbeats right after a sync (runner.ts), and its idle clock starts.
    runner.reportedInFlight = runner.inFlight;
    if (runner.inFlight === 0) {
      runner.idleSince = this.now;
      this.armIdle(runner);
    }
  }

  private armIdle(runner: SimRunner): void {
    if (this.leave) return;
    this.agenda.push(this.now + this.settings.idleTimeoutMs, { kind: 'idle', runner, since: this.now });
  }

  private beat(runner: SimRunner): void {
    if (runner.exitedAt !== undefined) return;
    runner.reportedInFlight = runner.inFlight;
    if (runner.idleSince !== undefined && this.leave) {
      const view = { ...this.view(), recentStarts: (windowMs: number) => this.startsSince(this.now - windowMs) };
      if (this.leave(runner, view)) {
        this.exit(runner);
        return;
      }
    }
    this.agenda.push(this.now + this.settings.heartbeatIntervalMs, { kind: 'beat', runner });
  }

  private startsSince(t: number): number {
    let count = 0;
    for (let i = this.starts.length - 1; i >= 0 && this.starts[i]! > t; i--) count++;
    return count;
  }

  private exit(runner: SimRunner): void {
    runner.exitedAt = this.now;
  }
}
