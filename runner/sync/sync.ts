// One sync, start to end, as a script: find the connection, take its lock, record the run as
// running, prepare (specs, check, catalog), replicate (both connectors, state commits), record
// how it ended. The consumer (runner/delivery/consumer.ts) decides what happens to the message
// afterwards.
import type { Config } from '../../shared/config.js';
import { asTidepoolError, CancelledError, TidepoolError, UnknownConnectionError, type FailureInfo } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { SyncRequest } from '../../shared/messages.js';
import type { ConnectorLauncher } from '../../shared/ports/connector-launcher.js';
import type { SecretSource } from '../../shared/ports/secret-source.js';
import { redactText, secretValues } from '../../shared/redact.js';
import { resolveSecretRefs, withResolvedConfigs } from '../secrets/resolve.js';
import type { Store } from '../../shared/store/index.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { acquireLock, keepLock } from './lock-renewal.js';
import { phasesFrom, type Marks } from './phases.js';
import { prepareSync } from './preparation.js';
import { replicate, type ReplicationResult } from './replication.js';
import { STATE_COMMIT_INTERVAL_MS, StateCommits } from './state-commits.js';

export type SyncConfig = Pick<Config, 'lockTtl' | 'lockWait' | 'maxLineBytes' | 'messageTimeout' | 'requireDigests' | 'stderrTailLines' | 'syncTimeout'>;

export interface SyncDeps {
  store: Pick<Store, 'connections' | 'state' | 'runs' | 'locks' | 'specs'>;
  launcher: ConnectorLauncher;
  config: SyncConfig;
  logger: Logger;
  runnerId: string;
  /** Where the connection's secretRefs are read; none: a reference fails its sync. */
  secretSource?: SecretSource | undefined;
}

export interface SyncOutcome {
  run: RunRecord;
  /** Set when the sync failed. */
  failure?: FailureInfo;
}

export interface SyncHooks {
  /**
   * Called once the connection's lock is held, before anything starts: the last moment to abort
   * `signal` for a sync that should not start after all (one cancelled while it waited).
   */
  lockTaken?: () => Promise<void>;
  /** When the sync was put on the queue and when it reached this runner: its first phases. */
  arrival?: Arrival;
}

/** When a delivered sync was queued (its publish, or the moment a retry or replay put it back) and delivered (epoch ms). */
export interface Arrival {
  queuedSince: number;
  deliveredAt: number;
}

/**
 * Runs one sync. Throws only for failures that happen before there is a run to record (unknown
 * connection, lock timeout, cancelled while waiting, the store failing); everything after is in
 * the outcome.
 */
export async function runSync(request: SyncRequest, attempt: number, deps: SyncDeps, signal: AbortSignal, hooks: SyncHooks = {}): Promise<SyncOutcome> {
  const { store, config, runnerId } = deps;
  const logger = deps.logger.child({ syncId: request.syncId, connectionId: request.connectionId, attempt });
  const found = await store.connections.getVersioned(request.connectionId);
  if (!found) throw new UnknownConnectionError(request.connectionId);
  const { connection } = found;

  const lock = await acquireLock(store.locks, connection.id, runnerId, config, signal, logger);
  const keeper = keepLock(store.locks, lock, config.lockTtl, logger);
  const run = runningRecord(request, attempt, runnerId, found.version);
  const marks: Marks = { ...hooks.arrival, lockedAt: Date.now() };
  run.phases = phasesFrom(marks);
  try {
    await hooks.lockTaken?.();
    // Stopped while it waited for the lock: it never started, and has no record of its own.
    if (signal.aborted) throw stopReason(signal);
    await store.runs.put(run);
    logger.info({ fullRefresh: request.fullRefresh, lockToken: lock.token }, 'sync started');

    let failure: FailureInfo | undefined;
    const secrets = secretValues(connection);
    const stopping = AbortSignal.any([signal, keeper.lost]);
    try {
      const runId = `${request.syncId}-a${attempt}`;
      // References resolved first: one that names nothing fails before any connector runs.
      const resolved = await resolveSecretRefs(connection, deps.secretSource, secrets);
      const connectorDeps = { ...deps, launcher: withResolvedConfigs(deps.launcher, connection, resolved) };
      const catalog = await prepareSync(connection, run, runId, secrets, connectorDeps, stopping);
      const committed = request.fullRefresh ? undefined : await store.state.get(connection.id);
      const commits = new StateCommits(store.state, lock, request.syncId, committed?.state ?? [], { minIntervalMs: STATE_COMMIT_INTERVAL_MS });
      // Stopped while it prepared (a cancel, a shutdown): no connector is started only to be killed.
      if (stopping.aborted) throw stopReason(stopping);
      const replicated = await replicate({ connection, catalog, runId, publishedAt: Date.parse(request.requestedAt), commits, secrets }, connectorDeps, stopping);
      recordReplication(run, replicated, commits);
      Object.assign(marks, replicated.marks);
      if (replicated.failure) failure = failureInfo(replicated.failure, secrets, replicated.stderr);
      else logger.debug({ sourceStates: replicated.sourceStates, echoedStates: commits.echoed, streams: run.streams }, 'replication finished');
    } catch (err) {
      // A spec, check or discover killed because the sync was stopped fails as whatever it then
      // looked like (no verdict, an exit): the stop is the reason.
      failure = failureInfo(stopping.aborted ? stopReason(stopping) : asTidepoolError(err), secrets);
    }
    finishRecord(run, failure, marks);
    await store.runs.put(run);
    logger[failure ? 'warn' : 'info'](
      { status: run.status, records: run.records, bytes: run.bytes, durationMs: run.durationMs, stateVersion: run.stateVersion, ...(failure ? { error: failure.message, origin: failure.origin } : {}) },
      failure ? 'sync failed' : 'sync succeeded',
    );
    return failure ? { run, failure } : { run };
  } finally {
    keeper.stop();
    await store.locks.release(lock).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'lock release failed; it expires by itself'));
  }
}

