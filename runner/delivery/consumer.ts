// What happens to one delivered message: check that its sync is not already settled (a copy),
// parse it, run the sync, record the run, then say how to settle the message (the runner acks
// or requeues it on the channel it came on). A failed sync is retried later through a delay
// queue (retryable, attempts left) or dead-lettered (permanent, or out of attempts); either way
// its successor message is confirmed by the broker before the original is acked. A sync that
// could not finish here is handed back without using up an attempt: requeued on shutdown, put
// back through a delay queue when its connection stayed busy. A sync an operator cancelled is
// acked without running, or stopped while it runs, and recorded `cancelled` (cancellation.ts).
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Config } from '../../shared/config.js';
import { retryDelay } from '../../shared/backoff.js';
import type { Topology } from '../../shared/broker/topology.js';
import { CancelledError, InvalidMessageError, LockTimeoutError, toFailure, type FailureInfo } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { Notifier } from '../../shared/notifications/notify.js';
import { attemptOf, dueAtOf, replayedAtOf } from '../../shared/broker/envelope.js';
import { idsFromBody, oversizedBody, parseSyncRequest, type SyncRequest } from '../../shared/messages.js';
import type { Store } from '../../shared/store/index.js';
import type { CancelMarker } from '../../shared/store/cancels.js';
import type { RunRecord } from '../../shared/store/runs.js';
import type { RunnerMetrics } from '../metrics.js';
import { watchCancel } from '../sync/cancel-watch.js';
import { cancelledBeforeRun, cancelSubject, recordCancelled } from './cancellation.js';
import { deadLetter } from './dead-letter.js';
import { settledBy } from './redelivery.js';
import { deferBusy, scheduleRetry } from './retry.js';
import { phasesFrom } from '../sync/phases.js';
import { runSync, type Arrival, type SyncConfig, type SyncDeps } from '../sync/sync.js';

/** ack: done with it (succeeded, retry scheduled, or dead-lettered). requeue: give it back for another runner. */
export type Settlement = 'ack' | 'requeue';

export type ConsumerConfig = SyncConfig & Pick<Config, 'maxAttempts' | 'retryBaseDelay' | 'retryFactor' | 'retryMaxDelay'>;

export interface ConsumerDeps extends SyncDeps {
  store: SyncDeps['store'] & Pick<Store, 'cancels'>;
  config: ConsumerConfig;
  /** The confirm channel of the session the message came on: its successors are published there. */
  publishChannel: ConfirmChannel;
  topology: Topology;
  metrics: Pick<RunnerMetrics, 'recordRun' | 'malformedMessage' | 'deferred' | 'syncStarted'>;
  /** Queues the notifications of a settled run (a store write; it never throws). */
  notifier?: Pick<Notifier, 'runSettled'>;
}

/** Bodies over shared/messages.ts MAX_BODY_BYTES are dead-lettered as they are, unread. */
export { MAX_BODY_BYTES } from '../../shared/messages.js';

/**
 * How to settle a delivered message once it is done with. Never throws: anything that went
 * wrong unexpectedly leaves the message for redelivery.
 */
export async function handleDelivery(message: ConsumeMessage, deps: ConsumerDeps, signal: AbortSignal): Promise<Settlement> {
  const deliveredAt = Date.now();
  try {
    const tooBig = oversizedBody(message.content);
    if (tooBig !== undefined) return await deadLetterMalformed(message, new InvalidMessageError(tooBig), {}, deps);
    return (await alreadySettled(message, deps)) ? 'ack' : await runDelivery(message, deps, signal, deliveredAt);
  } catch (err) {
    deps.logger.error({ err: (err as Error).message }, 'delivery handling failed: left for redelivery');
    return 'requeue';
  }
}

/**
 * A delivery of a sync that is already settled (an ack lost with a connection, a publish
 * repeated after a lost confirm) is acked without running it again. If the store cannot say,
 * the sync runs: at least once, never lost.
 */
async function alreadySettled(message: ConsumeMessage, deps: ConsumerDeps): Promise<boolean> {
  const { syncId } = idsFromBody(message.content);
  if (!syncId) return false;
  try {
    const why = settledBy(message.properties, attemptOf(message.properties, deps.config.maxAttempts), await deps.store.runs.get(syncId));
    if (why) deps.logger.info({ syncId, redelivered: message.fields.redelivered, why }, 'duplicate delivery of a settled sync: acked without running it again');
    return why !== undefined;
  } catch (err) {
    deps.logger.warn({ syncId, err: (err as Error).message }, 'could not read the run record to check for a duplicate delivery; running the sync');
    return false;
  }
}

