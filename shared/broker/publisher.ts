// Publishing sync requests: persistent, messageId = syncId, and confirmed by the broker before
// the call returns, so a publish that "succeeded" cannot be lost.
import type { ConfirmChannel } from 'amqplib';
import { HEADERS, type SyncRequest } from '../messages.js';
import type { Topology } from './topology.js';

export function confirmPublish(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Buffer,
  options: { messageId?: string; headers?: Record<string, unknown>; expiration?: string },
): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.publish(
      exchange,
      routingKey,
      body,
      {
        persistent: true,
        contentType: 'application/json',
        timestamp: Math.floor(Date.now() / 1000),
        ...(options.messageId ? { messageId: options.messageId } : {}),
        ...(options.expiration ? { expiration: options.expiration } : {}),
        headers: options.headers ?? {},
      },
      (err: unknown) => (err ? reject(err instanceof Error ? err : new Error('broker refused the message')) : resolve()),
    );
  });
}

export async function publishSync(
  channel: ConfirmChannel,
  topology: Topology,
  request: SyncRequest,
  headers: Record<string, unknown> = {},
): Promise<void> {
  await confirmPublish(channel, topology.exchange, topology.syncRoutingKey, Buffer.from(JSON.stringify(request)), {
    messageId: request.syncId,
    headers: { [HEADERS.attempt]: 1, ...headers },
  });
}
