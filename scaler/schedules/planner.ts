// The leading scaler's schedule step: for each scheduled connection, take the slots that came
// due since its cursor, in order, and for each one claim it in the store, decide (catch-up rule,
// pause, overlap rule), publish its sync if so decided, and record the outcome. A slot whose
// publish fails (broker away) stays claimed and is tried again next step, so it is published
// once the broker is back; a slot held by another scaler stops the connection's walk until that
// claim is decided or expires. Exactly one decision per slot, whoever runs this and however
// often: the claim (shared/store/schedules.ts) says who decides, the sync id (one per slot) makes
// a repeated publish one sync.
import type { Connection } from '../../shared/connections.js';
import type { Logger } from '../../shared/logger.js';
import type { Notifier } from '../../shared/notifications/notify.js';
import { newSyncRequest, type SyncRequest } from '../../shared/messages.js';
import type { Schedule } from '../../shared/schedule.js';
import type { Store } from '../../shared/store/index.js';
import type { SlotOutcome, SlotRecord } from '../../shared/store/schedules.js';
import { catchUpFates, overlapVerdict, type ConnectionActivity, type DecidedFate } from './policy.js';
import { scheduledSyncId, SlotClock } from './schedule.js';

export interface PlannerSettings {
  /** A slot unclaimed this long past due passed with no scaler leading: the catch-up rule decides it. */
  lateAfterMs: number;
  /** catchUp: all publishes at most this many of the slots a downtime missed. */
  catchUpMax: number;
  /** How long a claim holds without renewal: a scaler gone mid-slot hands it over after this. */
  leaseMs: number;
  /** Slots looked at per connection and step (a long downtime under a seconds pattern is walked in steps). */
  scanMax: number;
  /** A published sync with no run record after this long is taken for lost (purged from the queue). */
  forgetOpenAfterMs: number;
}

export const DEFAULT_PLANNER_SETTINGS: Omit<PlannerSettings, 'lateAfterMs' | 'leaseMs'> = {
  catchUpMax: 10,
  scanMax: 1000,
  forgetOpenAfterMs: 24 * 3_600_000,
};

/** One slot decided by this scaler: counted once across scalers (the store says who decided). */
export interface SlotDecision {
  connectionId: string;
  outcome: SlotOutcome;
  record: SlotRecord;
}

export interface PlannerOptions {
  store: Store;
  logger: Logger;
  /** Who claims: the scaler's id. */
  owner: string;
  /** Publishes a sync request and resolves once the broker confirmed it. */
  publish: (request: SyncRequest) => Promise<void>;
  settings: PlannerSettings;
  onDecided?: (decision: SlotDecision) => void;
  /** Where a missed slot is told (webhooks' schedule.missed); never fails a step. */
  notifier?: Pick<Notifier, 'notify'>;
  now?: () => number;
}

type Scheduled = Connection & { schedule: Schedule };

export class SchedulePlanner {
  private readonly clocks = new Map<string, SlotClock>();
  private readonly now: () => number;
  /** Syncs whose publish failed and is being tried again (logged once each). */
  private readonly unpublished = new Set<string>();

