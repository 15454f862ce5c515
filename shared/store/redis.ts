// The Redis client every tidepool process uses, and the key layout under the prefix.
import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { backoffDelay } from '../backoff.js';

export function createRedis(url: string, logger: Logger, options: { lazyConnect?: boolean } = {}): Redis {
  const redis = new Redis(url, {
    lazyConnect: options.lazyConnect ?? false,
    // Reconnect for ever with jittered backoff; commands queue meanwhile (maxRetriesPerRequest
    // bounds how long one command waits before it fails back to its caller).
    retryStrategy: (times) => backoffDelay(times, { baseMs: 100, factor: 2, capMs: 3000 }),
    maxRetriesPerRequest: 20,
  });
  redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis error'));
  return redis;
}

/** Key names, all under `<prefix>:`. One place, so the layout is readable at a glance. */
export class Keys {
  constructor(readonly prefix: string) {}
  connection(id: string) { return `${this.prefix}:connection:${id}`; }
  connections() { return `${this.prefix}:connections`; }
  catalog(id: string) { return `${this.prefix}:catalog:${id}`; }
  state(id: string) { return `${this.prefix}:state:${id}`; }
  run(syncId: string) { return `${this.prefix}:run:${syncId}`; }
  runs() { return `${this.prefix}:runs`; }
  connectionRuns(id: string) { return `${this.prefix}:runs:connection:${id}`; }
  lock(connectionId: string) { return `${this.prefix}:lock:connection:${connectionId}`; }
  fence(connectionId: string) { return `${this.prefix}:fence:connection:${connectionId}`; }
  runner(id: string) { return `${this.prefix}:runner:${id}`; }
  runners() { return `${this.prefix}:runners`; }
  leader(role: string) { return `${this.prefix}:leader:${role}`; }
  series() { return `${this.prefix}:series`; }
}
