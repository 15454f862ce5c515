// Per-connection lock with a fencing token: no two syncs of one connection at once, and a runner
// whose lock ran out (it stalled, or died) cannot write once another has taken over — every
// fenced write checks that the lock still holds the writer's token, atomically, in Lua.
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';

export interface LockHandle {
  connectionId: string;
  token: number;
  owner: string;
  /** The exact value stored under the lock key; fenced writes compare against it. */
  value: string;
}

const ACQUIRE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return nil end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type LockRedis = Redis & {
  tpLockAcquire(lock: string, fence: string, owner: string, ttl: number): Promise<number | null>;
  tpLockRenew(lock: string, value: string, ttl: number): Promise<number>;
  tpLockRelease(lock: string, value: string): Promise<number>;
};

export class LockStore {
  private readonly redis: LockRedis;

  constructor(redis: Redis, private readonly keys: Keys) {
    if (!('tpLockAcquire' in redis)) {
      redis.defineCommand('tpLockAcquire', { numberOfKeys: 2, lua: ACQUIRE });
      redis.defineCommand('tpLockRenew', { numberOfKeys: 1, lua: RENEW });
      redis.defineCommand('tpLockRelease', { numberOfKeys: 1, lua: RELEASE });
    }
    this.redis = redis as LockRedis;
  }

  async tryAcquire(connectionId: string, owner: string, ttlMs: number): Promise<LockHandle | undefined> {
    const token = await this.redis.tpLockAcquire(this.keys.lock(connectionId), this.keys.fence(connectionId), owner, ttlMs);
    if (token === null) return undefined;
    return { connectionId, token, owner, value: `${token}:${owner}` };
  }

  /** False when the lock is no longer ours. */
  async renew(lock: LockHandle, ttlMs: number): Promise<boolean> {
    return (await this.redis.tpLockRenew(this.keys.lock(lock.connectionId), lock.value, ttlMs)) === 1;
  }

  async release(lock: LockHandle): Promise<boolean> {
    return (await this.redis.tpLockRelease(this.keys.lock(lock.connectionId), lock.value)) === 1;
  }

  async holder(connectionId: string): Promise<string | undefined> {
    return (await this.redis.get(this.keys.lock(connectionId))) ?? undefined;
  }
}
