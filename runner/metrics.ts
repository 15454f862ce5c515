// The runner's metrics, derived from run records: each execution of a sync ends with a record
// (succeeded, retrying, dead_lettered, requeued), and recordRun turns it into counters and
// histograms. One set per runner process, made by `tidepool runner` and passed to the Runner
// (and from it to the consumer), served on metricsPort.
import { Counter, Histogram, type Registry } from 'prom-client';
import { ReconnectMetrics } from '../shared/metrics.js';
import { PHASES, recordedMs, type RunRecord, type RunStatus } from '../shared/store/runs.js';

/** Statuses that end an execution; `failed` is the moment before retrying or dead_lettered, `running` its start. */
const OUTCOMES: ReadonlySet<RunStatus> = new Set(['succeeded', 'retrying', 'dead_lettered', 'requeued', 'cancelled']);

/**
 * The connection label of executions whose connection was never read (unknown to the store, or
 * the store failing): their id is only what a message claims, and every new label value is a
 * series kept for the process's life, so a stream of made-up ids must not make one each.
 */
export const UNKNOWN_CONNECTION = 'unknown';

/** Executions remembered to count each one once, should a record be reported twice. */
const REMEMBERED = 1000;

export class RunnerMetrics {
  readonly reconnects: ReconnectMetrics;
  private readonly syncs: Counter<'connection' | 'outcome'>;
  private readonly duration: Histogram<'outcome'>;
  private readonly records: Counter<'connection' | 'stream'>;
  private readonly bytes: Counter<'connection' | 'stream'>;
  private readonly retries: Counter<'connection'>;
  private readonly firstRecord: Histogram;
  private readonly phases: Histogram<'phase'>;
  private readonly malformed: Counter;
  private readonly deferrals: Counter<'connection'>;
  private readonly seen = new Set<string>();

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.syncs = new Counter({
      name: 'tidepool_syncs_total',
      help: 'Sync executions by how they ended: succeeded, retrying (failed, retry scheduled), dead_lettered, requeued (handed back unfinished), cancelled (by an operator). connection="unknown": its connection could not be read (not in the store, or the store failing).',
      labelNames: ['connection', 'outcome'],
      registers,
    });
    this.duration = new Histogram({
      name: 'tidepool_sync_duration_seconds',
      help: 'Duration of sync executions, from taking the connection lock to the end, by outcome.',
      labelNames: ['outcome'],
      // Syncs run from seconds (a small incremental) to hours (a first full refresh; syncTimeout is 6 h).
      buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800, 21600],
      registers,
    });
    this.records = new Counter({
      name: 'tidepool_sync_records_total',
      help: 'Records moved from source to destination, by connection and stream (every execution, failed ones included).',
      labelNames: ['connection', 'stream'],
      registers,
    });
    this.bytes = new Counter({
      name: 'tidepool_sync_bytes_total',
      help: 'Bytes of records moved from source to destination, by connection and stream.',
      labelNames: ['connection', 'stream'],
      registers,
    });
    this.retries = new Counter({
      name: 'tidepool_sync_retries_total',
      help: 'Retries scheduled: failed executions sent to a delay queue for another attempt.',
      labelNames: ['connection'],
      registers,
    });
    this.firstRecord = new Histogram({
      name: 'tidepool_sync_publish_to_first_record_seconds',
      help: "Time from a sync's request (requestedAt) to its first record read from the source, for first attempts (a retry's would include its backoff).",
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.phases = new Histogram({
      name: 'tidepool_sync_phase_seconds',
      help: `Where sync executions spent their time, by phase (${PHASES.join(', ')}): see the run record's phases. One observation per phase an execution reached.`,
      labelNames: ['phase'],
      // From a few milliseconds (a lock free at once) to hours (reading a first full refresh).
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600],
      registers,
    });
    this.malformed = new Counter({
      name: 'tidepool_malformed_messages_total',
      help: 'Messages on the syncs queue that were no sync request (not JSON, or failing validation): dead-lettered at once, before any run record (so not in tidepool_syncs_total).',
      registers,
    });
    this.deferrals = new Counter({
      name: 'tidepool_sync_deferrals_total',
      help: 'Syncs put back through a delay queue because their connection stayed locked by another sync for lockWait (not an attempt).',
      labelNames: ['connection'],
      registers,
    });
    this.reconnects = new ReconnectMetrics(registry);
    // Series that exist from the start: a series born with its first count hides that count from
    // rate() and increase() (Prometheus's first sample of it already holds it), and a runner
    // may do only a sync or two in its life.
    for (const outcome of OUTCOMES) this.duration.zero({ outcome });
    for (const phase of PHASES) this.phases.zero({ phase });
  }

  /**
   * A sync of a connection read from the store starts (its lock is held): its connection's
   * series are made now, at zero, for the same reason. Not before the connection is read: the
   * id is then only what a message claims.
   */
  syncStarted(connection: string): void {
    for (const outcome of OUTCOMES) this.syncs.inc({ connection, outcome }, 0);
    this.retries.inc({ connection }, 0);
  }

  malformedMessage(): void {
    this.malformed.inc();
  }

  deferred(connection: string): void {
    this.deferrals.inc({ connection });
  }

  /**
   * Counts an execution from its run record; records of unfinished executions are ignored.
   * `connectionKnown: false`: the run's connection was not read, so it is labelled `unknown`.
   */
  recordRun(run: RunRecord, { connectionKnown = true }: { connectionKnown?: boolean } = {}): void {
    if (!OUTCOMES.has(run.status)) return;
    const key = `${run.syncId}|${run.attempt}|${run.startedAt}|${run.status}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > REMEMBERED) this.seen.delete(this.seen.values().next().value!);

    const connection = connectionKnown ? run.connectionId : UNKNOWN_CONNECTION;
    this.syncs.inc({ connection, outcome: run.status });
    if (run.durationMs !== undefined) this.duration.observe({ outcome: run.status }, run.durationMs / 1000);
    if (run.status === 'retrying') this.retries.inc({ connection });
    for (const [stream, stats] of Object.entries(run.streams)) {
      if (stats.records > 0) this.records.inc({ connection, stream }, stats.records);
      if (stats.bytes > 0) this.bytes.inc({ connection, stream }, stats.bytes);
    }
    // Later attempts (and their retry delays) would blur publish latency into backoff.
    if (run.attempt === 1 && run.firstRecordMs !== undefined) this.firstRecord.observe(run.firstRecordMs / 1000);
    for (const phase of PHASES) {
      const ms = recordedMs(run.phases?.[phase]);
      if (ms !== undefined) this.phases.observe({ phase }, ms / 1000);
    }
  }
}
