// The scaler's loop: every pollInterval, read the queue depth and the runners' heartbeats,
// count the runners still starting, ask the policy how many to launch, launch them. Only the
// leader launches; others observe, so two scalers never double-launch.
//
// A lost broker connection does not stop the loop: its BrokerSession brings it back in the
// background with jittered backoff, for ever (topology declared again), and meanwhile every
// tick fails before deciding anything — a scaler that cannot read the queue depth launches
// nobody.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../shared/config.js';
import { settledWithin } from '../shared/backoff.js';
import type { Logger } from '../shared/logger.js';
import type { SyncRequest } from '../shared/messages.js';
import { BrokerUnavailableError, queueDepth } from '../shared/broker/connection.js';
import { publishSync } from '../shared/broker/publisher.js';
import { BrokerSession } from '../shared/broker/session.js';
import { topologyFor } from '../shared/broker/topology.js';
import { firstConnection } from '../shared/store/redis.js';
import { tlsFiles } from '../shared/tls.js';
import type { RunnerLauncher } from '../shared/ports/runner-launcher.js';
import type { Store } from '../shared/store/index.js';
import type { Leadership } from './leadership/leadership.js';
import { LeaderLock } from './leadership/redis-lock.js';
import { decideLaunches, refillTokens, spendTokens, type RateLimiterState } from './policy.js';
import { scalerSettings, type ScalerSettings } from './settings.js';
import { StartFailures } from './start-failures.js';
import { DEFAULT_PLANNER_SETTINGS, SchedulePlanner, type SlotDecision } from './schedules/planner.js';
import { ScheduleLoop } from './schedules/schedule-loop.js';
import { Notifier } from '../shared/notifications/notify.js';

/** A scheduled publish unconfirmed this long is tried again (same sync id): a partitioned broker never answers. */
const SCHEDULED_PUBLISH_TIMEOUT_MS = 10_000;

export interface ScalerSnapshot {
  at: number;
  leader: boolean;
  ready: number;
  deadLetters: number;
  inFlight: number;
  running: number;
  starting: number;
  launched: number;
  reason: string;
}

export interface ScalerOptions {
  config: Config;
  logger: Logger;
  launcher: RunnerLauncher;
  store: Store;
  /** Called after every tick (the demo's progress display, tests). */
  onTick?: (snapshot: ScalerSnapshot) => void;
  /** Who may launch; default a Redis lock under the prefix. */
  leadership?: (scalerId: string) => Leadership;
  /** Called each time a lost broker connection is restored (e.g. tidepool_broker_reconnects_total). */
  onBrokerRestored?: (downMs: number) => void;
  /** Called for each failed tick (e.g. tidepool_scaler_tick_failures_total): the log says so once per streak. */
  onTickFailed?: (err: Error) => void;
  /** Called for each schedule slot this scaler decided (tidepool_schedule_slots_total, tidepool_schedule_lag_seconds). */
  onScheduleSlot?: (decision: SlotDecision) => void;
}

