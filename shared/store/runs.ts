// Run records: one per sync (the latest attempt), with a recent-runs index overall and per
// connection. The runner writes the record before it acks, so an acked sync always has one.
import type { Redis } from 'ioredis';
import type { FailureInfo } from '../errors.js';
import type { Keys } from './redis.js';

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'dead_lettered' | 'requeued';
export const RUN_STATUSES: readonly RunStatus[] = ['running', 'succeeded', 'failed', 'dead_lettered', 'requeued'];
/** Statuses after which the sync will not run again by itself. */
export const FINAL_STATUSES: ReadonlySet<RunStatus> = new Set(['succeeded', 'dead_lettered']);

export interface StreamStats {
  records: number;
  bytes: number;
}

export interface RunRecord {
  syncId: string;
  connectionId: string;
  status: RunStatus;
  attempt: number;
  runnerId: string;
  fullRefresh: boolean;
  requestedAt: string;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  /** Time from the request to the first record read from the source. */
  firstRecordMs?: number;
  records: number;
  bytes: number;
  streams: Record<string, StreamStats>;
  stateCommits: number;
  stateVersion?: number;
  error?: FailureInfo;
}

export interface RunQuery {
  connectionId?: string;
  status?: RunStatus;
  limit?: number;
}

export class RunStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly kept: number,
  ) {}

  async put(run: RunRecord): Promise<void> {
    const score = Date.parse(run.startedAt);
    await this.redis
      .multi()
      .set(this.keys.run(run.syncId), JSON.stringify(run))
      .zadd(this.keys.runs(), score, run.syncId)
      .zadd(this.keys.connectionRuns(run.connectionId), score, run.syncId)
      .exec();
    await this.trim();
  }

  async get(syncId: string): Promise<RunRecord | undefined> {
    const json = await this.redis.get(this.keys.run(syncId));
    return json === null ? undefined : (JSON.parse(json) as RunRecord);
  }

  async getMany(syncIds: readonly string[]): Promise<(RunRecord | undefined)[]> {
    if (syncIds.length === 0) return [];
    const values = await this.redis.mget(syncIds.map((id) => this.keys.run(id)));
    return values.map((v) => (v === null ? undefined : (JSON.parse(v) as RunRecord)));
  }

  /** Most recent first. */
  async list(query: RunQuery = {}): Promise<RunRecord[]> {
    const limit = query.limit ?? 20;
    const index = query.connectionId ? this.keys.connectionRuns(query.connectionId) : this.keys.runs();
    const out: RunRecord[] = [];
    // Page through the index so a status filter still fills `limit` rows.
    for (let start = 0; out.length < limit; start += 200) {
      const ids = await this.redis.zrevrange(index, start, start + 199);
      if (ids.length === 0) break;
      for (const run of await this.getMany(ids)) {
        if (run && (!query.status || run.status === query.status)) out.push(run);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  private async trim(): Promise<void> {
    const excess = (await this.redis.zcard(this.keys.runs())) - this.kept;
    if (excess <= 0) return;
    const old = await this.redis.zrange(this.keys.runs(), 0, excess - 1);
    if (old.length === 0) return;
    const records = await this.getMany(old);
    const tx = this.redis.multi().zrem(this.keys.runs(), ...old).del(...old.map((id) => this.keys.run(id)));
    // Each run is also in its connection's index: remove it there too, or those indexes grow.
    records.forEach((r, i) => {
      if (r) tx.zrem(this.keys.connectionRuns(r.connectionId), old[i]!);
    });
    await tx.exec();
  }
}
