// The scalers the simulator compares, each reading only what it could read for real.
//
// tidepool: scaler/loop.ts's tick, calling the real pure policy (scaler/policy.ts): ready
// messages, in-flight syncs and running runners from heartbeats, starting = launched and not
// heartbeating yet, the launch token bucket, maxRunners.
//
// KEDA ScaledJob: its scaling logic as pkg/scaling/executor/scale_jobs.go (v2.x) and
// pkg/scaling/scaledjob/metrics.go state it: every pollingInterval, queueLength from the
// RabbitMQ trigger, maxScale = min(ceil(queueLength / value), maxReplicaCount), scaleTo =
// queueLength; runningJobCount = Jobs not finished (pending ones included), pendingJobCount =
// Jobs without a pod Running; then per strategy
//   default:  effective = maxScale − running                       create min(scaleTo, effective)
//   accurate: effective = maxReplicaCount − running if maxScale + running > maxReplicaCount,
//             else maxScale − pending                                create min(scaleTo, effective)
//   eager:    effective = min(maxReplicaCount − running − pending, maxScale)   create effective
// Two of the bugs users report follow from this logic as it stands: over AMQP the trigger sees
// only ready messages, so runners that took messages look idle and busy runners are subtracted
// from a queue that no longer counts their work (under-scaling: #6571, #7016, #5114); and a Job
// whose runner took nothing is still "running" until it exits, while `accurate` subtracts only
// pending ones, so a backlog seen again before the new runners take it is launched for twice
// (duplicates: #6157, #6727, #7329, #2488). In HTTP mode queueLength is ready + unacked, from the
// management API's statistics, which RabbitMQ refreshes every 5 s.
import { decideLaunches, refillTokens, spendTokens, type RateLimiterState } from '../../scaler/policy.js';
import type { PoolView, ScalerModel } from './pool-sim.js';
import { median } from './stats.js';

export interface TidepoolModelOptions {
  pollIntervalMs: number;
  concurrency: number;
  maxRunners: number;
  launchRate: number;
  launchBurst: number;
  runnerStartTimeoutMs: number;
  /**
   * Duration-aware launches (tried, not kept: see docs/benchmarks.md, Scaling policy): running syncs
   * expected to end within this horizon, by their connection's median duration so far, absorb
   * the backlog before the policy sees it. Absent: off.
   */
  freeingHorizonMs?: number;
}

export function tidepoolModel(options: TidepoolModelOptions): ScalerModel {
  let limiter: RateLimiterState = { tokens: options.launchBurst, updatedAt: 0 };
  return {
    intervalMs: options.pollIntervalMs,
    tick(view: PoolView): number {
      const heartbeating = view.runners.filter((r) => r.consumingAt <= view.now);
      const starting = view.runners.filter((r) => r.consumingAt > view.now && view.now - r.launchedAt < options.runnerStartTimeoutMs).length;
      const inFlight = heartbeating.reduce((sum, r) => sum + r.reportedInFlight, 0);
      limiter = refillTokens(limiter, view.now, options.launchRate, options.launchBurst);
      // Slots freed soon serve ready messages first: max(0, ready − soon − free) = max(0, (ready − soon) − free).
      const soon = options.freeingHorizonMs === undefined ? 0 : freeingSoon(view, heartbeating, options.freeingHorizonMs);
      const decision = decideLaunches({
        ready: Math.max(0, view.ready - soon),
        inFlight,
        running: heartbeating.length,
        starting,
        concurrency: options.concurrency,
        minRunners: 0,
        maxRunners: options.maxRunners,
        launchBudget: limiter.tokens,
      });
      limiter = spendTokens(limiter, decision.launch);
      return decision.launch;
    },
  };
}

/**
 * Running syncs expected to end within the horizon: started at s, of a connection whose median
 * duration so far is d, ending in [now, now + horizon]. No history, or already past its median:
 * not counted (its end is anyone's guess).
 */
export function freeingSoon(view: PoolView, runners: PoolView['runners'], horizonMs: number): number {
  let count = 0;
  for (const runner of runners) {
    for (const { connectionId, startedAt } of runner.running.values()) {
      const past = view.history.get(connectionId);
      if (!past || past.length === 0) continue;
      const end = startedAt + median(past);
      if (end >= view.now && end <= view.now + horizonMs) count++;
    }
  }
  return count;
}

export type KedaStrategy = 'default' | 'accurate' | 'eager';

export interface KedaModelOptions {
  strategy: KedaStrategy;
  /** amqp: the trigger sees ready messages; http: ready + unacked, from the management API. */
  mode: 'amqp' | 'http';
  pollingIntervalMs: number;
  maxReplicaCount: number;
  /** The trigger's `value`: messages per Job. */
  value: number;
  /** RabbitMQ's statistics refresh (collect_statistics_interval): how stale HTTP mode's counts are. */
  statsIntervalMs: number;
}

export function kedaModel(options: KedaModelOptions): ScalerModel {
  let sampled = { at: -Infinity, length: 0 };
  const queueLength = (view: PoolView): number => {
    if (options.mode === 'amqp') return view.ready;
    if (Math.floor(view.now / options.statsIntervalMs) !== Math.floor(sampled.at / options.statsIntervalMs)) {
      sampled = { at: view.now, length: view.ready + view.unacked };
    }
    return sampled.length;
  };
  return {
    intervalMs: options.pollingIntervalMs,
    tick(view: PoolView): number {
      const length = queueLength(view);
      if (length <= 0) return 0; // not active: no Jobs
      const max = options.maxReplicaCount;
      const maxScale = Math.min(Math.ceil(length / options.value), max);
      const running = view.runners.length;
      const pending = view.runners.filter((r) => r.podRunningAt > view.now).length;
      return Math.max(0, kedaJobsToCreate(options.strategy, { maxScale, scaleTo: length, running, pending, maxReplicaCount: max }));
    },
  };
}

/** scale_jobs.go's GetEffectiveMaxScale and createJobs, for one strategy. */
export function kedaJobsToCreate(strategy: KedaStrategy, s: { maxScale: number; scaleTo: number; running: number; pending: number; maxReplicaCount: number }): number {
  let effective: number;
  let scaleTo = s.scaleTo;
  if (strategy === 'default') effective = s.maxScale - s.running;
  else if (strategy === 'accurate') effective = s.maxScale + s.running > s.maxReplicaCount ? s.maxReplicaCount - s.running : s.maxScale - s.pending;
  else {
    effective = Math.min(s.maxReplicaCount - s.running - s.pending, s.maxScale);
    scaleTo = s.maxReplicaCount;
  }
  if (effective <= 0) return 0;
  return Math.min(scaleTo, effective);
}
