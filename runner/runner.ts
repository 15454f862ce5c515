// A runner's life: connect, heartbeat, consume with prefetch = concurrency, run syncs, and leave
// when idle (exit 0: the Job completes, the pool shrinks by itself) or when told to stop.
//
// Stopping is in phases: stop intake (cancel the consumer) → let in-flight syncs finish within
// shutdownGrace → abort what is left (their messages go back to the queue unacked) → close.
//
// Losing the broker is routine (a RabbitMQ restart, a network blip): the delivery tags of the
// syncs in flight died with their channel, so the broker hands those messages out again
// whatever this runner does. The runner interrupts them (recorded as `requeued`; never acked
// on another channel), reconnects with jittered backoff, declares the topology again and goes
// on consuming. Only after brokerReconnectTimeout without a broker does it give up (exit 1).
import { hostname } from 'node:os';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { backoffDelay, sleep } from '../shared/backoff.js';
import { connectBroker, RECONNECT_BACKOFF } from '../shared/broker/connection.js';
import { declareTopology, topologyFor, type Topology } from '../shared/broker/topology.js';
import { CancelledError } from '../shared/errors.js';
import type { ConnectorLauncher } from '../shared/ports/connector-launcher.js';
import { createRedis } from '../shared/store/redis.js';
import { createStore, type Store } from '../shared/store/index.js';
import { handleDelivery, type ConsumerDeps, type Settlement } from './delivery/consumer.js';
import { IdleTimer } from './idle.js';
import type { RunnerMetrics } from './metrics.js';

export interface RunnerOptions {
  config: Config;
  logger: Logger;
  launcher: ConnectorLauncher;
  runnerId: string;
  /** This runner's metrics (the caller serves their registry). */
  metrics: RunnerMetrics;
  /** Runs once the store is connected, before consuming (e.g. sweeping orphaned connector pods). */
  prepare?: (store: Store) => Promise<void>;
  /** Called each time a lost broker connection is restored (e.g. tidepool_broker_reconnects_total). */
  onBrokerRestored?: (downMs: number) => void;
}

type StopReason = 'idle' | 'signal' | 'broker-lost';

/** One broker connection and its two channels. Deliveries can only be settled on their own session. */
interface Session {
  readonly id: number;
  readonly connection: ChannelModel;
  readonly consumeChannel: Channel;
  readonly publishChannel: ConfirmChannel;
  consumerTag?: string;
  /** Lost or closed: its delivery tags are dead, nothing can be acked on it any more. */
  ended: boolean;
}

interface InFlight {
  abort: AbortController;
  session: Session;
}

/** How long a stopping runner waits for a reconnection attempt under way (one connect try is bounded by 10 s). */
const RECONNECT_STOP_WAIT_MS = 12_000;

