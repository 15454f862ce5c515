// Run records: one per sync (its latest attempt, with a summary of the earlier ones), with a
// recent-runs index overall and per connection. The runner writes the record before it acks, so
// an acked sync always has one.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { TidepoolError, type FailureInfo } from '../errors.js';
import type { CancelMarker } from './cancels.js';
import type { Keys } from './redis.js';
import { COUNTED_OUTCOMES, MINUTE_COUNTS_TTL_MS, minuteCountsKey } from './series.js';

/**
 * - running: an attempt is under way.
 * - succeeded: done (final).
 * - failed: the attempt failed and the runner is settling the message; it becomes retrying or
 *   dead_lettered a moment later (or, if the runner dies first, the broker redelivers it).
 * - retrying: the attempt failed with a retryable error and the sync waits in a delay queue
 *   until `retryAt` for its next attempt; `error` says why.
 * - dead_lettered: in the dead-letter queue, waiting for an operator (final).
 * - requeued: handed back to the queue unfinished (runner shutdown, connection lock busy): not
 *   a failure, and it does not use up an attempt.
 * - cancelled: an operator cancelled it (`cancelled` says who and when): acked without running
 *   if it was still queued, stopped if it was running; neither retried nor dead-lettered (final).
 */
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'retrying' | 'dead_lettered' | 'requeued' | 'cancelled';
export const RUN_STATUSES: readonly RunStatus[] = ['running', 'succeeded', 'failed', 'retrying', 'dead_lettered', 'requeued', 'cancelled'];
/** Statuses after which the sync will not run again by itself. */
export const FINAL_STATUSES: ReadonlySet<RunStatus> = new Set(['succeeded', 'dead_lettered', 'cancelled']);

/** Earlier executions of a sync kept in its record (retries and requeues), oldest first. */
export const PREVIOUS_ATTEMPTS_KEPT = 20;

/** What is kept of an earlier execution of the same sync. */
export interface AttemptSummary {
  attempt: number;
  status: RunStatus;
  runnerId: string;
  startedAt: string;
  finishedAt?: string;
  durationMs?: number;
  records: number;
  retryAt?: string;
  error?: FailureInfo;
}

export interface StreamStats {
  records: number;
  bytes: number;
}

/** Exactly which connector program a run used (runner/sync/spec.ts). */
export interface ConnectorIdentity {
  /** `source-faker@0.1.0` (a reference connector), the resolved program path and arguments (a command), or the image reference. */
  ref: string;
  /** Fingerprint of the program: its version and bytes, or the image reference. */
  fingerprint: string;
  /** The version the definition states, if any. */
  version?: string;
  /** The exact image that ran (digest or image id), when the platform said. */
  image?: string;
}

/**
 * Where a run's time went, in order; each phase starts where the one before ended, so together
 * they cover the sync from its publish to its end:
 * - queued: publish (or the moment a retry, a deferral or a replay put it back) → delivered to a runner;
 * - lockWait: delivered → its connection's lock held;
 * - preparing: lock held → connectors launched to read and write (specs, check, discover, state);
 * - starting: connectors launched → the source's first output byte (pods scheduled and started);
 * - reading: the source's first output → its output ended;
 * - committing: the source's output ended (its last STATE forwarded) → the destination's output ended;
 * - finishing: the destination's output ended → the run recorded (connectors cleaned up, pods
 *   deleted, the last state committed).
 * "Output ended" rather than the process's exit: a pod's exit is known only after the platform
 * reports it, which belongs to finishing, not to the connector's work.
 */
export const PHASES = ['queued', 'lockWait', 'preparing', 'starting', 'reading', 'committing', 'finishing'] as const;
export type Phase = (typeof PHASES)[number];

