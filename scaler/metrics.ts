// The scaler's metrics, fed from its tick snapshots (Scaler's onTick), the schedule slots it
// decides (onScheduleSlot), and by wrapping the runner launcher — so scaler/loop.ts needs nothing
// of its own for them.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ReconnectMetrics } from '../shared/metrics.js';
import type { RunnerLauncher } from '../shared/ports/runner-launcher.js';
import type { ScalerSnapshot } from './loop.js';
import type { SlotDecision } from './schedules/planner.js';
import { SLOT_OUTCOMES } from '../shared/store/schedules.js';

export class ScalerMetrics {
  readonly reconnects: ReconnectMetrics;
  private readonly ready: Gauge;
  private readonly inFlight: Gauge;
  private readonly dead: Gauge;
  private readonly backlogAge: Gauge;
  private readonly runners: Gauge<'state'>;
  private readonly leader: Gauge;
  private readonly lastTick: Gauge;
  private readonly tickDuration: Histogram;
  private readonly tickFailures: Counter;
  private readonly launches: Counter;
  private readonly launchFailures: Counter;
  private readonly scheduleSlots: Counter<'outcome'>;
  private readonly scheduleLag: Histogram;
  /** Since when (epoch ms) the syncs queue has had ready messages, as far as the ticks saw. */
  private backlogSince: number | undefined;

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.ready = new Gauge({ name: 'tidepool_queue_ready_messages', help: 'Sync requests ready in the syncs queue, waiting for a runner.', registers });
    this.inFlight = new Gauge({
      name: 'tidepool_queue_in_flight_messages',
      help: 'Sync requests delivered to runners and not yet settled (the syncs running now, from the runners\' heartbeats).',
      registers,
    });
    this.dead = new Gauge({ name: 'tidepool_dead_letter_messages', help: 'Letters in the dead-letter queue (<prefix>.dead-letters).', registers });
    this.backlogAge = new Gauge({
      name: 'tidepool_queue_backlog_age_seconds',
      help:
        'How long the syncs queue has held ready messages without once being empty (0 when empty): an upper bound on the age of the oldest waiting ' +
        'sync request. RabbitMQ reports no head-message timestamp for quorum queues, and peeking would count as a delivery.',
      registers,
    });
    this.runners = new Gauge({
      name: 'tidepool_runners',
      help: 'Runners by state: running (heartbeating) or starting (launched, no heartbeat yet).',
      labelNames: ['state'],
      registers,
    });
    this.leader = new Gauge({ name: 'tidepool_scaler_leader', help: '1 when this scaler is the leader (the one that launches), else 0.', registers });
    this.lastTick = new Gauge({ name: 'tidepool_scaler_last_tick_timestamp_seconds', help: 'When this scaler last completed a tick (Unix time): alert on time() minus it.', registers });
    this.tickDuration = new Histogram({
      name: 'tidepool_scaler_tick_duration_seconds',
      help: 'Duration of one scaler tick: read the queues and heartbeats, decide, launch.',
      // A tick is a few ms of Redis and AMQP round trips; a launch of Kubernetes Jobs can take seconds.
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.tickFailures = new Counter({
      name: 'tidepool_scaler_tick_failures_total',
      help: 'Scaler ticks that failed (broker or store unreachable, launcher listing failed): nothing was launched in them. The log says so once per failing streak.',
      registers,
    });
    this.launches = new Counter({ name: 'tidepool_runner_launches_total', help: 'Runners launched (accepted by the platform).', registers });
    this.launchFailures = new Counter({ name: 'tidepool_runner_launch_failures_total', help: 'Runner launches asked for that the platform refused or that failed.', registers });
    this.scheduleSlots = new Counter({
      name: 'tidepool_schedule_slots_total',
      help: 'Schedule slots decided by this scaler (each slot is decided, and counted, by one scaler), by outcome: published, skipped (paused, or a sync of the connection still queued or running), missed (no scaler led at the slot and catchUp left it).',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of SLOT_OUTCOMES) this.scheduleSlots.inc({ outcome }, 0);
    this.scheduleLag = new Histogram({
      name: 'tidepool_schedule_lag_seconds',
      help: 'From a schedule slot (plus its jitter) to the broker confirming its sync: late by a broker outage, a leader handover, or catch-up.',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
      registers,
    });
    this.runners.set({ state: 'running' }, 0);
    this.runners.set({ state: 'starting' }, 0);
    this.reconnects = new ReconnectMetrics(registry);
  }

  /** Takes one tick's snapshot; `now` is when the tick ended (the snapshot's `at` is when it began). */
  observe(snapshot: ScalerSnapshot, now = Date.now()): void {
    this.ready.set(snapshot.ready);
    this.inFlight.set(snapshot.inFlight);
    this.dead.set(snapshot.deadLetters);
    this.runners.set({ state: 'running' }, snapshot.running);
    this.runners.set({ state: 'starting' }, snapshot.starting);
    this.leader.set(snapshot.leader ? 1 : 0);
    this.lastTick.set(now / 1000);
    this.tickDuration.observe(Math.max(0, now - snapshot.at) / 1000);
    if (snapshot.ready === 0) this.backlogSince = undefined;
    else this.backlogSince ??= snapshot.at;
    this.backlogAge.set(this.backlogSince === undefined ? 0 : Math.max(0, snapshot.at - this.backlogSince) / 1000);
  }

  /** A schedule slot this scaler decided (each slot is decided by one scaler only). */
  scheduleSlot(decision: SlotDecision): void {
    this.scheduleSlots.inc({ outcome: decision.outcome });
    if (decision.outcome === 'published' && decision.record.lagMs !== undefined) this.scheduleLag.observe(decision.record.lagMs / 1000);
  }

  tickFailed(): void {
    this.tickFailures.inc();
  }

  /** The launcher, counting launches and launch failures on their way through. */
  instrument(launcher: RunnerLauncher): RunnerLauncher {
    const { launches, launchFailures } = this;
    return {
      kind: launcher.kind,
      async launch(count: number): Promise<string[]> {
        let ids: string[];
        try {
          ids = await launcher.launch(count);
        } catch (err) {
          launchFailures.inc(count);
          throw err;
        }
        launches.inc(ids.length);
        if (ids.length < count) launchFailures.inc(count - ids.length);
        return ids;
      },
      list: () => launcher.list(),
      close: () => launcher.close(),
    };
  }
}
