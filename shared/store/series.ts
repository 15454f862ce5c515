// A short time series of what the scaler sees each poll (queue depth, runners), kept in Redis
// so a dashboard opened late still shows the last hour.
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';

export interface Sample {
  t: number;
  ready: number;
  inFlight: number;
  running: number;
  starting: number;
  launched: number;
}

export class SeriesStore {
  constructor(private readonly redis: Redis, private readonly keys: Keys, private readonly maxSamples = 3600) {}

  async add(sample: Sample): Promise<void> {
    await this.redis.multi().lpush(this.keys.series(), JSON.stringify(sample)).ltrim(this.keys.series(), 0, this.maxSamples - 1).exec();
  }

  /** Oldest first, from `since` (epoch ms). */
  async since(since: number): Promise<Sample[]> {
    const values = await this.redis.lrange(this.keys.series(), 0, this.maxSamples - 1);
    return values.map((v) => JSON.parse(v) as Sample).filter((s) => s.t >= since).reverse();
  }
}
