// The scaling loop's settings, compiled once from the configuration: what the loop reads to
// decide, in the units it uses. (Its broker connection takes the broker's settings itself.)
import type { Config } from '../shared/config.js';
import type { ScalingInput } from './policy.js';

export interface ScalerSettings {
  pollIntervalMs: number;
  /** A launched runner without a first heartbeat after this long no longer counts as starting. */
  runnerStartTimeoutMs: number;
  /** The policy's bounds. */
  limits: Pick<ScalingInput, 'concurrency' | 'minRunners' | 'maxRunners'>;
  /** Launches per second, sustained, and the burst allowed above it (a token bucket). */
  launchRate: { perSecond: number; burst: number };
  /** How long the default leader lock (Redis) lives without renewal. */
  leaderTtlMs: number;
}

type ScalerConfig = Pick<Config, 'pollInterval' | 'runnerStartTimeout' | 'concurrency' | 'minRunners' | 'maxRunners' | 'launchRate' | 'launchBurst' | 'leaderTtl'>;

export function scalerSettings(config: ScalerConfig): ScalerSettings {
  return {
    pollIntervalMs: config.pollInterval,
    runnerStartTimeoutMs: config.runnerStartTimeout,
    limits: { concurrency: config.concurrency, minRunners: config.minRunners, maxRunners: config.maxRunners },
    launchRate: { perSecond: config.launchRate, burst: config.launchBurst },
    leaderTtlMs: config.leaderTtl,
  };
}
