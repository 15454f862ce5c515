// A runner's life: connect, heartbeat, consume with prefetch = concurrency, run syncs, and leave
// when idle (exit 0: the Job completes, the pool shrinks by itself) or when told to stop.
//
// Stopping is in phases: stop intake (cancel the consumer) → let in-flight syncs finish within
// shutdownGrace → abort what is left (their messages go back to the queue unacked) → close.
import { hostname } from 'node:os';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { connectBroker, openConfirmChannel } from '../shared/broker/connection.js';
import { topologyFor } from '../shared/broker/topology.js';
import type { ConnectorLauncher } from '../shared/ports/connector-launcher.js';
import { createRedis } from '../shared/store/redis.js';
import { createStore, type Store } from '../shared/store/index.js';
import { handleDelivery } from './consumer.js';
import { IdleTimer } from './idle.js';

export interface RunnerOptions {
  config: Config;
  logger: Logger;
  launcher: ConnectorLauncher;
  runnerId: string;
  /** Runs once the store is connected, before consuming (e.g. sweeping orphaned connector pods). */
  prepare?: (store: Store) => Promise<void>;
}

type StopReason = 'idle' | 'signal' | 'broker-lost';

export class Runner {
  private readonly config: Config;
  private readonly logger: Logger;
  private store: Store | undefined;
  private connection: ChannelModel | undefined;
  private consumeChannel: Channel | undefined;
  private publishChannel: ConfirmChannel | undefined;
  private consumerTag: string | undefined;
  private readonly inFlight = new Map<Promise<void>, AbortController>();
  private readonly idle: IdleTimer;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date().toISOString();
  private syncsDone = 0;
  private stopping: Promise<number> | undefined;
  private draining = false;
  private resolveDone!: (code: number) => void;
  /** Resolves with the process exit code once the runner has stopped. */
  readonly done = new Promise<number>((resolve) => (this.resolveDone = resolve));
  private forceStop: (() => void) | undefined;

  constructor(private readonly options: RunnerOptions) {
    this.config = options.config;
    this.logger = options.logger.child({ component: 'runner', runnerId: options.runnerId });
    this.idle = new IdleTimer(this.config.idleTimeout, () => void this.stop('idle'));
  }

  async start(): Promise<void> {
    const { config } = this;
    const redis = createRedis(config.redisUrl, this.logger);
    this.store = createStore(redis, config);
    const topology = topologyFor(config.prefix, config);
    this.connection = await connectBroker({ url: config.amqpUrl, logger: this.logger, timeoutMs: 60_000, connectionName: `tidepool-runner-${this.options.runnerId}` });
    this.connection.on('close', () => {
      if (!this.stopping) {
        this.logger.error('broker connection lost: stopping; unacked syncs return to the queue');
        void this.stop('broker-lost');
      }
    });
    this.publishChannel = await openConfirmChannel(this.connection, topology, this.logger);
    this.consumeChannel = await this.connection.createChannel();
    this.consumeChannel.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'consume channel error'));
    await this.consumeChannel.prefetch(config.concurrency);

    await this.options.prepare?.(this.store);

    // First heartbeat before consuming: the scaler stops counting us as "starting" at once.
    await this.heartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), config.heartbeatInterval);

    const deps = {
      store: this.store,
      launcher: this.options.launcher,
      config,
      logger: this.logger,
      runnerId: this.options.runnerId,
      publishChannel: this.publishChannel,
      topology,
    };
    const { consumerTag } = await this.consumeChannel.consume(topology.syncsQueue, (message) => {
      if (message) this.onDelivery(message, deps);
    });
    this.consumerTag = consumerTag;
    this.idle.start();
    this.logger.info({ concurrency: config.concurrency, idleTimeoutMs: config.idleTimeout, launcher: this.options.launcher.kind }, 'runner consuming');
  }

  private onDelivery(message: ConsumeMessage, deps: Parameters<typeof handleDelivery>[1]): void {
    const channel = this.consumeChannel;
    if (!channel) return;
    this.idle.syncStarted();
    const abort = new AbortController();
    const work = (async () => {
      let settlement: 'ack' | 'requeue' = 'requeue';
      try {
        settlement = await handleDelivery(message, deps, abort.signal);
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'delivery handling failed: left for redelivery');
      }
      try {
        if (settlement === 'ack') channel.ack(message);
        else channel.nack(message, false, true);
      } catch (err) {
        // Channel gone: the broker redelivers the message to another runner.
        this.logger.warn({ err: (err as Error).message }, 'could not settle message; it will be redelivered');
      }
      this.syncsDone++;
    })();
    this.inFlight.set(work, abort);
    void work.finally(() => {
      this.inFlight.delete(work);
      this.idle.syncFinished();
      void this.heartbeat();
    });
  }

  private async heartbeat(): Promise<void> {
    if (!this.store) return;
    try {
      await this.store.runners.beat({
        runnerId: this.options.runnerId,
        host: hostname(),
        pid: process.pid,
        concurrency: this.config.concurrency,
        inFlight: this.inFlight.size,
        syncsDone: this.syncsDone,
        state: this.draining ? 'draining' : 'consuming',
        startedAt: this.startedAt,
        lastBeatAt: new Date().toISOString(),
      });
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'heartbeat failed');
    }
  }

  /** Graceful stop; a second call (second signal) forces the abort of in-flight syncs. */
  stop(reason: StopReason): Promise<number> {
    if (this.stopping) {
      this.forceStop?.();
      return this.stopping;
    }
    this.stopping = this.shutdown(reason);
    void this.stopping.then((code) => this.resolveDone(code));
    return this.stopping;
  }

  private async shutdown(reason: StopReason): Promise<number> {
    this.draining = true;
    this.idle.stop();
    this.logger.info({ reason, inFlight: this.inFlight.size }, 'runner stopping');
    if (this.consumeChannel && this.consumerTag) {
      await this.consumeChannel.cancel(this.consumerTag).catch(() => undefined);
    }
    void this.heartbeat();

    let aborted = 0;
    if (this.inFlight.size > 0) {
      const grace = reason === 'broker-lost' ? 0 : this.config.shutdownGrace;
      const forced = new Promise<void>((resolve) => {
        this.forceStop = resolve;
        setTimeout(resolve, grace).unref();
      });
      await Promise.race([Promise.allSettled([...this.inFlight.keys()]), forced]);
      aborted = this.inFlight.size;
      for (const abort of this.inFlight.values()) abort.abort();
      await Promise.allSettled([...this.inFlight.keys()]);
    }

    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.store?.runners.remove(this.options.runnerId).catch(() => undefined);
    await this.consumeChannel?.close().catch(() => undefined);
    await this.publishChannel?.close().catch(() => undefined);
    await this.connection?.close().catch(() => undefined);
    this.store?.redis.disconnect();
    this.logger.info({ reason, syncsDone: this.syncsDone, aborted }, 'runner stopped');
    return reason === 'broker-lost' ? 1 : 0;
  }
}
