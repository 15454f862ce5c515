// A short time series of what the scaler sees each poll (queue depth, runners), kept in Redis
// so a dashboard opened late still shows the last hour.
import type { Redis } from 'ioredis';
import type { Keys } from './redis.js';

export interface Sample {
  t: number;
  ready: number;
  inFlight: number;
  /** Letters in the dead-letter queue (absent in samples written before the scaler recorded it). */
  dead?: number;
  running: number;
  starting: number;
  launched: number;
}

/** Ends of sync executions counted per minute (RunStore.put): what "syncs per minute" charts. */
export const COUNTED_OUTCOMES = ['succeeded', 'retrying', 'dead_lettered'] as const;
export type CountedOutcome = (typeof COUNTED_OUTCOMES)[number];

export interface MinuteCounts extends Record<CountedOutcome, number> {
  /** Start of the minute, epoch ms. */
  t: number;
}

/** Per-minute counters live a little over the hour the dashboard shows. */
export const MINUTE_COUNTS_TTL_MS = 2 * 3600_000;

/** The hash counting the outcomes of the minute starting at `minuteStart` (epoch ms). */
export function minuteCountsKey(keys: Keys, minuteStart: number): string {
  return `${keys.series()}:syncs:${minuteStart}`;
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

  /** Sync outcomes per minute for every minute from the one holding `since` to the one holding `until`, oldest first. */
  async minuteCounts(since: number, until: number): Promise<MinuteCounts[]> {
    const minutes: number[] = [];
    for (let t = Math.floor(since / 60_000) * 60_000; t <= until; t += 60_000) minutes.push(t);
    if (minutes.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const t of minutes) pipeline.hgetall(minuteCountsKey(this.keys, t));
    const replies = (await pipeline.exec()) ?? [];
    return minutes.map((t, i) => {
      const [err, hash] = replies[i] ?? [null, {}];
      if (err) throw err;
      const h = (hash ?? {}) as Record<string, string>;
      return { t, succeeded: Number(h.succeeded ?? 0), retrying: Number(h.retrying ?? 0), dead_lettered: Number(h.dead_lettered ?? 0) };
    });
  }
}
