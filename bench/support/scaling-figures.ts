// The figures issue 14 compares scalers by, one definition for the simulator (bench/scaling-sim.ts)
// and the cluster bench (bench/scaling.ts), so a simulated row and a measured one mean the same:
// wait (publish → a runner takes the sync), runner-seconds (runner launch → exit, summed),
// efficiency (busy slot-seconds / runner slot-seconds), runners launched, duplicate launches
// (runners that exited having run nothing), syncs lost; and the targets against KEDA.
import { percentile } from './stats.js';

/** What a replay of a trace came to, simulated or measured. */
export interface PoolOutcome {
  waitsMs: number[];
  /** Runner lifetimes, summed. */
  runnerMs: number;
  /** Sync run times, summed: the slots that did work. */
  busySlotMs: number;
  launched: number;
  /** Runners that exited having run nothing. */
  duplicates: number;
  lost: number;
}

/** One scaler's figures on one trace. */
export interface Figures {
  waitP50S: number;
  waitP95S: number;
  waitMaxS: number;
  runnerSeconds: number;
  efficiency: number;
  launched: number;
  duplicates: number;
  lost: number;
}

export function figures(outcome: PoolOutcome, concurrency: number): Figures {
  const s = (ms: number) => Math.round(ms / 100) / 10;
  return {
    waitP50S: s(percentile(outcome.waitsMs, 0.5)),
    waitP95S: s(percentile(outcome.waitsMs, 0.95)),
    waitMaxS: s(Math.max(0, ...outcome.waitsMs)),
    runnerSeconds: Math.round(outcome.runnerMs / 1000),
    efficiency: outcome.runnerMs > 0 ? Math.round((outcome.busySlotMs / (outcome.runnerMs * concurrency)) * 1000) / 1000 : 0,
    launched: outcome.launched,
    duplicates: outcome.duplicates,
    lost: outcome.lost,
  };
}

/** The KEDA configuration to beat: the lowest wait p95, then the fewest runner-seconds. */
export function fastestKeda<T extends { family: string; figures: Figures }>(rows: readonly T[]): T | undefined {
  return rows.filter((r) => r.family === 'keda').sort((a, b) => a.figures.waitP95S - b.figures.waitP95S || a.figures.runnerSeconds - b.figures.runnerSeconds)[0];
}

export interface Targets {
  p95: boolean;
  runnerSeconds: boolean;
  noDuplicates: boolean;
}

/** Issue 14's three targets against one KEDA configuration's figures on the same trace (0.7× in integers: 0.7 × 700 is below 490 in floating point). */
export function targets(f: Figures, keda: Figures): Targets {
  return { p95: f.waitP95S <= keda.waitP95S, runnerSeconds: f.runnerSeconds * 10 <= keda.runnerSeconds * 7, noDuplicates: f.duplicates === 0 && f.lost === 0 };
}

// --- Measured on a cluster ----------------------------------------------------------------------

/** A sync of the trace as its run record left it (times in ms since the epoch). */
export interface ObservedRun {
  /** Publish (the sync request's requestedAt). */
  requestedAt: number;
  status: string;
  runnerId?: string | undefined;
  startedAt?: number | undefined;
  finishedAt?: number | undefined;
}

/** One runner Job, as a watch on the runner Jobs and pods saw it (times in ms since the epoch, as seen). */
export interface ObservedRunner {
  job: string;
  /** Its pod, once seen: a KEDA-launched runner's id is its pod's name. */
  pod?: string | undefined;
  /** The pod's life: seen created → seen ended (Succeeded or Failed). No pod: nothing to count. */
  podCreatedAt?: number | undefined;
  podEndedAt?: number | undefined;
}

/**
 * The outcome of a replay on a cluster: the syncs' run records (undefined: no record, never
 * started) and the runners seen, `endAt` standing for the end of a runner still alive. A run
 * names its runner by its id, which is its Job's name (tidepool's launcher) or its pod's (KEDA's
 * Jobs share one template, so a runner takes its pod's name): both are matched. A duplicate is a
 * runner that ended without a run naming it; one still alive at `endAt` is not counted (it may
 * yet take a sync). Lost: syncs without a succeeded run.
 */
export function clusterOutcome(runs: readonly (ObservedRun | undefined)[], runners: readonly ObservedRunner[], endAt: number): PoolOutcome {
  const busy = new Set(runs.flatMap((r) => (r?.runnerId ? [r.runnerId] : [])));
  const waitsMs: number[] = [];
  let busySlotMs = 0;
  for (const r of runs) {
    if (r?.startedAt === undefined) continue;
    waitsMs.push(Math.max(0, r.startedAt - r.requestedAt));
    if (r.finishedAt !== undefined) busySlotMs += r.finishedAt - r.startedAt;
  }
  let runnerMs = 0;
  let duplicates = 0;
  for (const runner of runners) {
    if (runner.podCreatedAt !== undefined) runnerMs += Math.max(0, (runner.podEndedAt ?? endAt) - runner.podCreatedAt);
    const ranSomething = busy.has(runner.job) || (runner.pod !== undefined && busy.has(runner.pod));
    if (runner.podEndedAt !== undefined && !ranSomething) duplicates++;
  }
  return { waitsMs, runnerMs, busySlotMs, launched: runners.length, duplicates, lost: runs.filter((r) => r?.status !== 'succeeded').length };
}
