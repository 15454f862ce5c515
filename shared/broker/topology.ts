// RabbitMQ names and their declaration. Declaring is idempotent (same arguments every time), so
// every process declares at start and after each reconnect, and none depends on another having
// run first.
import type { Channel } from 'amqplib';

export interface Topology {
  /** Direct exchange sync requests are published to. */
  exchange: string;
  /** Quorum queue the runners consume. */
  syncsQueue: string;
  /** Exchange failed syncs are dead-lettered through (by the runner, or by the broker at the delivery limit). */
  deadExchange: string;
  /** Where dead letters wait for an operator. */
  deadQueue: string;
  syncRoutingKey: string;
  deadRoutingKey: string;
}

export function topologyFor(prefix: string): Topology {
  return {
    exchange: prefix,
    syncsQueue: `${prefix}.syncs`,
    deadExchange: `${prefix}.dlx`,
    deadQueue: `${prefix}.dead`,
    syncRoutingKey: 'sync',
    deadRoutingKey: 'dead',
  };
}

/**
 * The broker gives up on a message redelivered this many times (a runner crashing on it again
 * and again) and dead-letters it: the last line of defence against a poison message.
 */
export const DELIVERY_LIMIT = 10;

export async function declareTopology(channel: Channel, t: Topology): Promise<void> {
  await channel.assertExchange(t.exchange, 'direct', { durable: true });
  await channel.assertExchange(t.deadExchange, 'direct', { durable: true });
  await channel.assertQueue(t.deadQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.bindQueue(t.deadQueue, t.deadExchange, t.deadRoutingKey);
  await channel.assertQueue(t.syncsQueue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': DELIVERY_LIMIT,
      'x-dead-letter-exchange': t.deadExchange,
      'x-dead-letter-routing-key': t.deadRoutingKey,
      // at-least-once dead-lettering (RabbitMQ ≥ 3.10) needs reject-publish overflow: a message
      // the broker dead-letters is not dropped if the dead queue is briefly unavailable.
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    },
  });
  await channel.bindQueue(t.syncsQueue, t.exchange, t.syncRoutingKey);
}
