// Retrying a sync later: the original body goes to the delay queue of its retry level with the
// next attempt number, the failure headers and a per-message expiration; when it expires the
// broker dead-letters it back to the syncs exchange (shared/broker/topology.ts). Confirmed by
// the broker before the caller acks the original.
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { FailureInfo } from '../shared/errors.js';
import { confirmPublish } from '../shared/broker/publisher.js';
import type { Topology } from '../shared/broker/topology.js';
import { failureHeaders, type FailureContext } from './failure-headers.js';

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
    headers: failureHeaders(message.properties.headers, failure, { ...rest, attempt: failedAttempt + 1 }, false),
  });
}
