// What becomes of a due slot, pure: the catch-up rule for slots that passed while no scaler led,
// and the overlap rule for a slot that comes while a sync of the connection is still queued or
// running. The planner (planner.ts) feeds them what the store says.
import type { CatchUpPolicy, OverlapPolicy } from '../../shared/schedule.js';

/**
 * - on_time: due within `lateAfterMs`, or already claimed while it was (a publish held up by a
 *   broker outage or a scaler restart keeps its slot's place): publish, overlap permitting.
 * - catch_up: a slot that passed with no scaler leading, to be published late by the catch-up rule.
 * - missed: a slot that passed with no scaler leading, left unpublished by the catch-up rule.
 * - undecided: cannot be told yet (more slots follow beyond the bounded scan); the next step will.
 */
export type SlotFate = 'on_time' | 'catch_up' | 'missed' | 'undecided';
/** A fate fixed when the slot is first claimed and kept with the claim: a slot taken over or tried again keeps it. */
export type DecidedFate = Exclude<SlotFate, 'undecided'>;

export interface CatchUpInput {
  /** Due slots, oldest first: when each is due (slot + jitter) and whether a scaler already claimed it. */
  slots: ReadonlyArray<{ due: number; claimed: boolean }>;
  now: number;
  /** A slot unclaimed this long after it was due passed with no scaler leading. */
  lateAfterMs: number;
  catchUp: CatchUpPolicy;
  /** `all` publishes at most this many of the latest late slots; the older ones are missed. */
  catchUpMax: number;
  /** More slots follow those given (the scan is bounded): a late slot's followers are a lower bound. */
  truncated: boolean;
}

export function catchUpFates(input: CatchUpInput): SlotFate[] {
  const { slots, now, lateAfterMs, catchUp, catchUpMax, truncated } = input;
  const late = slots.map((s) => !s.claimed && now - s.due > lateAfterMs);
  const lateTotal = late.filter(Boolean).length;
  let lateSeen = 0;
  return late.map((isLate): SlotFate => {
    if (!isLate) return 'on_time';
    lateSeen += 1;
    // Late slots after this one, as far as the scan saw.
    const followers = lateTotal - lateSeen;
    if (catchUp === 'none') return 'missed';
    const kept = catchUp === 'latest' ? 1 : catchUpMax;
    if (followers >= kept) return 'missed';
    return truncated ? 'undecided' : 'catch_up';
  });
}

/** What the store knows of a connection's syncs right now. */
export interface ConnectionActivity {
  /** A sync of the connection holds its lock or has a run record in progress. */
  running: boolean;
  /** Scheduled syncs published and not started yet (queued, requeued, waiting for a retry). */
  waiting: number;
}

/** Whether the overlap policy lets a slot publish; when not, why (recorded with the skipped slot). */
export function overlapVerdict(policy: OverlapPolicy, activity: ConnectionActivity): { publish: true } | { publish: false; reason: string } {
  if (policy === 'allow') return { publish: true };
  if (policy === 'skip') {
    if (activity.running) return { publish: false, reason: 'overlap skip: a sync of the connection is running' };
    if (activity.waiting > 0) return { publish: false, reason: 'overlap skip: a sync of the connection is queued' };
    return { publish: true };
  }
  if (activity.waiting > 0) return { publish: false, reason: 'overlap buffer_one: a sync of the connection already waits' };
  return { publish: true };
}
