// Committed state per connection: the checkpoints the destination has confirmed, versioned.
// Commits are fenced by the connection lock, so a runner that lost its lock cannot overwrite
// the state of the runner that took over.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LockLostError } from '../errors.js';
import type { AirbyteStateMessage } from '../protocol.js';
import type { LockHandle } from './locks.js';
import type { Keys } from './redis.js';

export interface CommittedState {
  version: number;
  state: AirbyteStateMessage[];
  updatedAt: string;
  syncId: string;
}

// ARGV[5] is an id of this commit: a client that lost the reply sends the command again after
// reconnecting (ioredis resends unanswered commands, shared/store/redis.ts), and that repeat
// must not make a second version.
const COMMIT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('HGET', KEYS[2], 'commitId') == ARGV[5] then return tonumber(redis.call('HGET', KEYS[2], 'version')) end
local version = redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('HSET', KEYS[2], 'state', ARGV[2], 'updatedAt', ARGV[3], 'syncId', ARGV[4], 'commitId', ARGV[5])
return version`;

type StateRedis = Redis & {
  tpStateCommit(lock: string, state: string, value: string, json: string, at: string, syncId: string, commitId: string): Promise<number>;
};

export class StateStore {
  private readonly redis: StateRedis;

  constructor(redis: Redis, private readonly keys: Keys) {
    if (!('tpStateCommit' in redis)) redis.defineCommand('tpStateCommit', { numberOfKeys: 2, lua: COMMIT });
    this.redis = redis as StateRedis;
  }

  async get(connectionId: string): Promise<CommittedState | undefined> {
    const h = await this.redis.hgetall(this.keys.state(connectionId));
    if (!h.state) return undefined;
    return {
      version: Number(h.version ?? 0),
      state: JSON.parse(h.state) as AirbyteStateMessage[],
      updatedAt: h.updatedAt ?? '',
      syncId: h.syncId ?? '',
    };
  }

  /** Commits a new state if `lock` still holds; returns the new version. */
  async commit(lock: LockHandle, state: AirbyteStateMessage[], syncId: string): Promise<number> {
    const version = await this.redis.tpStateCommit(
      this.keys.lock(lock.connectionId),
      this.keys.state(lock.connectionId),
      lock.value,
      JSON.stringify(state),
      new Date().toISOString(),
      syncId,
      randomUUID(),
    );
    // Another runner holds the connection now (this one's lock ran out): the write is refused
    // in Lua, and this runner must stop writing.
    if (version < 0) throw new LockLostError(lock.connectionId);
    return version;
  }

  async reset(connectionId: string): Promise<void> {
    await this.redis.del(this.keys.state(connectionId));
  }
}
