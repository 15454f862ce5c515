// The scaler's loop: every pollInterval, read the queue depth and the runners' heartbeats,
// count the runners still starting, ask the policy how many to launch, launch them. Only the
// leader launches; others observe, so two scalers never double-launch.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ChannelModel } from 'amqplib';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { connectBroker, queueDepth } from '../shared/broker/connection.js';
import { declareTopology, topologyFor } from '../shared/broker/topology.js';
import type { RunnerLauncher } from '../shared/ports/runner-launcher.js';
import type { Store } from '../shared/store/index.js';
import { LeaderLock } from '../shared/store/leader.js';
import type { Leadership } from './leadership.js';
import { decideLaunches, refillTokens, spendTokens, type RateLimiterState } from './policy.js';

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
}

export class Scaler {
  private readonly logger: Logger;
  private readonly leader: Leadership;
  private readonly topology;
  private broker: ChannelModel | undefined;
  private limiter: RateLimiterState;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private ticking: Promise<unknown> = Promise.resolve();
  readonly id = `scaler-${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  last: ScalerSnapshot | undefined;

  constructor(private readonly options: ScalerOptions) {
    const { config, store } = options;
    this.logger = options.logger.child({ component: 'scaler', scalerId: this.id });
    this.topology = topologyFor(config.prefix, config);
    this.leader = options.leadership?.(this.id) ?? new LeaderLock(store.redis, store.keys.leader('scaler'), this.id, config.leaderTtl);
    this.limiter = { tokens: config.launchBurst, updatedAt: Date.now() };
  }

  async start(): Promise<void> {
    await this.ensureBroker();
    this.running = true;
    this.logger.info({ pollIntervalMs: this.options.config.pollInterval, maxRunners: this.options.config.maxRunners, launcher: this.options.launcher.kind }, 'scaler started');
    this.schedule(0);
  }

  private schedule(delay: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick()
        .catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'scaler tick failed; retrying next poll'))
        .finally(() => this.schedule(this.options.config.pollInterval));
    }, delay);
  }

  private async ensureBroker(): Promise<ChannelModel> {
    if (this.broker) return this.broker;
    const connection = await connectBroker({ url: this.options.config.amqpUrl, logger: this.logger, timeoutMs: 30_000, connectionName: this.id });
    connection.on('close', () => {
      if (this.broker === connection) this.broker = undefined;
    });
    const channel = await connection.createChannel();
    channel.on('error', () => undefined);
    await declareTopology(channel, this.topology);
    await channel.close();
    this.broker = connection;
    return connection;
  }

  /** One observation and decision. Exposed for tests and for `tidepool scaler --once`. */
  async tick(): Promise<ScalerSnapshot> {
    const { config, store, launcher } = this.options;
    const now = Date.now();
    const broker = await this.ensureBroker();
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
      (r) => r.phase !== 'finished' && !heartbeating.has(r.runnerId) && now - r.launchedAt < config.runnerStartTimeout,
    ).length;
    const inFlight = consuming.reduce((sum, h) => sum + h.inFlight, 0);
    const allInFlight = heartbeats.reduce((sum, h) => sum + h.inFlight, 0);

    this.limiter = refillTokens(this.limiter, now, config.launchRate, config.launchBurst);
    const decision = decideLaunches({
      ready: depth.ready,
      inFlight,
      running: consuming.length,
      starting,
      concurrency: config.concurrency,
      minRunners: config.minRunners,
      maxRunners: config.maxRunners,
      launchBudget: this.limiter.tokens,
    });

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
      await store.series.add({ t: now, ready: depth.ready, inFlight: allInFlight, running: heartbeats.length, starting: snapshot.starting, launched: launchedNow });
    }
    this.options.onTick?.(snapshot);
    return snapshot;
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.ticking;
    await this.leader.resign().catch(() => undefined);
    await this.options.launcher.close();
    await this.broker?.close().catch(() => undefined);
    this.broker = undefined;
    this.logger.info('scaler stopped');
  }
}