async function runDelivery(message: ConsumeMessage, deps: ConsumerDeps, signal: AbortSignal, deliveredAt: number): Promise<Settlement> {
  const attempt = attemptOf(message.properties, deps.config.maxAttempts);
  let request: SyncRequest;
  try {
    request = parseSyncRequest(message.content);
  } catch (err) {
    return deadLetterMalformed(message, err, idsFromBody(message.content), deps);
  }

  const logger = deps.logger.child({ syncId: request.syncId, connectionId: request.connectionId, attempt });
  const arrival = { queuedSince: queuedSince(request, message), deliveredAt };
  // Next to the duplicate check: a sync cancelled while it waited in a queue is not run at all.
  const subject = cancelSubject(request, message);
  const cancelled = await cancelledBeforeRun(subject, deps, logger);
  if (cancelled) {
    await recordCancelled(notStartedRun(request, attempt, deps.runnerId, arrival), cancelled, deps, logger);
    logger.info({ cancelledBy: cancelled.by, cancelledAt: cancelled.at }, 'sync cancelled before it ran: acked without running');
    return 'ack';
  }
  const watch = watchCancel(deps.store.cancels, subject, logger);
  try {
    return await runWatched(message, request, attempt, deps, AbortSignal.any([signal, watch.cancelled]), { logger, watch, arrival });
  } finally {
    watch.stop();
  }
}

/** Runs the sync and settles it; a cancel that stopped it (however it then ended) settles it as cancelled. */
async function runWatched(
  message: ConsumeMessage,
  request: SyncRequest,
  attempt: number,
  deps: ConsumerDeps,
  signal: AbortSignal,
  { logger, watch, arrival }: { logger: Logger; watch: ReturnType<typeof watchCancel>; arrival: Arrival },
): Promise<Settlement> {
  let failure: FailureInfo;
  let run: RunRecord;
  // False when the sync failed before its connection was read: its id is only what the message
  // claims, so metrics count it under `unknown` (a hostile id makes no label series of its own).
  let connectionRead = true;
  try {
    const outcome = await runSync(request, attempt, deps, signal, {
      lockTaken: () => {
        deps.metrics.syncStarted(request.connectionId);
        return watch.check();
      },
      arrival,
    });
    if (outcome.failure && watch.marker) return await settleCancelled(outcome.run, watch.marker, deps, logger);
    if (!outcome.failure) {
      deps.metrics.recordRun(outcome.run);
      await deps.notifier?.runSettled(outcome.run);
      return 'ack';
    }
    if (outcome.failure.type === 'cancelled') {
      deps.metrics.recordRun({ ...outcome.run, status: 'requeued' });
      await deps.store.runs.put({ ...outcome.run, status: 'requeued' });
      logger.info('sync interrupted by shutdown: left for redelivery');
      return 'requeue';
    }
    failure = outcome.failure;
    run = outcome.run;
  } catch (err) {
    if (watch.marker) return settleCancelled(notStartedRun(request, attempt, deps.runnerId, arrival), watch.marker, deps, logger);
    if (err instanceof LockTimeoutError) return putBackBusy(message, request.connectionId, err, deps, logger);
    if (err instanceof CancelledError) {
      logger.info({ reason: err.message }, 'sync not started: left for redelivery');
      return 'requeue';
    }
    // Before the sync could start: an unknown connection (permanent), or the store failing
    // under us (retryable, so it waits in a delay queue instead of coming straight back).
    failure = toFailure(err);
    run = notStartedRun(request, attempt, deps.runnerId, arrival);
    connectionRead = false;
  }
  return settleFailure(message, request, attempt, failure, { run, connectionRead }, deps, logger);
}

async function settleCancelled(run: RunRecord, marker: CancelMarker, deps: ConsumerDeps, logger: Logger): Promise<Settlement> {
  await recordCancelled(run, marker, deps, logger);
  logger.info({ cancelledBy: marker.by, cancelledAt: marker.at, records: run.records, stateVersion: run.stateVersion }, 'sync cancelled while it ran: stopped, acked, not retried');
  return 'ack';
}

/** A message that is no sync request: dead-lettered at once, under the ids its body names if any. */
async function deadLetterMalformed(message: ConsumeMessage, err: unknown, ids: { syncId?: string; connectionId?: string }, deps: ConsumerDeps): Promise<Settlement> {
  const failure = toFailure(err);
  deps.logger.warn({ messageId: message.properties.messageId as unknown, reason: failure.message }, 'malformed message: dead-lettering');
  await deadLetter(deps.publishChannel, deps.topology, message, failure, { attempt: attemptOf(message.properties, deps.config.maxAttempts), runnerId: deps.runnerId, ...ids });
  deps.metrics.malformedMessage();
  return 'ack';
}

/**
 * Its connection stayed locked by another sync for lockWait: back through a delay queue, not
 * counted as an attempt (retry.ts deferBusy says why not a requeue). A publish that fails
 * leaves the message to the broker: requeued, or redelivered if the channel is gone.
 */
