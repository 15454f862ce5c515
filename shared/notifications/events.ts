// What is notified: an event with an id of its own (receivers dedupe on it: delivery is at least
// once), its type, when it happened, and what it is about — a sync's run record, or details of
// its own (a missed schedule slot).
import { randomUUID } from 'node:crypto';
import type { RunRecord } from '../store/runs.js';
import type { EventType } from './targets.js';

export interface NotificationEvent {
  id: string;
  type: EventType;
  occurredAt: string;
  connectionId?: string;
  syncId?: string;
  /** The run record as it was settled (secrets redacted before it is sent). */
  run?: RunRecord;
  /** Anything else the event says (schedule.missed: the slot and why). */
  data?: Record<string, unknown>;
}

/** What a caller of notify() gives: the rest (id, time) is filled in. */
export type EventInput = Omit<NotificationEvent, 'id' | 'occurredAt'> & { occurredAt?: string };

export function newEvent(input: EventInput): NotificationEvent {
  return { id: randomUUID(), occurredAt: new Date().toISOString(), ...input };
}

/**
 * The events a settled run gives: every failed attempt is a sync.failed (retrying or not), a
 * dead-lettered one also a sync.dead_lettered, a success a sync.succeeded (sent only to targets
 * that opted in). Other statuses (running, requeued, cancelled) notify nothing.
 */
export function runEvents(run: RunRecord): EventType[] {
  switch (run.status) {
    case 'succeeded':
      return ['sync.succeeded'];
    case 'retrying':
      return ['sync.failed'];
    case 'dead_lettered':
      return ['sync.failed', 'sync.dead_lettered'];
    default:
      return [];
  }
}