/** A duration a stored record holds, if it is one (finite, not negative): records are read back from Redis, where anything can be. */
export function recordedMs(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** How one connector of the read/write came up, in ms from its launch (what its platform reports). */
export interface ConnectorStartTimes {
  /** Kubernetes: the pod was bound to a node. */
  scheduledMs?: number;
  /** The connector's process (container) was running. */
  startedMs?: number;
  /** Kubernetes: the pod's stdout connection to the runner was made. */
  connectedMs?: number;
}

/** Phase durations in ms (a phase the run never reached is absent), and the connectors' start steps. */
export type RunPhases = Partial<Record<Phase, number>> & {
  connectorStart?: Partial<Record<'source' | 'destination', ConnectorStartTimes>>;
};

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
  /** When status is retrying: when the next attempt is due (it starts once a runner is free). */
  retryAt?: string;
  /** Earlier executions of this sync, oldest first (maintained by RunStore.put). */
  previousAttempts?: AttemptSummary[];
  /** The exact connector programs this attempt ran (known once their specs are). */
  connectors?: { source: ConnectorIdentity; destination: ConnectorIdentity };
  /** The connection's version (connections history) this attempt ran. */
  connectionVersion?: number;
  /** When status is cancelled: who cancelled it, and when they asked. */
  cancelled?: CancelMarker;
  /** Where the time went (see PHASES); filled in as the run goes. */
  phases?: RunPhases;
}

/** A listing's records, and the keys of the records in its range that did not parse. */
export interface RunListing {
  runs: RunRecord[];
  corrupt: string[];
}

/**
 * A stored run record that does not parse: anyone who can write to Redis can put anything there.
 * Not retryable: reading it again gives the same bytes (the next put overwrites them).
 */
export class CorruptRecordError extends TidepoolError {
  override name = 'CorruptRecordError';
  constructor(
    readonly key: string,
    why: string,
  ) {
    super(`corrupt record at ${key}: ${why}`, false, 'store', 'system_error');
  }
}

// The fields every reader of a record relies on (tables, filters, trim, attempt history); the
// rest pass through as stored.
const storedRun = z.looseObject({
  syncId: z.string(),
  connectionId: z.string(),
  status: z.enum(RUN_STATUSES as [RunStatus, ...RunStatus[]]),
  attempt: z.number(),
  runnerId: z.string(),
  startedAt: z.string(),
  records: z.number(),
  bytes: z.number(),
  streams: z.record(z.string(), z.looseObject({ records: z.number(), bytes: z.number() })),
  previousAttempts: z.array(z.looseObject({ attempt: z.number(), status: z.string() })).optional(),
});

