// What the consumer does about an operator's cancel (shared/store/cancels.ts): a delivered sync
// that is marked cancelled is acked without running; one whose marker appears while it runs is
// stopped by its watch (runner/sync/cancel-watch.ts) and, either way, recorded `cancelled`
// with who and when: it is settled, neither retried nor dead-lettered.
import type { ConsumeMessage } from 'amqplib';
import { replayedAtOf } from '../../shared/broker/envelope.js';
import type { Logger } from '../../shared/logger.js';
import type { SyncRequest } from '../../shared/messages.js';
import type { Store } from '../../shared/store/index.js';
import type { CancelMarker, CancelSubject } from '../../shared/store/cancels.js';
import type { RunRecord } from '../../shared/store/runs.js';
import type { RunnerMetrics } from '../metrics.js';

export interface CancellationDeps {
  store: Pick<Store, 'cancels' | 'runs'>;
  metrics: Pick<RunnerMetrics, 'recordRun'>;
}

/** What the markers are checked against: the sync, its connection, when it was requested or replayed. */
export function cancelSubject(request: SyncRequest, message: ConsumeMessage): CancelSubject {
  return { syncId: request.syncId, connectionId: request.connectionId, requestedAt: request.requestedAt, replayedAt: replayedAtOf(message.properties) };
}

/**
 * The marker that cancels a delivered sync before it runs. If the store cannot say, the sync
 * runs (its watch may still stop it): at least once, never lost.
 */
export async function cancelledBeforeRun(subject: CancelSubject, deps: CancellationDeps, logger: Logger): Promise<CancelMarker | undefined> {
  try {
    return await deps.store.cancels.cancelOf(subject);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not read the cancel marker; running the sync');
    return undefined;
  }
}

/**
 * Records the sync as cancelled (the record of its attempt so far, or of one that never started)
 * before its message is acked. If the write fails the message is still acked: the marker stays,
 * so a redelivery would be acked again without running.
 */
export async function recordCancelled(run: RunRecord, marker: CancelMarker, deps: CancellationDeps, logger: Logger): Promise<void> {
  const finishedAt = run.finishedAt ?? new Date().toISOString();
  const cancelled: RunRecord = { ...run, status: 'cancelled', cancelled: marker, finishedAt, durationMs: run.durationMs ?? Date.parse(finishedAt) - Date.parse(run.startedAt) };
  deps.metrics.recordRun(cancelled);
  try {
    await deps.store.runs.put(cancelled);
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'could not record the cancelled sync');
  }
}