  constructor(private readonly options: PlannerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** One pass over every scheduled connection; returns when the next slot is due (epoch ms), if any. */
  async step(): Promise<number | undefined> {
    const connections = (await this.options.store.connections.list()).filter((c): c is Scheduled => c.schedule !== undefined);
    let nextDue: number | undefined;
    for (const connection of connections) {
      try {
        const due = await this.connectionStep(connection);
        if (due !== undefined) nextDue = Math.min(nextDue ?? due, due);
      } catch (err) {
        // One connection's failure (a store hiccup) does not hold up the others.
        this.options.logger.warn({ connectionId: connection.id, err: (err as Error).message }, 'schedule step failed for a connection; trying again next step');
      }
    }
    this.forgetClocks(connections);
    return nextDue;
  }

  /** The connection's schedule clock, kept while its definition is unchanged. */
  clockFor(connection: Scheduled): SlotClock {
    const cached = this.clocks.get(connection.id);
    if (cached && JSON.stringify(cached.schedule) === JSON.stringify(connection.schedule)) return cached;
    const clock = new SlotClock(connection.id, connection.schedule);
    this.clocks.set(connection.id, clock);
    return clock;
  }

  private forgetClocks(connections: Scheduled[]): void {
    const ids = new Set(connections.map((c) => c.id));
    for (const id of this.clocks.keys()) if (!ids.has(id)) this.clocks.delete(id);
  }

  /** Decides the connection's due slots in order; returns when its next one is due. */
  private async connectionStep(connection: Scheduled): Promise<number | undefined> {
    const { store, settings } = this.options;
    const clock = this.clockFor(connection);
    const now = this.now();
    const begun = await store.schedules.begin(connection.id, clock.spec, now);
    // Deleted since the list was read: nothing to decide; the next list drops it.
    if (!begun) return undefined;
    const { cursor, paused } = begun;
    // More than catchUpMax, or a truncated scan could never tell which late slots are the latest.
    const { slots, truncated } = clock.between(cursor, now, Math.max(settings.scanMax, settings.catchUpMax + 1));
    const records = await store.schedules.slotRecords(connection.id, slots);
    const dues = slots.map((slot) => clock.dueAt(slot));
    const fates = catchUpFates({
      slots: dues.map((due, i) => ({ due, claimed: records[i]?.outcome === 'claimed' })),
      now,
      lateAfterMs: settings.lateAfterMs,
      catchUp: connection.schedule.catchUp,
      catchUpMax: settings.catchUpMax,
      truncated,
    });
    // Every due slot is claimed first, then each decided in order: a publish that fails (broker
    // away) leaves the slots after it claimed on time, so they are not taken for missed later.
    const claimed: Array<{ record: SlotRecord; fate: DecidedFate }> = [];
    let wake: number | undefined;
    for (const [i, slot] of slots.entries()) {
      const due = dues[i]!;
      const fate = fates[i]!;
      if (due > now) {
        wake = due;
        break;
      }
      if (fate === 'undecided') {
        wake = now;
        break;
      }
      const claim = await store.schedules.claim(connection.id, slot, due, fate, this.options.owner, this.now(), settings.leaseMs);
      // Another scaler's live claim: its holder decides; later slots wait their turn.
      if (claim.status === 'held') {
        wake = claim.record.claimedUntil ?? now + settings.leaseMs;
        break;
      }
      if (claim.status === 'claimed') claimed.push({ record: claim.record, fate: claim.record.fate ?? fate });
    }
    const activity = new ActivityReader(store, connection.id, settings.forgetOpenAfterMs, this.options.logger, this.now);
    for (const { record, fate } of claimed) {
      if (!(await this.settle(connection, record, fate, paused, activity))) return now;
    }
    // A truncated scan has more slots due already: the next pass goes on at once.
    return wake ?? (truncated ? now : clock.nextDue(Math.max(now, slots.at(-1) ?? now))?.due);
  }

  /** Decides one claimed slot; false when its publish failed (the claim stays ours, tried again next step). */
  private async settle(connection: Scheduled, claimed: SlotRecord, fate: DecidedFate, paused: boolean, activity: ActivityReader): Promise<boolean> {
    const { logger } = this.options;
    const id = connection.id;
    if (fate === 'missed') {
      return this.record(id, { ...claimed, outcome: 'missed', reason: `no scaler led at the slot (catchUp ${connection.schedule.catchUp})`, decidedAt: this.now() });
    }
    if (paused) return this.record(id, { ...claimed, outcome: 'skipped', reason: 'paused', decidedAt: this.now() });
    const verdict = overlapVerdict(connection.schedule.overlap, await activity.read(connection.schedule.overlap));
    if (!verdict.publish) return this.record(id, { ...claimed, outcome: 'skipped', reason: verdict.reason, decidedAt: this.now() });
    const syncId = scheduledSyncId(id, claimed.slot);
    const request = { ...newSyncRequest(id, { requestedBy: `schedule ${new Date(claimed.slot).toISOString()}` }), syncId };
    try {
      await this.options.publish(request);
    } catch (err) {
      // Once per slot at warn: a broker outage is tried again every few hundred ms.
      const first = !this.unpublished.has(syncId);
      this.unpublished.add(syncId);
      logger[first ? 'warn' : 'debug']({ connectionId: id, syncId, err: (err as Error).message }, 'scheduled sync not published yet (its slot stays claimed); trying again');
      return false;
    }
    this.unpublished.delete(syncId);
    const confirmed = this.now();
    activity.published();
    return this.record(id, { ...claimed, outcome: 'published', syncId, decidedAt: confirmed, lagMs: Math.max(0, confirmed - claimed.due) });
  }

  private async record(connectionId: string, record: SlotRecord & { outcome: SlotOutcome }): Promise<boolean> {
    if (await this.options.store.schedules.decide(connectionId, record)) this.decided(connectionId, record);
    return true;
  }

  private decided(connectionId: string, record: SlotRecord & { outcome: SlotOutcome }): void {
    const level = record.outcome === 'missed' ? 'warn' : 'info';
    this.options.logger[level]({ connectionId, slot: new Date(record.slot).toISOString(), outcome: record.outcome, syncId: record.syncId, reason: record.reason, lagMs: record.lagMs }, `scheduled slot ${record.outcome}`);
    this.options.onDecided?.({ connectionId, outcome: record.outcome, record });
    if (record.outcome === 'missed') {
      // Queued for the webhooks (the leading scaler delivers them); notify() never throws.
      void this.options.notifier?.notify({ type: 'schedule.missed', connectionId, data: { slot: new Date(record.slot).toISOString(), reason: record.reason } });
    }
  }
}

/**
 * What the store knows of a connection's syncs, read once per step and only when the overlap
 * rule needs it: its lock (a sync running, scheduled or not) and the run records of the
 * scheduled syncs published and not yet over (none yet: queued; requeued or retrying: waiting
 * again). A sync published on request is seen once it runs, not while it is queued: only the
 * broker knows that, and it does not tell which connection a message is for.
 */
class ActivityReader {
  private known: ConnectionActivity | undefined;

