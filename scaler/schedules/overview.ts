// Every scheduled connection as an operator sees it: its schedule, whether it is paused, when
// its next sync is due and what became of its last slot. One reading for `tidepool schedules`
// and the dashboard.
import type { Schedule } from '../../shared/schedule.js';
import type { Store } from '../../shared/store/index.js';
import type { SlotRecord } from '../../shared/store/schedules.js';
import { SlotClock } from './schedule.js';

export interface ScheduleOverview {
  connectionId: string;
  schedule: Schedule;
  paused: boolean;
  pausedAt?: string;
  /** When the next slot's sync is due (slot + jitter), ISO; null if the pattern never fires again. */
  nextRun: string | null;
  /** The latest decided slot: when, what became of it, the sync it published or why not. */
  lastSlot: { slot: string; outcome: SlotRecord['outcome']; syncId?: string; reason?: string; lagMs?: number } | null;
}

export async function scheduleOverview(store: Store, now = Date.now()): Promise<ScheduleOverview[]> {
  const connections = (await store.connections.list()).filter((c) => c.schedule !== undefined).sort((a, b) => a.id.localeCompare(b.id));
  return Promise.all(
    connections.map(async (c): Promise<ScheduleOverview> => {
      const schedule = c.schedule!;
      const status = await store.schedules.status(c.id);
      // Slots are decided in order from the cursor on: the next to come is the first after it.
      const next = new SlotClock(c.id, schedule).nextDue(Math.max(status.cursor ?? now, now - 1));
      const last = status.last;
      return {
        connectionId: c.id,
        schedule,
        paused: status.paused,
        ...(status.pausedAt !== undefined ? { pausedAt: status.pausedAt } : {}),
        nextRun: next ? new Date(next.due).toISOString() : null,
        lastSlot: last
          ? {
              slot: new Date(last.slot).toISOString(),
              outcome: last.outcome,
              ...(last.syncId !== undefined ? { syncId: last.syncId } : {}),
              ...(last.reason !== undefined ? { reason: last.reason } : {}),
              ...(last.lagMs !== undefined ? { lagMs: last.lagMs } : {}),
            }
          : null,
      };
    }),
  );
}
