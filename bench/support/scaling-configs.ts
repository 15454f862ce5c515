// The scaler configurations the scaling simulator compares: tidepool as shipped and with each
// lever, and KEDA's ScaledJob strategies × trigger modes × polling intervals. Each config makes
// a fresh scaler (and leave rule) per trace: they keep state (a token bucket, sampled stats).
import { ARRIVAL_WINDOW_MS } from '../../runner/early-leave.js';
import { decideLeave, type LeaveSettings } from '../../runner/idle.js';
import type { LeaveModel, ScalerModel } from './pool-sim.js';
import { kedaModel, tidepoolModel, type KedaStrategy, type TidepoolModelOptions } from './scaler-models.js';

export interface ScalerConfig {
  name: string;
  family: 'tidepool' | 'keda';
  scaler: () => ScalerModel;
  /** The runners' early-leave rule; absent: the idle timeout alone. */
  leave?: () => LeaveModel;
}

const CONCURRENCY = 2;
/** Issue 14's pool; bench:scaling's cluster trace is replayed with 8 (scalerConfigs). */
export const MAX_RUNNERS = 40;
const IDLE_TIMEOUT_MS = 30_000;

const SHIPPED: Omit<TidepoolModelOptions, 'maxRunners'> = { pollIntervalMs: 1_000, concurrency: CONCURRENCY, launchRate: 2, launchBurst: 4, runnerStartTimeoutMs: 120_000 };

/** What the runner reads for the adaptive rule: heartbeats (reported in-flight), ready, runs started recently. */
export function adaptiveLeave(settings: LeaveSettings, windowMs: number): () => LeaveModel {
  return () => (runner, view) =>
    decideLeave(
      {
        runnerId: runner.id,
        concurrency: CONCURRENCY,
        idleForMs: view.now - (runner.idleSince ?? view.now),
        ready: view.ready,
        pool: view.runners.filter((r) => r.consumingAt <= view.now).map((r) => ({ runnerId: r.id, concurrency: CONCURRENCY, inFlight: r.reportedInFlight, syncsDone: r.syncsDone })),
        recentStarts: view.recentStarts(windowMs),
        windowMs,
      },
      settings,
    ).leave;
}

function tidepool(name: string, maxRunners: number, overrides: Partial<TidepoolModelOptions>, leave?: () => LeaveModel): ScalerConfig {
  return { name, family: 'tidepool', scaler: () => tidepoolModel({ ...SHIPPED, maxRunners, ...overrides }), ...(leave ? { leave } : {}) };
}

/** One of the ScaledJob configurations issue 14 compares tidepool with. */
export interface KedaConfig {
  strategy: KedaStrategy;
  mode: 'amqp' | 'http';
  /** KEDA's default is 30 s. */
  pollingIntervalS: number;
}

/** Every strategy × trigger mode × polling interval (30 s, 1 s): the simulator's models and the cluster bench's ScaledJobs alike. */
export const KEDA_CONFIGS: KedaConfig[] = (['default', 'accurate', 'eager'] as const).flatMap((strategy) =>
  (['amqp', 'http'] as const).flatMap((mode) => [30, 1].map((pollingIntervalS) => ({ strategy, mode, pollingIntervalS }))),
);

export const kedaConfigName = (c: KedaConfig): string => `keda ${c.strategy} ${c.mode} ${c.pollingIntervalS}s`;

function keda(c: KedaConfig, maxRunners: number): ScalerConfig {
  return {
    name: kedaConfigName(c),
    family: 'keda',
    scaler: () => kedaModel({ strategy: c.strategy, mode: c.mode, pollingIntervalMs: c.pollingIntervalS * 1000, maxReplicaCount: maxRunners, value: CONCURRENCY, statsIntervalMs: 5_000 }),
  };
}

/** TIDEPOOL_IDLE_MINIMUM=5s with the default TIDEPOOL_RUNNER_START_ESTIMATE (10 s) and the runner's one-minute arrival window. */
const LEAVE: LeaveSettings = { idleTimeoutMs: IDLE_TIMEOUT_MS, idleMinimumMs: 5_000, refillMs: 10_000, minRunners: 0 };
const NOW = { launchRate: 5, launchBurst: 10 };

/** Every configuration, for a pool of at most `maxRunners` (tidepool's maxRunners, KEDA's maxReplicaCount). */
export function scalerConfigs(maxRunners = MAX_RUNNERS): ScalerConfig[] {
  return [
    tidepool('tidepool before (rate 2/s burst 4)', maxRunners, {}),
    tidepool('tidepool rate unlimited', maxRunners, { launchRate: 1000, launchBurst: maxRunners }),
    tidepool('tidepool defaults (rate 5/s burst 10)', maxRunners, NOW),
    tidepool('tidepool + idleMinimum 5s', maxRunners, NOW, adaptiveLeave(LEAVE, ARRIVAL_WINDOW_MS)),
    tidepool('tidepool + duration-aware (not kept)', maxRunners, { ...NOW, freeingHorizonMs: 8_000 }, adaptiveLeave(LEAVE, ARRIVAL_WINDOW_MS)),
    ...KEDA_CONFIGS.map((c) => keda(c, maxRunners)),
  ];
}

export const SCALER_CONFIGS: ScalerConfig[] = scalerConfigs();
