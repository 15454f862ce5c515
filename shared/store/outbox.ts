// The notifications outbox: events written by whoever notices them (a runner settling a run, the
// scaler missing a schedule slot), delivered later by the deliverer (scaler/notifications/).
// Everything is in Redis, so a restart of any process loses nothing:
//
// - `outbox:items` (hash): id → the item as JSON. An item is an `event` not yet fanned out to its
//   targets, or a `delivery` of one event to one target, with its attempts so far.
// - `outbox:due` (sorted set): id → when it is next due (epoch ms). Claiming an item moves its
//   time ahead by a lease (SQS's visibility timeout): a deliverer that dies holding it gives it
//   back by not coming back, and two deliverers never hold one item at once.
// - `outbox:given-up` (list, newest first, capped): deliveries that failed until they were too old.
import type { Redis } from 'ioredis';
import type { NotificationEvent } from '../notifications/events.js';
import type { Target } from '../notifications/targets.js';
import type { Keys } from './redis.js';

export interface OutboxEventItem {
  kind: 'event';
  id: string;
  event: NotificationEvent;
}

export interface OutboxDelivery {
  kind: 'delivery';
  id: string;
  event: NotificationEvent;
  target: Target;
  /** Attempts made so far. */
  attempts: number;
  createdAt: number;
  lastError?: string;
}

export type OutboxItem = OutboxEventItem | OutboxDelivery;

/**
 * Items the outbox holds at most: with no deliverer running (runners started without a scaler)
 * it would grow for ever. Past this, new events are dropped (and the caller logs it).
 */
export const OUTBOX_MAX_ITEMS = 100_000;
/** Given-up deliveries kept for a look (`outbox:given-up`). */
export const GIVEN_UP_KEPT = 1_000;

const ENQUEUE = `
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1`;

// Due items, each pushed ahead by the lease as it is taken; ids whose item is gone are dropped.
const CLAIM = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local item = redis.call('HGET', KEYS[1], id)
  if item then
    redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
    table.insert(out, item)
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return out`;

type OutboxRedis = Redis & {
  tpOutboxEnqueue(items: string, due: string, id: string, json: string, at: number, max: number): Promise<number>;
  tpOutboxClaim(items: string, due: string, now: number, max: number, leaseMs: number): Promise<string[]>;
};

export class Outbox {
  private readonly redis: OutboxRedis;

  constructor(redis: Redis, private readonly keys: Keys) {
    if (!('tpOutboxEnqueue' in redis)) {
      redis.defineCommand('tpOutboxEnqueue', { numberOfKeys: 2, lua: ENQUEUE });
      redis.defineCommand('tpOutboxClaim', { numberOfKeys: 2, lua: CLAIM });
    }
    this.redis = redis as OutboxRedis;
  }

  /** One write: the event, due now. False when the outbox is full and the event was dropped. */
  async enqueue(event: NotificationEvent): Promise<boolean> {
    const item: OutboxEventItem = { kind: 'event', id: `event:${event.id}`, event };
    return (await this.redis.tpOutboxEnqueue(this.keys.outboxItems(), this.keys.outboxDue(), item.id, JSON.stringify(item), Date.now(), OUTBOX_MAX_ITEMS)) === 1;
  }

  /** Up to `max` due items, each leased for `leaseMs`: nobody else gets them until then. */
  async claim(max: number, leaseMs: number, now = Date.now()): Promise<OutboxItem[]> {
    const raw = await this.redis.tpOutboxClaim(this.keys.outboxItems(), this.keys.outboxDue(), now, max, leaseMs);
    const items: OutboxItem[] = [];
    for (const text of raw) {
      try {
        items.push(JSON.parse(text) as OutboxItem);
      } catch {
        // Not ours to deliver (anyone who can write to Redis can put anything there): left leased.
      }
    }
    return items;
  }

  /** An event replaced by its deliveries, due now, in one transaction: a crash leaves one or the other. */
  async fanOut(event: OutboxEventItem, deliveries: OutboxDelivery[], now = Date.now()): Promise<void> {
    const tx = this.redis.multi().hdel(this.keys.outboxItems(), event.id).zrem(this.keys.outboxDue(), event.id);
    for (const d of deliveries) tx.hset(this.keys.outboxItems(), d.id, JSON.stringify(d)).zadd(this.keys.outboxDue(), now, d.id);
    await tx.exec();
  }

  /** Delivered: gone. */
  async done(id: string): Promise<void> {
    await this.redis.multi().hdel(this.keys.outboxItems(), id).zrem(this.keys.outboxDue(), id).exec();
  }

  /** Failed this time: the item with its attempts counted, due again at `dueAt`. */
  async retry(delivery: OutboxDelivery, dueAt: number): Promise<void> {
    await this.redis.multi().hset(this.keys.outboxItems(), delivery.id, JSON.stringify(delivery)).zadd(this.keys.outboxDue(), dueAt, delivery.id).exec();
  }

  /** Failed for too long: out of the outbox, onto the given-up list (its target's secret left out). */
  async giveUp(delivery: OutboxDelivery): Promise<void> {
    const { secret: _secret, ...target } = delivery.target;
    await this.redis
      .multi()
      .hdel(this.keys.outboxItems(), delivery.id)
      .zrem(this.keys.outboxDue(), delivery.id)
      .lpush(this.keys.outboxGivenUp(), JSON.stringify({ ...delivery, target, givenUpAt: new Date().toISOString() }))
      .ltrim(this.keys.outboxGivenUp(), 0, GIVEN_UP_KEPT - 1)
      .exec();
  }

  /** Items waiting (events not yet fanned out, deliveries not yet made). */
  async pending(): Promise<number> {
    return this.redis.zcard(this.keys.outboxDue());
  }
}
