// Schedules' bookkeeping: per connection, the cursor (every slot up to it is decided), pause, and
// one record per recent slot saying what became of it. A slot is *claimed* before anything is
// published for it, atomically: of two scalers (or a scaler and its restarted self) one gets it;
// the other sees it held and waits. A claim is a lease: a scaler that died holding one loses it
// after `leaseMs`, and whoever takes it over publishes the same sync id again (harmless, the
// runner runs a sync id once). A decided slot (published, skipped, missed) never changes again.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Keys } from './redis.js';

export const SLOT_OUTCOMES = ['published', 'skipped', 'missed'] as const;
export type SlotOutcome = (typeof SLOT_OUTCOMES)[number];

export interface SlotRecord {
  /** The slot, epoch ms, and when its sync was due (slot + jitter). */
  slot: number;
  due: number;
  outcome: 'claimed' | SlotOutcome;
  /** Its fate under the catch-up rule, fixed at the first claim (scaler/schedules/policy.ts). */
  fate?: 'on_time' | 'catch_up' | 'missed';
  /** The scaler holding or having decided it. */
  owner: string;
  /** While claimed: until when the claim holds without renewal. */
  claimedUntil?: number;
  syncId?: string;
  /** Why it was skipped or missed. */
  reason?: string;
  /** When it was decided (for published: when the broker confirmed). */
  decidedAt?: number;
  /** Published: from due to confirmed. */
  lagMs?: number;
}

export interface ScheduleStatus {
  /** Every slot up to here is decided; undefined before a scaler first saw the schedule. */
  cursor?: number;
  paused: boolean;
  pausedAt?: string;
  /** The latest decided slot. */
  last?: SlotRecord;
}

/** Recent slot records kept per connection. */
export const SLOT_RECORDS_KEPT = 200;

const slotRecord = z.looseObject({
  slot: z.number(),
  due: z.number(),
  outcome: z.enum(['claimed', ...SLOT_OUTCOMES]),
  owner: z.string(),
});

function decodeSlot(json: string | null | undefined): SlotRecord | undefined {
  if (!json) return undefined;
  try {
    const parsed = slotRecord.safeParse(JSON.parse(json));
    return parsed.success ? (parsed.data) : undefined;
  } catch {
    return undefined;
  }
}

// A schedule seen for the first time, or with another pattern or zone: its slots start now (the
// slots of a pattern that did not exist then are not "missed"). Nothing for a connection deleted
// since the scaler listed it (KEYS[2]): its schedule keys are not made again.
const BEGIN = `
if redis.call('EXISTS', KEYS[2]) == 0 then return false end
if redis.call('HGET', KEYS[1], 'spec') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'spec', ARGV[1], 'cursor', ARGV[2])
end
return redis.call('HMGET', KEYS[1], 'cursor', 'paused')`;

// ARGV: slot, owner, now, leaseMs, the record of a new claim. A schedule whose keys are gone
// (its connection deleted after BEGIN) has no slots left to claim.
const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone', ''} end
local cursor = tonumber(redis.call('HGET', KEYS[1], 'cursor') or '-1')
if tonumber(ARGV[1]) <= cursor then return {'gone', ''} end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local r = cjson.decode(cur)
  if r.outcome ~= 'claimed' then return {'decided', cur} end
  if r.owner ~= ARGV[2] and tonumber(r.claimedUntil) > tonumber(ARGV[3]) then return {'held', cur} end
  r.owner = ARGV[2]
  r.claimedUntil = tonumber(ARGV[3]) + tonumber(ARGV[4])
  cur = cjson.encode(r)
  redis.call('HSET', KEYS[2], ARGV[1], cur)
  return {'claimed', cur}
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
return {'claimed', ARGV[5]}`;

// ARGV: slot, owner, the decided record, its outcome, sync id published ('' for none), records kept.
// Only the claim's holder decides; the cursor moves up to the slot (slots are decided in order).
// Nothing is written for a schedule deleted with its connection meanwhile.
const DECIDE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then return 0 end
local r = cjson.decode(cur)
if r.outcome ~= 'claimed' or r.owner ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local cursor = tonumber(redis.call('HGET', KEYS[1], 'cursor') or '-1')
if tonumber(ARGV[1]) > cursor then redis.call('HSET', KEYS[1], 'cursor', ARGV[1]) end
redis.call('HSET', KEYS[1], 'last', ARGV[3])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[1], ARGV[5]) end
local keep = tonumber(ARGV[6])
if redis.call('HLEN', KEYS[2]) > keep + 50 then
  local fields = redis.call('HKEYS', KEYS[2])
  table.sort(fields, function(a, b) return tonumber(a) < tonumber(b) end)
  for i = 1, #fields - keep do redis.call('HDEL', KEYS[2], fields[i]) end
end
return 1`;

type ScheduleRedis = Redis & {
  tpScheduleBegin(state: string, connection: string, spec: string, now: number): Promise<[string | null, string | null] | null>;
  tpScheduleClaim(state: string, slots: string, slot: number, owner: string, now: number, leaseMs: number, record: string): Promise<[string, string]>;
  tpScheduleDecide(state: string, slots: string, open: string, slot: number, owner: string, record: string, outcome: string, syncId: string, keep: number): Promise<number>;
};

/**
 * Every key a connection's schedule keeps (bookkeeping, slot records, open syncs): deleted with
 * the connection, or a connection applied again under the same id and pattern would resume the
 * old cursor, pause and slot history, and count the slots in between as missed.
 */
export function scheduleKeys(keys: Keys, connectionId: string): string[] {
  return [keys.schedule(connectionId), keys.scheduleSlots(connectionId), keys.scheduleOpen(connectionId)];
}