async function putBackBusy(message: ConsumeMessage, connectionId: string, err: LockTimeoutError, deps: ConsumerDeps, logger: Logger): Promise<Settlement> {
  const { config } = deps;
  const delayMs = retryDelay(1, { baseMs: config.retryBaseDelay, factor: config.retryFactor, maxMs: config.retryMaxDelay });
  try {
    const deferred = await deferBusy(deps.publishChannel, deps.topology, message, delayMs);
    if (deferred) {
      deps.metrics.deferred(connectionId);
      logger.info({ reason: err.message, retryInMs: delayMs, deferrals: deferred.deferrals }, 'connection busy with another sync: put back for later (not an attempt)');
      return 'ack';
    }
  } catch (publishErr) {
    logger.warn({ err: (publishErr as Error).message }, 'could not put the busy sync back through a delay queue; requeueing it');
  }
  logger.info({ reason: err.message }, 'sync not started: left for redelivery');
  return 'requeue';
}

/** Retry later or dead-letter; the successor is confirmed before this returns 'ack'. */
async function settleFailure(
  message: ConsumeMessage,
  request: SyncRequest,
  attempt: number,
  failure: FailureInfo,
  { run, connectionRead }: { run: RunRecord; connectionRead: boolean },
  deps: ConsumerDeps,
  logger: Logger,
): Promise<Settlement> {
  const { config, topology } = deps;
  const ids = { syncId: request.syncId, connectionId: request.connectionId };
  const finishedAt = run.finishedAt ?? new Date().toISOString();
  // The delay queue of level `attempt` exists when attempt < maxAttempts (same settings here as
  // where the topology was declared); checking it too keeps a mismatch from losing the message.
  if (failure.retryable && attempt < config.maxAttempts && topology.retryQueues[attempt - 1] !== undefined) {
    const delayMs = retryDelay(attempt, { baseMs: config.retryBaseDelay, factor: config.retryFactor, maxMs: config.retryMaxDelay });
    const retryAt = new Date(Date.now() + delayMs).toISOString();
    await scheduleRetry(deps.publishChannel, topology, message, failure, { ...ids, runnerId: deps.runnerId, failedAttempt: attempt, delayMs });
    logger.warn({ reason: failure.message, origin: failure.origin, type: failure.type, retryInMs: delayMs, nextAttempt: attempt + 1, maxAttempts: config.maxAttempts }, 'sync failed: retry scheduled');
    await recordAfterSettling(deps, logger, { ...run, status: 'retrying', finishedAt, retryAt, error: failure }, connectionRead);
    return 'ack';
  }
  await deadLetter(deps.publishChannel, topology, message, failure, { ...ids, attempt, runnerId: deps.runnerId });
  logger.warn(
    { reason: failure.message, origin: failure.origin, type: failure.type, retryable: failure.retryable, attempts: attempt },
    failure.retryable ? 'sync failed: out of attempts, dead-lettered' : 'sync failed permanently: dead-lettered',
  );
  await recordAfterSettling(deps, logger, { ...run, status: 'dead_lettered', finishedAt, error: failure }, connectionRead);
  return 'ack';
}

/**
 * The record after the successor message is confirmed. If it cannot be written the message is
 * still acked: handing it back would run the sync twice (the successor exists); the record is
 * left saying "failed".
 */
async function recordAfterSettling(deps: ConsumerDeps, logger: Logger, run: RunRecord, connectionRead: boolean): Promise<void> {
  deps.metrics.recordRun(run, { connectionKnown: connectionRead });
  try {
    await deps.store.runs.put(run);
  } catch (err) {
    logger.error({ err: (err as Error).message, status: run.status }, 'could not record the run after settling its message');
  }
  await deps.notifier?.runSettled(run);
}

/**
 * Since when the delivered sync waited in the queue: its publish, or the latest moment it was
 * put back (a delay queue releasing a retry or a deferral, a replay from the dead letters).
 * These are what the publisher wrote, so a phase computed from them is clamped at zero
 * (runner/sync/phases.ts); none that parses leaves the queued phase out.
 */
function queuedSince(request: SyncRequest, message: ConsumeMessage): number {
  const candidates = [Date.parse(request.requestedAt), replayedAtOf(message.properties) ?? NaN, dueAtOf(message.properties) ?? NaN];
  return Math.max(...candidates.filter(Number.isFinite));
}

function notStartedRun(request: SyncRequest, attempt: number, runnerId: string, arrival?: Arrival): RunRecord {
  const nowMs = Date.now();
  const now = new Date(nowMs).toISOString();
  return {
    syncId: request.syncId,
    connectionId: request.connectionId,
    status: 'failed',
    attempt,
    runnerId,
    fullRefresh: request.fullRefresh,
    requestedAt: request.requestedAt,
    startedAt: now,
    finishedAt: now,
    durationMs: 0,
    records: 0,
    bytes: 0,
    streams: {},
    stateCommits: 0,
    ...(arrival ? { phases: phasesFrom(arrival, nowMs) } : {}),
  };
}
