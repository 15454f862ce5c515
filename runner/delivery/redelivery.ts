// Is a delivered message one whose sync is already settled? At-least-once delivery hands a
// runner the same sync twice when an ack is lost: the broker connection drops after a sync
// finished (succeeded, or its retry or dead letter confirmed) but before its ack reached the
// broker; or a publisher retried a publish whose confirm was lost. The run record, written
// before the ack, says so; running the sync again would do its work twice.
import type { MessageProperties } from 'amqplib';
import { replayedAtOf } from '../../shared/broker/envelope.js';
import type { RunRecord } from '../../shared/store/runs.js';

/**
 * Why `message` needs no run because `run` (the stored record of its sync) already settled it,
 * or undefined when it must run. Settled means: succeeded, dead-lettered or cancelled at this attempt or a
 * later one, or retrying from this attempt or a later one (its next attempt is in a delay
 * queue). Not when the message was replayed from the dead-letter queue after that record was
 * written (an operator asked for another run), nor for records of unfinished executions
 * (running, failed, requeued: the runner holding it died or gave it back).
 */
export function settledBy(properties: Pick<MessageProperties, 'headers'>, attempt: number, run: RunRecord | undefined): string | undefined {
  if (!run) return undefined;
  if (run.status !== 'succeeded' && run.status !== 'dead_lettered' && run.status !== 'retrying' && run.status !== 'cancelled') return undefined;
  if (run.attempt < attempt) return undefined;
  const replayedAt = replayedAtOf(properties);
  if (replayedAt !== undefined && replayedAt >= Date.parse(run.startedAt)) return undefined;
  return `its sync already ${run.status === 'retrying' ? `failed and waits for attempt ${run.attempt + 1}` : run.status.replace('_', '-')} (attempt ${run.attempt})`;
}
