// Dead-lettering a sync: the original body goes to the dead queue with headers saying why
// (shared/broker/envelope.ts), and is confirmed by the broker before the caller acks the original.
// Nothing is acked before its successor is safe.
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { FailureInfo } from '../../shared/errors.js';
import { confirmPublish } from '../../shared/broker/publisher.js';
import type { Topology } from '../../shared/broker/topology.js';
import { failureHeaders, type FailureContext } from '../../shared/broker/envelope.js';

export async function deadLetter(
  channel: ConfirmChannel,
  topology: Topology,
  message: ConsumeMessage,
  failure: FailureInfo,
  context: FailureContext,
): Promise<void> {
  await confirmPublish(channel, topology.deadExchange, topology.deadRoutingKey, message.content, {
    ...(typeof message.properties.messageId === 'string' ? { messageId: message.properties.messageId } : {}),
    headers: failureHeaders(message.properties.headers, failure, context, true),
  });
}
