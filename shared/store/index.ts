// The Redis store: one client, one key layout, one class per kind of record.
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { StoreError, TidepoolError } from '../errors.js';
import { CancelStore } from './cancels.js';
import { ConnectionStore } from './connections.js';
import { LockStore } from './locks.js';
import { Outbox } from './outbox.js';
import { Keys } from './redis.js';
import { RunStore } from './runs.js';
import { RunnerRegistry } from './runners.js';
import { ScheduleStore } from './schedules.js';
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
  outbox: Outbox;
  cancels: CancelStore;
  schedules: ScheduleStore;
}

export function createStore(redis: Redis, config: Pick<Config, 'prefix' | 'runsKept' | 'heartbeatTtl'>): Store {
  const keys = new Keys(config.prefix);
  return {
    redis,
    keys,
    connections: storeErrors(new ConnectionStore(redis, keys)),
    state: storeErrors(new StateStore(redis, keys)),
    runs: storeErrors(new RunStore(redis, keys, config.runsKept)),
    locks: storeErrors(new LockStore(redis, keys)),
    runners: storeErrors(new RunnerRegistry(redis, keys, config.heartbeatTtl)),
    series: storeErrors(new SeriesStore(redis, keys)),
    specs: storeErrors(new SpecStore(redis, keys)),
    outbox: storeErrors(new Outbox(redis, keys)),
    cancels: storeErrors(new CancelStore(redis, keys)),
    schedules: storeErrors(new ScheduleStore(redis, keys)),
  };
}

/**
 * Every failure of a store method reaches its caller as a StoreError (origin `store`), or as the
 * TidepoolError the store threw on purpose (LockLostError): a Redis connection reset in the
 * middle of a sync is the store's failure, not the runner's, in the run record and the
 * dead-letter headers alike.
 */
export function storeErrors<T extends object>(store: T): T {
  const wrap = (err: unknown): TidepoolError => (err instanceof TidepoolError ? err : new StoreError(err instanceof Error ? err.message : String(err), { cause: err }));
  return new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        try {
          const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
          return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(wrap(err))) : result;
        } catch (err) {
          throw wrap(err);
        }
      };
    },
  });
}
