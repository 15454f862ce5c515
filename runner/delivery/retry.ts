// Retrying a sync later: the original body goes to the delay queue of its retry level with the
// next attempt number, the failure headers and a per-message expiration; when it expires the
// broker dead-letters it back to the syncs exchange (shared/broker/topology.ts). Confirmed by
// the broker before the caller acks the original.
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { FailureInfo } from '../../shared/errors.js';
import { confirmPublish } from '../../shared/broker/publisher.js';
import type { Topology } from '../../shared/broker/topology.js';
import { deferredHeaders, failureHeaders, withDueAt, type FailureContext } from '../../shared/broker/envelope.js';

/**
 * Publishes attempt `failedAttempt + 1` of the message to delay queue level `failedAttempt`,
 * to come back after `delayMs`.
 */
export async function scheduleRetry(
  channel: ConfirmChannel,
  topology: Topology,
  message: ConsumeMessage,
  failure: FailureInfo,
  context: Omit<FailureContext, 'attempt'> & { failedAttempt: number; delayMs: number },
): Promise<void> {
  const queue = topology.retryQueues[context.failedAttempt - 1];
  if (queue === undefined) throw new Error(`no delay queue for retry level ${context.failedAttempt} (maxAttempts is ${topology.retryQueues.length + 1})`);
  const { failedAttempt, delayMs, ...rest } = context;
  // The default exchange routes to the queue named by the routing key.
  await confirmPublish(channel, '', queue, message.content, {
    ...(typeof message.properties.messageId === 'string' ? { messageId: message.properties.messageId } : {}),
    expiration: String(Math.max(0, Math.round(delayMs))),
    headers: withDueAt(failureHeaders(message.properties.headers, failure, { ...rest, attempt: failedAttempt + 1 }, false), delayMs),
  });
}

/**
 * Puts a sync whose connection stayed busy (another sync held its lock for lockWait) back for
 * later: the same body and attempt, through the first delay queue, its deferrals counted.
 * Not a nack with requeue: every requeue counts toward the quorum queue's x-delivery-limit,
 * which is there for runners that crash on a message, so a sync queued behind a long one would
 * be dead-lettered by the broker, with no reason of ours, after deliveryLimit × lockWait. The
 * message published here starts a fresh count. Undefined when there is no delay queue
 * (maxAttempts 1): the caller requeues instead. The sync cannot wait for ever: the sync holding
 * the lock is ended by syncTimeout at the latest.
 */
export async function deferBusy(channel: ConfirmChannel, topology: Topology, message: ConsumeMessage, delayMs: number): Promise<{ deferrals: number } | undefined> {
  const queue = topology.retryQueues[0];
  if (queue === undefined) return undefined;
  const { headers, deferrals } = deferredHeaders(message.properties.headers);
  await confirmPublish(channel, '', queue, message.content, {
    ...(typeof message.properties.messageId === 'string' ? { messageId: message.properties.messageId } : {}),
    expiration: String(Math.max(0, Math.round(delayMs))),
    headers: withDueAt(headers, delayMs),
  });
  return { deferrals };
}
