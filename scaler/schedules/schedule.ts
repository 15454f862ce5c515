// A schedule's slots, pure: when they fall (croner, in the schedule's time zone), how far each is
// jittered, and the sync id each slot publishes under. Everything here is a function of the
// connection and the slot alone, so two scalers, or one restarted, compute the same answers.
import { createHash } from 'node:crypto';
import { Cron } from 'croner';
import { jitterMsOf, type Schedule } from '../../shared/schedule.js';
import { ID_PATTERN } from '../../shared/ids.js';

/** The slot times a schedule produces, in epoch milliseconds. */
export class SlotClock {
  private readonly cron: Cron;
  readonly jitterMaxMs: number;

  constructor(
    readonly connectionId: string,
    readonly schedule: Schedule,
  ) {
    // No callback: croner computes times and starts no timer.
    this.cron = new Cron(schedule.cron, { timezone: schedule.timezone, mode: '5-or-6-parts' });
    this.jitterMaxMs = jitterMsOf(schedule);
  }

  /** The first slot strictly after `afterMs`, or undefined if the pattern never fires again. */
  next(afterMs: number): number | undefined {
    return this.cron.nextRun(new Date(afterMs))?.getTime();
  }

  /**
   * The slots in (afterMs, untilMs], oldest first, at most `max` of them; `truncated` when more
   * follow within the range (a scaler down for long under a fine-grained pattern).
   */
  between(afterMs: number, untilMs: number, max: number): { slots: number[]; truncated: boolean } {
    const slots: number[] = [];
    let at = afterMs;
    for (;;) {
      const next = this.next(at);
      if (next === undefined || next > untilMs) return { slots, truncated: false };
      if (slots.length === max) return { slots, truncated: true };
      slots.push(next);
      at = next;
    }
  }

  /** When the slot's sync is due: the slot plus its jitter. */
  dueAt(slotMs: number): number {
    return slotMs + slotJitterMs(this.connectionId, slotMs, this.jitterMaxMs);
  }

  /** The first slot after `afterMs` with its due time (what `tidepool schedules` shows as next run). */
  nextDue(afterMs: number): { slot: number; due: number } | undefined {
    const slot = this.next(afterMs);
    return slot === undefined ? undefined : { slot, due: this.dueAt(slot) };
  }

  /** Pattern and zone: what the slots depend on (a change of either starts the schedule afresh). */
  get spec(): string {
    return `${this.schedule.cron}|${this.schedule.timezone}`;
  }
}

/**
 * The jitter of one slot, in [0, maxMs): drawn from a hash of connection and slot rather than at
 * random, so every scaler (and a restarted one) waits the same for the same slot.
 */
export function slotJitterMs(connectionId: string, slotMs: number, maxMs: number): number {
  if (maxMs <= 0) return 0;
  const hash = createHash('sha256').update(`${connectionId}\n${slotMs}`).digest();
  return hash.readUInt32BE(0) % maxMs;
}

/** `20261205T010300Z`: a slot as it appears in its sync id. */
function compactTime(slotMs: number): string {
  const iso = new Date(slotMs).toISOString();
  const ms = slotMs % 1000;
  // Cron slots fall on whole seconds; milliseconds appear only if one ever does not.
  return `${iso.slice(0, 19).replace(/[-:]/g, '')}${ms === 0 ? '' : `.${String(ms).padStart(3, '0')}`}Z`;
}

/** Longest part of a connection id kept in a sync id before it is shortened with a hash. */
const ID_ROOM = 128 - 'sched-20261205T010300.000Z-'.length;

/**
 * The sync id of a connection's slot: `sched-<slot UTC>-<connection>`. The same for every scaler,
 * so a slot published twice (a second scaler, a confirm lost in an outage) is one sync that the
 * runner's duplicate check runs once. A connection id too long to fit keeps its first characters
 * and a hash of the whole. Always a valid id (shared/ids.ts).
 */
export function scheduledSyncId(connectionId: string, slotMs: number): string {
  const room = ID_ROOM;
  const name = connectionId.length <= room ? connectionId : `${connectionId.slice(0, room - 13)}-${createHash('sha256').update(connectionId).digest('hex').slice(0, 12)}`;
  const id = `sched-${compactTime(slotMs)}-${name}`;
  if (!ID_PATTERN.test(id)) throw new Error(`scheduled sync id ${id} breaks the id rule`);
  return id;
}
