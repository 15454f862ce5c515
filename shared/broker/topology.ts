// RabbitMQ names and their declaration. Declaring is idempotent (same arguments every time), so
// every process declares at start and after each reconnect, and none depends on another having
// run first.
import type { Channel } from 'amqplib';

/** Attempts a sync gets by default (the first and four retries); setting maxAttempts. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/**
 * The broker gives up on a message redelivered this many times (a runner crashing on it again
 * and again) and dead-letters it: the last line of defence against a poison message. Setting
 * deliveryLimit; fixed when the syncs queue is first declared.
 */
export const DEFAULT_DELIVERY_LIMIT = 10;
/** The delivery limit of a syncs queue declared with the default settings (kept for its users; prefer Topology.deliveryLimit). */
export const DELIVERY_LIMIT = DEFAULT_DELIVERY_LIMIT;

export interface Topology {
  /** Direct exchange sync requests are published to. */
  exchange: string;
  /** Quorum queue the runners consume. */
  syncsQueue: string;
  /** Exchange failed syncs are dead-lettered through (by the runner, or by the broker at the delivery limit). */
  deadExchange: string;
  /** Where dead letters wait for an operator: a classic queue (declareDeadQueue says why). */
  deadQueue: string;
  /**
   * The quorum dead queue of earlier tidepools (`<prefix>.dead`). Not declared: when it exists,
   * its letters are moved to deadQueue (shared/broker/dead-queue-migration.ts).
   */
  legacyDeadQueue: string;
  syncRoutingKey: string;
  deadRoutingKey: string;
  /**
   * Delay queues, one per retry level: `retryQueues[n - 1]` (`<prefix>.retry.<n>`) holds syncs
   * whose attempt n failed, until their expiration sends them back to `exchange` for attempt
   * n + 1. Published to through the default exchange (routing key = queue name).
   */
  retryQueues: string[];
  /** x-delivery-limit of the syncs queue. */
  deliveryLimit: number;
}

/**
 * The settings the names depend on (maxAttempts and deliveryLimit of shared/config.ts, which
 * takes its defaults from here: the broker's names know nothing of the configuration).
 */
export interface TopologySettings {
  maxAttempts?: number;
  deliveryLimit?: number;
}

export function topologyFor(prefix: string, settings: TopologySettings = {}): Topology {
  const maxAttempts = settings.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  return {
    exchange: prefix,
    syncsQueue: `${prefix}.syncs`,
    deadExchange: `${prefix}.dlx`,
    deadQueue: `${prefix}.dead-letters`,
    legacyDeadQueue: `${prefix}.dead`,
    syncRoutingKey: 'sync',
    deadRoutingKey: 'dead',
    retryQueues: Array.from({ length: Math.max(0, maxAttempts - 1) }, (_, i) => retryQueueName(prefix, i + 1)),
    deliveryLimit: settings.deliveryLimit ?? DEFAULT_DELIVERY_LIMIT,
  };
}

export function retryQueueName(prefix: string, level: number): string {
  return `${prefix}.retry.${level}`;
}

export async function declareTopology(channel: Channel, t: Topology): Promise<void> {
  await channel.assertExchange(t.exchange, 'direct', { durable: true });
  await channel.assertExchange(t.deadExchange, 'direct', { durable: true });
  await declareDeadQueue(channel, t.deadQueue);
  await channel.bindQueue(t.deadQueue, t.deadExchange, t.deadRoutingKey);
  await channel.assertQueue(t.syncsQueue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': t.deliveryLimit,
      'x-dead-letter-exchange': t.deadExchange,
      'x-dead-letter-routing-key': t.deadRoutingKey,
      // at-least-once dead-lettering (RabbitMQ ≥ 3.10) needs reject-publish overflow: a message
      // the broker dead-letters is not dropped if the dead queue is briefly unavailable.
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    },
  });
  await channel.bindQueue(t.syncsQueue, t.exchange, t.syncRoutingKey);

  // Delay queues for retries. Each message carries its own `expiration` (the jittered backoff
  // of its level, shared/backoff.ts retryDelay); nothing consumes these queues, and an expired
  // message is dead-lettered back to the syncs exchange with the sync routing key (the broker
  // drops its expiration on the way, so it does not expire again).
  //
  // One queue per level, not one for all: a queue expires messages only at its head, so in a
  // single queue a 10 s retry would wait behind a 10 min one. Within a level the delays differ
  // only by the jitter, which bounds that head-of-line wait to the jitter spread.
  //
  // Quorum, at-least-once dead-lettering: measured on RabbitMQ 3.10.8, quorum queues honour
  // per-message expiration and dead-letter on expiry, head-of-line included, just like classic
  // ones. The difference is a message expiring while its target cannot take it (no queue
  // bound to the routing key yet, a target refusing): with at-most-once dead-lettering (classic
  // queues, or quorum by default) it was dropped, a retry silently lost; with at-least-once it
  // stayed in the delay queue and reached the target once it could (the broker retries after
  // ~3 min). At-least-once needs reject-publish overflow.
  //
  // No queue-wide TTL: the arguments are the same for every level and every setting, so changing
  // retryBaseDelay or maxAttempts never makes a declaration fail with PRECONDITION_FAILED.
  for (const queue of t.retryQueues) {
    await channel.assertQueue(queue, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': t.exchange,
        'x-dead-letter-routing-key': t.syncRoutingKey,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    });
  }
}

/**
 * The dead queue is a classic queue, not a quorum one: operators list it by taking letters and
 * giving them back (shared/broker/dead-letters.ts; AMQP has no way to read a queue without
 * taking), and a quorum queue counts every such return as a delivery (RabbitMQ 3.x to 4.2): with
 * a delivery limit — the default 20 from RabbitMQ 4.0 on, or any operator policy — it drops a
 * letter after that many listings. A classic queue has no delivery limit at all, keeps no
 * delivery count before 4.3, and puts a letter given back at its old place: a listing changes
 * nothing. What it gives up is replication across a cluster, which only matters for the few
 * letters waiting on a node that is down; they are durable (runners publish them persistent,
 * and the broker keeps the delivery mode of what it dead-letters).
 *
 * Letters still reach it at least once: the syncs queue's at-least-once dead-lettering needs
 * only its targets to confirm, which classic queues do.
 *
 * It has a new name (`<prefix>.dead-letters`): a queue's type cannot change in place, and
 * declaring the old name as classic on a broker holding the quorum one failed with
 * PRECONDITION_FAILED in every process, the dlq CLI included. The old queue's letters are moved
 * over instead (dead-queue-migration.ts).
 */
async function declareDeadQueue(channel: Channel, queue: string): Promise<void> {
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'classic' } });
}
