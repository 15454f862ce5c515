// Runner heartbeats: each runner says every heartbeatInterval that it is alive, how many syncs
// it can run and how many it is running. The scaler counts running runners and in-flight syncs
// from these, whatever launched the runners.
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';

export interface RunnerHeartbeat {
  runnerId: string;
  host: string;
  pid: number;
  concurrency: number;
  inFlight: number;
  syncsDone: number;
  state: 'consuming' | 'draining';
  startedAt: string;
  lastBeatAt: string;
}

export class RunnerRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly ttlMs: number,
  ) {}

  async beat(heartbeat: RunnerHeartbeat): Promise<void> {
    const now = Date.now();
    await this.redis
      .multi()
      .set(this.keys.runner(heartbeat.runnerId), JSON.stringify(heartbeat), 'PX', this.ttlMs)
      .zadd(this.keys.runners(), now, heartbeat.runnerId)
      .zremrangebyscore(this.keys.runners(), '-inf', now - this.ttlMs * 10)
      .exec();
  }

  async remove(runnerId: string): Promise<void> {
    await this.redis.multi().del(this.keys.runner(runnerId)).zrem(this.keys.runners(), runnerId).exec();
  }

  /** Runners whose last heartbeat is within the TTL. */
  async alive(): Promise<RunnerHeartbeat[]> {
    const ids = await this.redis.zrangebyscore(this.keys.runners(), Date.now() - this.ttlMs, '+inf');
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => this.keys.runner(id)));
    return values.flatMap((v) => (v === null ? [] : [JSON.parse(v) as RunnerHeartbeat]));
  }
}
