// One scaler leads at a time (local mode): a Redis key with a TTL, renewed every loop by its
// holder. A scaler that stops renewing (crashed, partitioned) loses it after the TTL.
import type { Redis } from 'ioredis';
import type { Leadership } from './leadership.js';

const ACQUIRE_OR_RENEW = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

const RESIGN = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type LeaderRedis = Redis & {
  tpLeaderAcquire(key: string, owner: string, ttl: number): Promise<number>;
  tpLeaderResign(key: string, owner: string): Promise<number>;
};

export class LeaderLock implements Leadership {
  private readonly redis: LeaderRedis;

  constructor(redis: Redis, private readonly key: string, private readonly owner: string, private readonly ttlMs: number) {
    if (!('tpLeaderAcquire' in redis)) {
      redis.defineCommand('tpLeaderAcquire', { numberOfKeys: 1, lua: ACQUIRE_OR_RENEW });
      redis.defineCommand('tpLeaderResign', { numberOfKeys: 1, lua: RESIGN });
    }
    this.redis = redis as LeaderRedis;
  }

  /** True while this owner leads; call at least once per TTL. */
  async acquireOrRenew(): Promise<boolean> {
    return (await this.redis.tpLeaderAcquire(this.key, this.owner, this.ttlMs)) === 1;
  }

  async resign(): Promise<void> {
    await this.redis.tpLeaderResign(this.key, this.owner);
  }

  async holder(): Promise<string | undefined> {
    return (await this.redis.get(this.key)) ?? undefined;
  }
}