export type ClaimResult =
  | { status: 'claimed'; record: SlotRecord }
  /** Decided already (by us or another scaler), or older than the cursor: nothing to do. */
  | { status: 'decided' | 'gone' }
  /** Another scaler's live claim: wait for it. */
  | { status: 'held'; record: SlotRecord };

export class ScheduleStore {
  private readonly redis: ScheduleRedis;

  constructor(
    redis: Redis,
    private readonly keys: Keys,
  ) {
    if (!('tpScheduleClaim' in redis)) {
      redis.defineCommand('tpScheduleBegin', { numberOfKeys: 2, lua: BEGIN });
      redis.defineCommand('tpScheduleClaim', { numberOfKeys: 2, lua: CLAIM });
      redis.defineCommand('tpScheduleDecide', { numberOfKeys: 3, lua: DECIDE });
    }
    this.redis = redis as ScheduleRedis;
  }

  /**
   * The cursor and pause of a schedule with this pattern and zone (`spec`); a new spec starts at
   * `now`. Undefined when the connection is no longer stored (deleted since it was listed).
   */
  async begin(connectionId: string, spec: string, now: number): Promise<{ cursor: number; paused: boolean } | undefined> {
    const begun = await this.redis.tpScheduleBegin(this.keys.schedule(connectionId), this.keys.connection(connectionId), spec, now);
    if (!begun) return undefined;
    const [cursor, paused] = begun;
    return { cursor: Number(cursor ?? now), paused: paused === '1' };
  }

  /** The stored records of these slots (undefined where none). */
  async slotRecords(connectionId: string, slots: readonly number[]): Promise<(SlotRecord | undefined)[]> {
    if (slots.length === 0) return [];
    const values = await this.redis.hmget(this.keys.scheduleSlots(connectionId), ...slots.map(String));
    return values.map(decodeSlot);
  }

  /** Claims a slot for `owner` for `leaseMs` (or renews our claim, or takes over an expired one). */
  async claim(connectionId: string, slot: number, due: number, fate: NonNullable<SlotRecord['fate']>, owner: string, now: number, leaseMs: number): Promise<ClaimResult> {
    const fresh: SlotRecord = { slot, due, outcome: 'claimed', fate, owner, claimedUntil: now + leaseMs };
    const [status, json] = await this.redis.tpScheduleClaim(this.keys.schedule(connectionId), this.keys.scheduleSlots(connectionId), slot, owner, now, leaseMs, JSON.stringify(fresh));
    if (status === 'decided' || status === 'gone') return { status };
    const record = decodeSlot(json) ?? fresh;
    return status === 'claimed' ? { status, record } : { status: 'held', record };
  }

  /**
   * Records what became of a slot we hold, and moves the cursor up to it; a published sync joins
   * the connection's open syncs. False when the claim is no longer ours (it expired and another
   * scaler took it over): that scaler decides, and counts, the slot.
   */
  async decide(connectionId: string, record: SlotRecord & { outcome: SlotOutcome }): Promise<boolean> {
    const stored: SlotRecord = { ...record };
    delete stored.claimedUntil;
    const done = await this.redis.tpScheduleDecide(
      this.keys.schedule(connectionId),
      this.keys.scheduleSlots(connectionId),
      this.keys.scheduleOpen(connectionId),
      record.slot,
      record.owner,
      JSON.stringify(stored),
      record.outcome,
      record.outcome === 'published' && record.syncId ? record.syncId : '',
      SLOT_RECORDS_KEPT,
    );
    return done === 1;
  }

  /** Scheduled syncs published and not yet known to be over, oldest first, with their slots. */
  async openSyncs(connectionId: string): Promise<Array<{ syncId: string; slot: number }>> {
    const flat = await this.redis.zrange(this.keys.scheduleOpen(connectionId), 0, -1, 'WITHSCORES');
    const out: Array<{ syncId: string; slot: number }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ syncId: flat[i]!, slot: Number(flat[i + 1]) });
    return out;
  }

  /** These syncs are over (or forgotten): no longer open. */
  async closeSyncs(connectionId: string, syncIds: readonly string[]): Promise<void> {
    if (syncIds.length > 0) await this.redis.zrem(this.keys.scheduleOpen(connectionId), ...syncIds);
  }

  async setPaused(connectionId: string, paused: boolean, now = new Date()): Promise<void> {
    const key = this.keys.schedule(connectionId);
    if (paused) await this.redis.hset(key, 'paused', '1', 'pausedAt', now.toISOString());
    else await this.redis.hdel(key, 'paused', 'pausedAt');
  }

  async status(connectionId: string): Promise<ScheduleStatus> {
    const [cursor, paused, pausedAt, last] = await this.redis.hmget(this.keys.schedule(connectionId), 'cursor', 'paused', 'pausedAt', 'last');
    const lastRecord = decodeSlot(last);
    return {
      ...(cursor !== null ? { cursor: Number(cursor) } : {}),
      paused: paused === '1',
      ...(pausedAt !== null ? { pausedAt } : {}),
      ...(lastRecord ? { last: lastRecord } : {}),
    };
  }

  /** The latest slot records, newest first. */
  async recentSlots(connectionId: string, limit = 20): Promise<SlotRecord[]> {
    const all = await this.redis.hgetall(this.keys.scheduleSlots(connectionId));
    return Object.values(all)
      .map(decodeSlot)
      .filter((r): r is SlotRecord => r !== undefined)
      .sort((a, b) => b.slot - a.slot)
      .slice(0, limit);
  }
}
