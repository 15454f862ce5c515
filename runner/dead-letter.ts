// Dead-lettering a sync: the original body goes to the dead queue with headers saying why, and
// is confirmed by the broker before the caller acks the original. Nothing is acked before its
// successor is safe.
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { FailureInfo } from '../shared/errors.js';
import { HEADERS } from '../shared/messages.js';
import { confirmPublish } from '../shared/broker/publisher.js';
import type { Topology } from '../shared/broker/topology.js';

const MAX_HEADER_LINE = 500;

export async function deadLetter(
  channel: ConfirmChannel,
  topology: Topology,
  message: ConsumeMessage,
  failure: FailureInfo,
  context: { attempt: number; runnerId: string },
): Promise<void> {
  const now = new Date().toISOString();
  const old = message.properties.headers ?? {};
  const cut = (lines: string[] | undefined) => JSON.stringify((lines ?? []).map((l) => l.slice(0, MAX_HEADER_LINE)));
  await confirmPublish(channel, topology.deadExchange, topology.deadRoutingKey, message.content, {
    ...(typeof message.properties.messageId === 'string' ? { messageId: message.properties.messageId } : {}),
    headers: {
      ...old,
      [HEADERS.attempt]: context.attempt,
      [HEADERS.reason]: failure.message.slice(0, 4000),
      [HEADERS.origin]: failure.origin,
      [HEADERS.type]: failure.type,
      [HEADERS.runner]: context.runnerId,
      [HEADERS.firstFailureAt]: (old[HEADERS.firstFailureAt] as string | undefined) ?? now,
      [HEADERS.lastFailureAt]: now,
      [HEADERS.stderrSource]: cut(failure.stderr?.source),
      [HEADERS.stderrDestination]: cut(failure.stderr?.destination),
    },
  });
}