/** A stored record: the record, or why it is not one. */
function decode(json: string): { run: RunRecord } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    // Not the parser's message: it quotes the stored text, which may hold anything.
    return { problem: 'not JSON' };
  }
  const parsed = storedRun.safeParse(value);
  if (!parsed.success) return { problem: parsed.error.issues.map((i) => `${i.path.join('.') || 'record'}: ${i.message}`).join('; ') };
  return { run: parsed.data as unknown as RunRecord };
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

  /**
   * Writes a sync's record. A record of a new execution (another attempt, or the same one
   * redelivered) moves the stored one into previousAttempts. Read-then-write without a
   * transaction: a sync's record is written only by the runner holding its message, one write
   * after another, so there is no concurrent writer whose update this could lose.
   */
  async put(run: RunRecord): Promise<void> {
    const score = Date.parse(run.startedAt);
    // A corrupt stored record is overwritten, without history: it has none worth keeping.
    const [stored] = await this.getMany([run.syncId]);
    const previousAttempts = stored ? attemptHistory(stored, run) : run.previousAttempts;
    const record: RunRecord = { ...run };
    delete record.previousAttempts;
    if (previousAttempts && previousAttempts.length > 0) record.previousAttempts = previousAttempts;
    const tx = this.redis
      .multi()
      .set(this.keys.run(run.syncId), JSON.stringify(record))
      .zadd(this.keys.runs(), score, run.syncId)
      .zadd(this.keys.connectionRuns(run.connectionId), score, run.syncId);
    // The dashboard's "syncs per minute": an execution's end, counted once (not again when
    // the same record is written twice) in the minute it is recorded.
    if (isCountedOutcome(run.status) && !(stored && stored.status === run.status && stored.attempt === run.attempt && stored.startedAt === run.startedAt)) {
      const key = minuteCountsKey(this.keys, Math.floor(Date.now() / 60_000) * 60_000);
      tx.hincrby(key, run.status, 1).pexpire(key, MINUTE_COUNTS_TTL_MS);
    }
    await tx.exec();
    await this.trim();
  }

  /** The sync's record; a record that does not parse is a CorruptRecordError naming its key. */
  async get(syncId: string): Promise<RunRecord | undefined> {
    const key = this.keys.run(syncId);
    const json = await this.redis.get(key);
    if (json === null) return undefined;
    const stored = decode(json);
    if ('problem' in stored) throw new CorruptRecordError(key, stored.problem);
    return stored.run;
  }

  /** Records by sync id, in order; a missing or corrupt one is undefined. */
  async getMany(syncIds: readonly string[]): Promise<(RunRecord | undefined)[]> {
    return (await this.read(syncIds)).map((r) => r?.run);
  }

  /** How many runs started after `sinceMs` (epoch ms): the recent arrival rate, read by idle runners (runner/idle.ts). */
  async startedSince(sinceMs: number): Promise<number> {
    return this.redis.zcount(this.keys.runs(), `(${sinceMs}`, '+inf');
  }

  /** Most recent first; records that do not parse are left out. */
  async list(query: RunQuery = {}): Promise<RunRecord[]> {
    return (await this.listing(query)).runs;
  }

  /**
   * Most recent first, with the keys of the records in range that do not parse: one corrupt
   * record (a stray write to Redis) is left out and reported, not the end of the listing.
   */
  async listing(query: RunQuery = {}): Promise<RunListing> {
    const limit = query.limit ?? 20;
    const index = query.connectionId ? this.keys.connectionRuns(query.connectionId) : this.keys.runs();
    const out: RunListing = { runs: [], corrupt: [] };
    // Page through the index so a status filter still fills `limit` rows.
    for (let start = 0; out.runs.length < limit; start += 200) {
      const ids = await this.redis.zrevrange(index, start, start + 199);
      if (ids.length === 0) break;
      for (const stored of await this.read(ids)) {
        if (stored?.corrupt !== undefined) out.corrupt.push(stored.corrupt);
        const run = stored?.run;
        if (run && (!query.status || run.status === query.status)) out.runs.push(run);
        if (out.runs.length >= limit) break;
      }
    }
    return out;
  }

  /** One MGET: each id's record, or the key of a record that does not parse, or undefined if there is none. */
  private async read(syncIds: readonly string[]): Promise<({ run: RunRecord; corrupt?: undefined } | { run?: undefined; corrupt: string } | undefined)[]> {
    if (syncIds.length === 0) return [];
    const keys = syncIds.map((id) => this.keys.run(id));
    const values = await this.redis.mget(keys);
    return values.map((json, i) => {
      if (json === null) return undefined;
      const stored = decode(json);
      return 'problem' in stored ? { corrupt: keys[i]! } : { run: stored.run };
    });
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

function isCountedOutcome(status: RunStatus): status is (typeof COUNTED_OUTCOMES)[number] {
  return (COUNTED_OUTCOMES as readonly string[]).includes(status);
}

/**
 * The previousAttempts of `next` given the `stored` record of the same sync: unchanged while
 * `next` is the same execution (same attempt, same start), else the stored one appended.
 */
export function attemptHistory(stored: RunRecord, next: RunRecord): AttemptSummary[] | undefined {
  const earlier = stored.previousAttempts ?? [];
  if (stored.attempt === next.attempt && stored.startedAt === next.startedAt) return earlier.length > 0 ? earlier : undefined;
  return [...earlier, summarize(stored)].slice(-PREVIOUS_ATTEMPTS_KEPT);
}

function summarize(r: RunRecord): AttemptSummary {
  return {
    attempt: r.attempt,
    status: r.status,
    runnerId: r.runnerId,
    startedAt: r.startedAt,
    ...(r.finishedAt !== undefined ? { finishedAt: r.finishedAt } : {}),
    ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}),
    records: r.records,
    ...(r.retryAt !== undefined ? { retryAt: r.retryAt } : {}),
    ...(r.error !== undefined ? { error: summarizeError(r.error) } : {}),
  };
}

/** Stderr lines kept per connector in an earlier attempt's error (the latest attempt keeps stderrTailLines). */
const PREVIOUS_STDERR_LINES = 10;

function summarizeError(e: FailureInfo): FailureInfo {
  if (!e.stderr) return e;
  const stderr: NonNullable<FailureInfo['stderr']> = {};
  if (e.stderr.source) stderr.source = e.stderr.source.slice(-PREVIOUS_STDERR_LINES);
  if (e.stderr.destination) stderr.destination = e.stderr.destination.slice(-PREVIOUS_STDERR_LINES);
  return { ...e, stderr };
}
