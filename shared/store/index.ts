// The Redis store: one client, one key layout, one class per kind of record.
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { ConnectionStore } from './connections.js';
import { LockStore } from './locks.js';
import { Keys } from './redis.js';
import { RunStore } from './runs.js';
import { RunnerRegistry } from './runners.js';
import { SeriesStore } from './series.js';
import { SpecStore } from './specs.js';
import { StateStore } from './state.js';

export interface Store {
  redis: Redis;
  keys: Keys;
  connections: ConnectionStore;
  state: StateStore;
  runs: RunStore;
  locks: LockStore;
  runners: RunnerRegistry;
  series: SeriesStore;
  specs: SpecStore;
}

export function createStore(redis: Redis, config: Pick<Config, 'prefix' | 'runsKept' | 'heartbeatTtl'>): Store {
  const keys = new Keys(config.prefix);
  return {
    redis,
    keys,
    connections: new ConnectionStore(redis, keys),
    state: new StateStore(redis, keys),
    runs: new RunStore(redis, keys, config.runsKept),
    locks: new LockStore(redis, keys),
    runners: new RunnerRegistry(redis, keys, config.heartbeatTtl),
    series: new SeriesStore(redis, keys),
    specs: new SpecStore(redis, keys),
  };
}