export class Runner {
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly topology: Topology;
  private store: Store | undefined;
  private session: Session | undefined;
  private sessions = 0;
  private reconnecting: Promise<void> | undefined;
  /** Aborted when the runner stops: ends reconnection waits. */
  private readonly lifetime = new AbortController();
  private readonly inFlight = new Map<Promise<void>, InFlight>();
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
    this.topology = topologyFor(this.config.prefix, this.config);
    // While the broker is away the idle timer keeps running: a runner with nothing in flight
    // loses nothing by leaving (exit 0), and the scaler launches another once the queue is
    // readable again.
    this.idle = new IdleTimer(this.config.idleTimeout, () => void this.stop('idle'));
  }

  async start(): Promise<void> {
    const { config } = this;
    const redis = createRedis(config.redisUrl, this.logger);
    this.options.metrics.reconnects.watchRedis(redis);
    this.store = createStore(redis, config);
    const session = await this.openSession(60_000);
    this.session = session;

    await this.options.prepare?.(this.store);

    // First heartbeat before consuming: the scaler stops counting us as "starting" at once.
    await this.heartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), config.heartbeatInterval);

    try {
      await this.consume(session);
    } catch (err) {
      // Lost between connecting and consuming: reconnecting has already begun.
      if (!session.ended) throw err;
    }
    this.idle.start();
    this.logger.info({ concurrency: config.concurrency, idleTimeoutMs: config.idleTimeout, launcher: this.options.launcher.kind }, 'runner consuming');
  }

  /**
   * Connects, opens the publish (confirm) and consume channels and declares the topology — at
   * start and after every reconnection, so a broker that lost its definitions gets them back.
   * `timeoutMs` 0 is a single try.
   */
  private async openSession(timeoutMs: number): Promise<Session> {
    const connection = await connectBroker({
      url: this.config.amqpUrl,
      logger: this.logger,
      timeoutMs,
      signal: this.lifetime.signal,
      connectionName: `tidepool-runner-${this.options.runnerId}`,
    });
    // Listeners go on before anything is awaited, so a loss while opening is not missed.
    let session: Session | undefined;
    let lostWhileOpening: string | undefined;
    const lost = (what: string) => {
      if (session) this.onSessionLost(session, what);
      else lostWhileOpening ??= what;
    };
    connection.on('close', () => lost('connection closed'));
    connection.on('blocked', (reason: unknown) => this.logger.warn({ reason }, 'broker blocked this connection (resource alarm): publishes wait'));
    connection.on('unblocked', () => this.logger.info('broker unblocked this connection'));
    try {
      const publishChannel = await connection.createConfirmChannel();
      publishChannel.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'publish channel error'));
      publishChannel.on('close', () => lost('publish channel closed'));
      await declareTopology(publishChannel, this.topology);
      const consumeChannel = await connection.createChannel();
      consumeChannel.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'consume channel error'));
      consumeChannel.on('close', () => lost('consume channel closed'));
      await consumeChannel.prefetch(this.config.concurrency);
      if (lostWhileOpening) throw new Error(`broker ${lostWhileOpening} while opening channels`);
      session = { id: ++this.sessions, connection, consumeChannel, publishChannel, ended: false };
      return session;
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
  }

  private async consume(session: Session): Promise<void> {
    if (!this.store) throw new Error('runner not started');
    const deps: ConsumerDeps = {
      store: this.store,
      launcher: this.options.launcher,
      config: this.config,
      logger: this.logger,
      runnerId: this.options.runnerId,
      publishChannel: session.publishChannel,
      topology: this.topology,
      metrics: this.options.metrics,
    };
    const { consumerTag } = await session.consumeChannel.consume(this.topology.syncsQueue, (message) => {
      // null: the broker cancelled the consumer (the queue was deleted, or its leader moved away
      // for good). A new session declares the queue again and consumes anew.
      if (message) this.onDelivery(message, session, deps);
      else this.onSessionLost(session, 'consumer cancelled by the broker');
    });
    session.consumerTag = consumerTag;
  }

  private onDelivery(message: ConsumeMessage, session: Session, deps: ConsumerDeps): void {
    if (this.draining || session.ended) {
      // Arrived while stopping (sent before the cancel reached the broker): back it goes.
      this.settle(session, message, 'requeue');
      return;
    }
    this.idle.syncStarted();
    const abort = new AbortController();
    const work = (async () => {
      this.settle(session, message, await handleDelivery(message, deps, abort.signal));
      this.syncsDone++;
    })();
    this.inFlight.set(work, { abort, session });
    void work.finally(() => {
      this.inFlight.delete(work);
      this.idle.syncFinished();
      void this.heartbeat();
    });
  }

  /** Acks or requeues on the delivery's own channel; never on another (its tag means nothing there). */
  private settle(session: Session, message: ConsumeMessage, settlement: Settlement): void {
    if (session.ended) {
      this.logger.info({ messageId: message.properties.messageId as unknown, settlement }, 'not settled: its broker connection is gone, so the broker redelivers it');
      return;
    }
    try {
      if (settlement === 'ack') session.consumeChannel.ack(message);
      else session.consumeChannel.nack(message, false, true);
    } catch (err) {
      // Channel gone: the broker redelivers the message to another runner.
      this.logger.warn({ err: (err as Error).message }, 'could not settle message; it will be redelivered');
    }
  }

  private onSessionLost(session: Session, what: string): void {
    if (session.ended) return;
    session.ended = true;
    if (this.session === session) this.session = undefined;
    if (this.stopping) return; // our own closing
    const interrupted = [...this.inFlight.values()].filter((f) => f.session === session);
    this.logger.warn(
      { reason: what, interrupted: interrupted.length },
      'broker connection lost: interrupting in-flight syncs (the broker redelivers them) and reconnecting',
    );
    for (const f of interrupted) f.abort.abort(new CancelledError('sync interrupted: the runner lost its broker connection; the broker redelivers the message'));
    // A channel closed on its own leaves the connection open: end all of it, start afresh.
    void session.connection.close().catch(() => undefined);
    if (!this.reconnecting) {
      this.reconnecting = this.reconnect().finally(() => (this.reconnecting = undefined));
    }
  }

  private async reconnect(): Promise<void> {
    const lostAt = Date.now();
    const deadline = lostAt + this.config.brokerReconnectTimeout;
    // The interrupted syncs end first (they kill their connectors, record themselves as
    // requeued): consuming again while they wind down could run more than `concurrency` syncs.
    await Promise.allSettled([...this.inFlight.keys()]);
    for (let attempt = 0; ; attempt++) {
      // Give up only once the whole timeout has passed: the last wait is cut to the time left,
      // so the last try is made at the deadline rather than skipped before it.
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(backoffDelay(attempt, RECONNECT_BACKOFF), left), this.lifetime.signal);
      if (this.isStopping()) return;
      let session: Session | undefined;
      try {
        session = await this.openSession(0);
        if (this.isStopping()) {
          await this.closeSession(session);
          return;
        }
        this.session = session;
        await this.consume(session);
        if (session.ended) continue; // lost again at once: next try
        this.logger.info({ downMs: Date.now() - lostAt, tries: attempt + 1, session: session.id }, 'broker connection restored: topology declared, consuming again');
        this.options.onBrokerRestored?.(Date.now() - lostAt);
        void this.heartbeat();
        return;
      } catch (err) {
        if (this.isStopping()) return;
        if (session) await this.closeSession(session);
        this.logger.warn({ err: (err as Error).message, tries: attempt + 1, downMs: Date.now() - lostAt }, 'broker still unreachable; retrying');
      }
    }
    this.logger.error(
      { brokerReconnectTimeoutMs: this.config.brokerReconnectTimeout },
      'broker unreachable for brokerReconnectTimeout: giving up (unacked syncs return to the queue)',
    );
    void this.stop('broker-lost');
  }

  /** A method, not the field: the field changes under awaits, where TypeScript's narrowing does not see it. */
  private isStopping(): boolean {
    return this.stopping !== undefined;
  }

  private async closeSession(session: Session): Promise<void> {
    session.ended = true;
    if (this.session === session) this.session = undefined;
    await session.consumeChannel.close().catch(() => undefined);
    await session.publishChannel.close().catch(() => undefined);
    await session.connection.close().catch(() => undefined);
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
    this.lifetime.abort();
    this.logger.info({ reason, inFlight: this.inFlight.size }, 'runner stopping');
    const session = this.session;
    if (session?.consumerTag && !session.ended) {
      await session.consumeChannel.cancel(session.consumerTag).catch(() => undefined);
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
      for (const f of this.inFlight.values()) f.abort.abort();
      await Promise.allSettled([...this.inFlight.keys()]);
    }

    if (this.reconnecting) {
      await Promise.race([this.reconnecting, new Promise((resolve) => setTimeout(resolve, RECONNECT_STOP_WAIT_MS).unref())]);
    }
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.store?.runners.remove(this.options.runnerId).catch(() => undefined);
    if (this.session) await this.closeSession(this.session);
    this.store?.redis.disconnect();
    this.logger.info({ reason, syncsDone: this.syncsDone, aborted }, 'runner stopped');
    return reason === 'broker-lost' ? 1 : 0;
  }
}
