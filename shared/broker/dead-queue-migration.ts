// Moving dead letters out of the quorum dead queue earlier tidepools declared (`<prefix>.dead`)
// into today's classic one (topology.ts declareDeadQueue says why it changed). Run by every
// process right after it declares the topology, so an upgrade needs no step of its own: the
// first process of the new version to start empties the old queue, and the dlq commands and the
// dashboard read every letter from the new one.
//
// Nothing is lost on the way: a letter is acked in the old queue only after the broker confirmed
// its copy in the new one. A crash in between leaves it in both (the next start moves it again:
// a duplicate letter, never a missing one). Letters another reader holds at that moment (an
// older `tidepool dlq list`) are not ready and are moved by a later start.
//
// The old queue is unbound from the dead exchange first, so new letters go only to the new queue;
// an older process still running re-binds it when it reconnects, and its letters are moved by
// the next start of a new one. The old queue itself is left in place, empty and unbound: quorum
// queues refuse `queue.delete` with if-empty (RabbitMQ closes the whole connection for it), and
// deleting it unconditionally could drop a letter an older reader is holding. The log line
// says how to delete it once no older tidepool runs.
import type { ChannelModel, ConfirmChannel, GetMessage, Options } from 'amqplib';
import type { Logger } from '../logger.js';
import type { Topology } from './topology.js';

/** Delivery bookkeeping the old queue added: not part of the letter (the new queue counts nothing). */
const DELIVERY_HEADERS = /^x-(delivery-count|acquired-count)$/;

/** Moves the legacy dead queue's ready letters to topology.deadQueue; returns how many moved. */
export async function moveLegacyDeadLetters(connection: ChannelModel, topology: Topology, logger: Logger): Promise<number> {
  const ready = await legacyReady(connection, topology.legacyDeadQueue);
  if (ready === undefined) return 0;
  const channel = await connection.createConfirmChannel();
  channel.on('error', (err: Error) => logger.warn({ err: err.message, queue: topology.legacyDeadQueue }, 'moving legacy dead letters: channel error'));
  let moved = 0;
  try {
    await channel.unbindQueue(topology.legacyDeadQueue, topology.deadExchange, topology.deadRoutingKey);
    // At most what was ready at the start: an older runner still adding letters cannot keep this going.
    for (let i = 0; i < ready; i++) {
      const message = await channel.get(topology.legacyDeadQueue, { noAck: false });
      if (message === false) break;
      await copyTo(channel, topology.deadQueue, message);
      channel.ack(message);
      moved++;
    }
  } finally {
    await channel.close().catch(() => undefined);
  }
  logger.info(
    { from: topology.legacyDeadQueue, to: topology.deadQueue, moved },
    `moved ${moved} dead letter${moved === 1 ? '' : 's'} from the quorum queue of an earlier tidepool; once no older tidepool runs, ` +
      `delete it: rabbitmqctl delete_queue ${topology.legacyDeadQueue}`,
  );
  return moved;
}

/** The legacy queue's ready count, or undefined when it does not exist (checked on a throw-away channel: a 404 closes it). */
export async function legacyReady(connection: ChannelModel, queue: string): Promise<number | undefined> {
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    return (await channel.checkQueue(queue)).messageCount;
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) return undefined;
    throw err;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** Publishes the letter to `queue` with its properties and headers as they were, and waits for the broker's confirm. */
function copyTo(channel: ConfirmChannel, queue: string, message: GetMessage): Promise<void> {
  // user-id is checked by the broker against the publishing connection's user: a letter published
  // by another user would be refused, so it is not carried (it says nothing about the failure).
  const properties: Record<string, unknown> = { ...message.properties };
  delete properties['userId'];
  delete properties['headers'];
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(message.properties.headers ?? {})) if (!DELIVERY_HEADERS.test(name)) kept[name] = value;
  const options: Options.Publish = { ...withoutUndefined(properties), headers: kept, persistent: true };
  return new Promise((resolve, reject) => {
    channel.sendToQueue(queue, message.content, options, (err: unknown) => (err ? reject(err instanceof Error ? err : new Error('the broker refused a moved dead letter (nack)')) : resolve()));
  });
}

function withoutUndefined(properties: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(properties).filter(([, v]) => v !== undefined && v !== null));
}