/** Why a sync was stopped: the TidepoolError it was aborted with, else the runner shutting down. */
function stopReason(signal: AbortSignal): TidepoolError {
  const reason: unknown = signal.reason;
  return reason instanceof TidepoolError ? reason : new CancelledError('sync cancelled: the runner is shutting down');
}

function runningRecord(request: SyncRequest, attempt: number, runnerId: string, connectionVersion: number): RunRecord {
  return {
    syncId: request.syncId,
    connectionId: request.connectionId,
    status: 'running',
    attempt,
    runnerId,
    fullRefresh: request.fullRefresh,
    requestedAt: request.requestedAt,
    startedAt: new Date().toISOString(),
    records: 0,
    bytes: 0,
    streams: {},
    stateCommits: 0,
    ...(connectionVersion > 0 ? { connectionVersion } : {}),
  };
}

function recordReplication(run: RunRecord, replicated: ReplicationResult, commits: StateCommits): void {
  run.records = replicated.stats.records;
  run.bytes = replicated.stats.bytes;
  run.streams = replicated.stats.toJSON();
  run.stateCommits = commits.committed;
  if (commits.version !== undefined) run.stateVersion = commits.version;
  if (replicated.firstRecordMs !== undefined) run.firstRecordMs = replicated.firstRecordMs;
  if (Object.keys(replicated.connectorStart).length > 0) run.phases = { ...run.phases, connectorStart: replicated.connectorStart };
  // Which build ran, where the platform says (a pod's imageID, docker's image id).
  if (run.connectors && replicated.images.source) run.connectors.source.image = replicated.images.source;
  if (run.connectors && replicated.images.destination) run.connectors.destination.image = replicated.images.destination;
}

function finishRecord(run: RunRecord, failure: FailureInfo | undefined, marks: Marks): void {
  const finished = Date.now();
  run.phases = { ...phasesFrom(marks, finished), ...(run.phases?.connectorStart ? { connectorStart: run.phases.connectorStart } : {}) };
  run.finishedAt = new Date(finished).toISOString();
  run.durationMs = finished - Date.parse(run.startedAt);
  run.status = failure ? 'failed' : 'succeeded';
  if (failure) run.error = failure;
}

/**
 * The failure as recorded and dead-lettered. Messages may quote connector output (a TRACE, a
 * line that is not a message): redacted like the stderr tails, which already are.
 */
function failureInfo(err: TidepoolError, secrets: ReadonlySet<string>, stderr?: FailureInfo['stderr']): FailureInfo {
  const f = err.toFailure();
  return { ...f, message: redactText(f.message, secrets), stderr: f.stderr ?? stderr ?? { source: [], destination: [] } };
}
