// What happens to one delivered message: parse it, run the sync, record the run, then settle the
// message. Ack only after the run is recorded (and, for a failure, after the dead letter is
// confirmed); a sync that could not finish here is left for redelivery.
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Topology } from '../shared/broker/topology.js';
import { CancelledError, InvalidMessageError, LockTimeoutError, TidepoolError, UnknownConnectionError, toFailure, type FailureInfo } from '../shared/errors.js';
import { HEADERS, parseSyncRequest, type SyncRequest } from '../shared/messages.js';
import type { RunRecord } from '../shared/store/runs.js';
import { deadLetter } from './dead-letter.js';
import { runSync, type SyncDeps } from './sync.js';

/** ack: done with it (succeeded or dead-lettered). requeue: give it back for another runner. */
export type Settlement = 'ack' | 'requeue';

export interface ConsumerDeps extends SyncDeps {
  publishChannel: ConfirmChannel;
  topology: Topology;
}

export async function handleDelivery(message: ConsumeMessage, deps: ConsumerDeps, signal: AbortSignal): Promise<Settlement> {
  const attempt = Number(message.properties.headers?.[HEADERS.attempt] ?? 1) || 1;
  let request: SyncRequest;
  try {
    request = parseSyncRequest(message.content);
  } catch (err) {
    const failure = toFailure(err);
    deps.logger.warn({ messageId: message.properties.messageId as unknown, reason: failure.message }, 'malformed message: dead-lettering');
    await deadLetterSafely(message, failure, attempt, deps);
    return 'ack';
  }

  const logger = deps.logger.child({ syncId: request.syncId, connectionId: request.connectionId });
  try {
    const outcome = await runSync(request, attempt, deps, signal);
    if (!outcome.failure) return 'ack';
    if (outcome.failure.type === 'cancelled') {
      await recordStatus(deps, outcome.run, 'requeued');
      logger.info('sync interrupted by shutdown: left for redelivery');
      return 'requeue';
    }
    // Retries with backoff are the next step (delay queues); until then a failed sync goes
    // straight to the dead-letter queue with its reason and stderr, where it can be replayed.
    await deadLetterSafely(message, outcome.failure, attempt, deps);
    await recordStatus(deps, outcome.run, 'dead_lettered');
    return 'ack';
  } catch (err) {
    if (err instanceof LockTimeoutError || err instanceof CancelledError) {
      logger.info({ reason: err.message }, 'sync not started: left for redelivery');
      return 'requeue';
    }
    if (err instanceof UnknownConnectionError || err instanceof InvalidMessageError) {
      const failure = err.toFailure();
      logger.warn({ reason: failure.message }, 'permanent failure: dead-lettering');
      await deadLetterSafely(message, failure, attempt, deps);
      await deps.store.runs.put(deadRun(request, attempt, deps.runnerId, failure));
      return 'ack';
    }
    // The store or broker failed under us: nothing is recorded, so let another runner retry.
    // The queue's delivery limit dead-letters a message that keeps failing this way.
    logger.error({ err: err instanceof Error ? err.message : String(err), retryable: err instanceof TidepoolError ? err.retryable : true }, 'sync could not run: left for redelivery');
    return 'requeue';
  }
}

async function deadLetterSafely(message: ConsumeMessage, failure: FailureInfo, attempt: number, deps: ConsumerDeps): Promise<void> {
  await deadLetter(deps.publishChannel, deps.topology, message, failure, { attempt, runnerId: deps.runnerId });
}

async function recordStatus(deps: ConsumerDeps, run: RunRecord, status: RunRecord['status']): Promise<void> {
  await deps.store.runs.put({ ...run, status });
}

function deadRun(request: SyncRequest, attempt: number, runnerId: string, failure: FailureInfo): RunRecord {
  const now = new Date().toISOString();
  return {
    syncId: request.syncId,
    connectionId: request.connectionId,
    status: 'dead_lettered',
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
    error: failure,
  };
}