  constructor(
    private readonly store: Store,
    private readonly connectionId: string,
    private readonly forgetAfterMs: number,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  async read(policy: Schedule['overlap']): Promise<ConnectionActivity> {
    if (policy === 'allow') return { running: false, waiting: 0 };
    this.known ??= await this.load();
    return this.known;
  }

  /** A sync just published waits in the queue. */
  published(): void {
    if (this.known) this.known = { ...this.known, waiting: this.known.waiting + 1 };
  }

  private async load(): Promise<ConnectionActivity> {
    const open = await this.store.schedules.openSyncs(this.connectionId);
    const [holder, runs] = await Promise.all([this.store.locks.holder(this.connectionId), this.store.runs.getMany(open.map((o) => o.syncId))]);
    const over: string[] = [];
    let running = holder !== undefined;
    let waiting = 0;
    open.forEach((o, i) => {
      const run = runs[i];
      if (!run) {
        if (this.now() - o.slot > this.forgetAfterMs) {
          this.logger.warn({ connectionId: this.connectionId, syncId: o.syncId }, 'scheduled sync never started: taken for lost, no longer holding back its connection\'s slots');
          over.push(o.syncId);
        } else waiting += 1;
      } else if (run.status === 'succeeded' || run.status === 'dead_lettered') over.push(o.syncId);
      else if (run.status === 'running' || run.status === 'failed') running = true;
      else waiting += 1;
    });
    await this.store.schedules.closeSyncs(this.connectionId, over);
    return { running, waiting };
  }
}