export class Scaler {
  private readonly logger: Logger;
  private readonly settings: ScalerSettings;
  private readonly leader: Leadership;
  private readonly topology;
  /** Ticks read the queues on throw-away channels; scheduled syncs are published on `publish`. */
  private readonly broker: BrokerSession<{ publish: { confirm: true } }>;
  /** Publishes connections' scheduled syncs while this scaler leads (scaler/schedules/). */
  private readonly schedules: ScheduleLoop;
  /** Since when ticks have been failing (logged once per streak, not once per poll). */
  private failingSince: number | undefined;
  private limiter: RateLimiterState;
  private readonly startFailures = new StartFailures();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private ticking: Promise<unknown> = Promise.resolve();
  readonly id = `scaler-${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  last: ScalerSnapshot | undefined;

  constructor(private readonly options: ScalerOptions) {
    const { config, store } = options;
    this.logger = options.logger.child({ component: 'scaler', scalerId: this.id });
    this.settings = scalerSettings(config);
    this.topology = topologyFor(config.prefix, config);
    this.leader = options.leadership?.(this.id) ?? new LeaderLock(store.redis, store.keys.leader('scaler'), this.id, this.settings.leaderTtlMs);
    this.limiter = { tokens: this.settings.launchRate.burst, updatedAt: Date.now() };
    this.broker = new BrokerSession({
      url: config.amqpUrl,
      tls: tlsFiles(config, 'amqp'),
      logger: this.logger,
      connectionName: this.id,
      channels: { publish: { confirm: true } },
      topology: this.topology,
      // Reconnecting is the running loop's business: a scaler ticked without it (--once, tests)
      // connects again on its next tick.
      keepConnected: () => this.running,
      onLost: () => this.logger.warn('broker connection lost: launching nothing until the queue depth can be read again; reconnecting'),
      onRestored: (_session, downMs, tries) => {
        this.logger.info({ downMs, tries }, 'broker connection restored: topology declared');
        this.options.onBrokerRestored?.(downMs);
      },
    });
    const planner = new SchedulePlanner({
      store,
      logger: this.logger,
      owner: this.id,
      publish: (request) => this.publishScheduled(request),
      settings: {
        ...DEFAULT_PLANNER_SETTINGS,
        // Later than a few polls past due and unclaimed: no scaler was leading at the slot.
        lateAfterMs: Math.max(5_000, 3 * this.settings.pollIntervalMs),
        // A scaler gone mid-slot hands its claims over as it hands over leadership.
        leaseMs: this.settings.leaderTtlMs,
      },
      ...(options.onScheduleSlot ? { onDecided: options.onScheduleSlot } : {}),
      notifier: new Notifier(store.outbox, this.logger),
    });
    this.schedules = new ScheduleLoop(planner, () => this.leader.acquireOrRenew(), this.logger, this.settings.pollIntervalMs);
  }

  /** Publishes a scheduled sync on the session's confirm channel; throws while the broker is away. */
  private async publishScheduled(request: SyncRequest): Promise<void> {
    const session = this.broker.session;
    if (!session) throw new BrokerUnavailableError('broker unavailable (reconnecting)');
    const publish = publishSync(session.channels.publish, this.topology, request);
    if (!(await settledWithin(publish, SCHEDULED_PUBLISH_TIMEOUT_MS))) throw new Error(`no confirm within ${SCHEDULED_PUBLISH_TIMEOUT_MS / 1000} s`);
    await publish;
  }

  async start(): Promise<void> {
    // A certificate Redis or we refuse stops the scaler here (shared/tls.ts); Redis merely down does not.
    await firstConnection(this.options.store.redis);
    if (!this.broker.session) await this.broker.connect(30_000);
    this.running = true;
    this.logger.info({ pollIntervalMs: this.settings.pollIntervalMs, maxRunners: this.settings.limits.maxRunners, launcher: this.options.launcher.kind }, 'scaler started');
    this.schedule(0);
    this.schedules.start();
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick()
        .then(
          () => {
            if (this.failingSince !== undefined) this.logger.info({ failedForMs: Date.now() - this.failingSince }, 'scaler ticks succeed again');
            this.failingSince = undefined;
          },
          (err: unknown) => {
            // Once per streak at warn: a broker outage must not write a line every poll.
            const first = this.failingSince === undefined;
            this.failingSince ??= Date.now();
            this.logger[first ? 'warn' : 'debug']({ err: (err as Error).message }, 'scaler tick failed; launching nothing, retrying every poll');
            this.options.onTickFailed?.(err as Error);
          },
        )
        .finally(() => this.schedule(this.settings.pollIntervalMs));
    }, delay);
  }

  /** The connection to read the queue with; a scaler whose loop is not running (--once, tests) connects here. */
  private async brokerForTick() {
    const session = this.broker.session;
    if (session) return session.connection;
    if (this.running) throw new BrokerUnavailableError('broker unavailable (reconnecting): queue depth unknown');
    return (await this.broker.connect(30_000)).connection;
  }

  /** One observation and decision. Exposed for tests and for `tidepool scaler --once`. */
  async tick(): Promise<ScalerSnapshot> {
    const { store, launcher } = this.options;
    const { limits, launchRate, runnerStartTimeoutMs } = this.settings;
    const now = Date.now();
    const broker = await this.brokerForTick();
    const [isLeader, depth, dead, heartbeats, launched] = await Promise.all([
      this.leader.acquireOrRenew(),
      queueDepth(broker, this.topology.syncsQueue),
      queueDepth(broker, this.topology.deadQueue),
      store.runners.alive(),
      launcher.list(),
    ]);
    const consuming = heartbeats.filter((h) => h.state === 'consuming');
    const heartbeating = new Set(heartbeats.map((h) => h.runnerId));
    const starting = launched.filter(
      (r) => r.phase !== 'finished' && !heartbeating.has(r.runnerId) && now - r.launchedAt < runnerStartTimeoutMs,
    ).length;
    const inFlight = consuming.reduce((sum, h) => sum + h.inFlight, 0);
    const allInFlight = heartbeats.reduce((sum, h) => sum + h.inFlight, 0);

    for (const f of this.startFailures.observe(launched, heartbeating, now)) {
      this.logger.error(
        { runnerId: f.runnerId, exitCode: f.exitCode, reason: f.reason, consecutive: this.startFailures.consecutiveFailures, holdMs: this.startFailures.heldFor(now) },
        'runner exited before its first heartbeat: holding launches (its log says why)',
      );
    }

    this.limiter = refillTokens(this.limiter, now, launchRate.perSecond, launchRate.burst);
    let decision = decideLaunches({ ready: depth.ready, inFlight, running: consuming.length, starting, ...limits, launchBudget: this.limiter.tokens });

    const held = this.startFailures.heldFor(now);
    if (held > 0 && decision.launch > 0) {
      decision = { launch: 0, reason: `holding launches ${Math.ceil(held / 1000)} s: ${this.startFailures.consecutiveFailures} runner(s) in a row exited before their first heartbeat` };
    }

    let launchedNow = 0;
    if (isLeader && decision.launch > 0) {
      this.limiter = spendTokens(this.limiter, decision.launch);
      const ids = await launcher.launch(decision.launch);
      launchedNow = ids.length;
      this.logger.info({ launched: ids.length, ready: depth.ready, inFlight, running: consuming.length, starting, reason: decision.reason }, 'launching runners');
    }
    const snapshot: ScalerSnapshot = {
      at: now,
      leader: isLeader,
      ready: depth.ready,
      deadLetters: dead.ready,
      inFlight: allInFlight,
      running: heartbeats.length,
      starting: starting + launchedNow,
      launched: launchedNow,
      reason: decision.reason,
    };
    this.last = snapshot;
    if (isLeader) {
      await store.series.add({ t: now, ready: depth.ready, inFlight: allInFlight, dead: dead.ready, running: heartbeats.length, starting: snapshot.starting, launched: launchedNow });
    }
    this.options.onTick?.(snapshot);
    return snapshot;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.schedules.stop();
    this.broker.stop();
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    await this.broker.reconnectionEnded();
    await this.leader.resign().catch(() => undefined);
    await this.options.launcher.close();
    await this.broker.close();
    this.logger.info('scaler stopped');
  }
}
