// A runner's life: connect, heartbeat, consume with prefetch = concurrency, hand each delivery to
// the consumer (delivery/consumer.ts decides its fate), and leave when idle (exit 0: the Job
// completes, the pool shrinks by itself) or when told to stop.
//
// Stopping is in phases (shutdown.ts): stop intake (cancel the consumer) → let in-flight syncs
// finish within shutdownGrace → abort what is left (their messages go back to the queue
// unacked) and give them SYNC_ABORT_WAIT_MS to wind down → release what start() acquired, in
// reverse order.
//
// Losing the broker is routine (a RabbitMQ restart, a network blip): the delivery tags of the
// syncs in flight died with their channel, so the broker hands those messages out again
// whatever this runner does. The runner interrupts them (recorded as `requeued`; never acked
// on another channel), and its BrokerSession reconnects with jittered backoff, declares the
// topology again, and the runner goes on consuming. Only after brokerReconnectTimeout without
// a broker does it give up (exit 1).
import { hostname } from 'node:os';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { Notifier } from '../shared/notifications/notify.js';
import { BrokerSession, type Session } from '../shared/broker/session.js';
import { topologyFor, type Topology } from '../shared/broker/topology.js';
import { CancelledError } from '../shared/errors.js';
import type { ConnectorLauncher } from '../shared/ports/connector-launcher.js';
import type { SecretSource } from '../shared/ports/secret-source.js';
import { createRedis, firstConnection } from '../shared/store/redis.js';
import { recordScannerInUse } from './records/native-scanner.js';
import { tlsFiles } from '../shared/tls.js';
import { createStore, type Store } from '../shared/store/index.js';
import { handleDelivery, type ConsumerDeps, type Settlement } from './delivery/consumer.js';
import { considerLeaving } from './early-leave.js';
import { IdleTimer } from './idle.js';
import type { RunnerMetrics } from './metrics.js';
import { drainSyncs, Releasers, SYNC_ABORT_WAIT_MS } from './shutdown.js';

export interface RunnerOptions {
  config: Config;
  logger: Logger;
  launcher: ConnectorLauncher;
  /** Where connections' secretRefs are read (runner/secrets/sources.ts); none: a reference fails its sync. */
  secretSource?: SecretSource | undefined;
  runnerId: string;
  /** This runner's metrics (the caller serves their registry). */
  metrics: RunnerMetrics;
  /** Runs once the store is connected, before consuming (e.g. sweeping orphaned connector pods). */
  prepare?: (store: Store) => Promise<void>;
  /** Called each time a lost broker connection is restored (e.g. tidepool_broker_reconnects_total). */
  onBrokerRestored?: (downMs: number) => void;
}

type StopReason = 'idle' | 'signal' | 'broker-lost';

/** The runner's channels on every session: successors of failed syncs are published confirmed; syncs are consumed `concurrency` at a time. */
function runnerChannels(concurrency: number) {
  return { publish: { confirm: true }, consume: { prefetch: concurrency } } as const;
}

type RunnerSession = Session<ReturnType<typeof runnerChannels>>;

interface InFlight {
  abort: AbortController;
  /** Where its delivery came from: the only session it can be settled on. */
  session: RunnerSession;
  messageId: string | undefined;
}

/** How long a stopping runner waits for a reconnection attempt under way (one connect try is bounded by 10 s). */
const RECONNECT_STOP_WAIT_MS = 12_000;

export class Runner {
  private readonly config: Config;
  private readonly logger: Logger;
  private readonly topology: Topology;
  private readonly broker: BrokerSession<ReturnType<typeof runnerChannels>>;
  private readonly releasers: Releasers;
  private store: Store | undefined;
  /** The consumer of the session in use (a new session consumes anew). */
  private consumer: { session: RunnerSession; tag: string } | undefined;
  private readonly inFlight = new Map<Promise<void>, InFlight>();
  private readonly idle: IdleTimer;
  private readonly startedAt = new Date().toISOString();
  private syncsDone = 0;
  private stopping: Promise<number> | undefined;
  private draining = false;
  /** A leave-rule check is under way (one at a time: the store may answer slower than the heartbeat). */
  private checkingLeave = false;
  /** Set once releasing began: a sync still winding down must not write the runner record again. */
  private released = false;
  private resolveDone!: (code: number) => void;
  /** Resolves with the process exit code once the runner has stopped. */
  readonly done = new Promise<number>((resolve) => (this.resolveDone = resolve));
  private forceStop!: () => void;
  /** Resolves on a second stop(): in-flight syncs are aborted without waiting out the grace. */
  private readonly forced = new Promise<void>((resolve) => (this.forceStop = resolve));

  constructor(private readonly options: RunnerOptions) {
    this.config = options.config;
    this.logger = options.logger.child({ component: 'runner', runnerId: options.runnerId });
    this.topology = topologyFor(this.config.prefix, this.config);
    this.releasers = new Releasers(this.logger);
    this.broker = new BrokerSession({
      url: this.config.amqpUrl,
      tls: tlsFiles(this.config, 'amqp'),
      logger: this.logger,
      connectionName: `tidepool-runner-${options.runnerId}`,
      channels: runnerChannels(this.config.concurrency),
      topology: this.topology,
      onConnection: (connection) => this.watchFlowControl(connection),
      reconnectTimeoutMs: this.config.brokerReconnectTimeout,
      onLost: (session, what) => this.interrupt(session, what),
      // The interrupted syncs end first (they kill their connectors, record themselves as
      // requeued): consuming again while they wind down could run more than `concurrency` syncs.
      beforeReconnect: async () => {
        await Promise.allSettled([...this.inFlight.keys()]);
      },
      resume: (session) => this.consume(session),
      onRestored: (session, downMs, tries) => {
        this.logger.info({ downMs, tries, session: session.id }, 'broker connection restored: topology declared, consuming again');
        this.options.onBrokerRestored?.(downMs);
        void this.heartbeat();
      },
      onGiveUp: () => {
        this.logger.error(
          { brokerReconnectTimeoutMs: this.config.brokerReconnectTimeout },
          'broker unreachable for brokerReconnectTimeout: giving up (unacked syncs return to the queue)',
        );
        void this.stop('broker-lost');
      },
    });
    // While the broker is away the idle timer keeps running: a runner with nothing in flight
    // loses nothing by leaving (exit 0), and the scaler launches another once the queue is
    // readable again.
    this.idle = new IdleTimer(this.config.idleTimeout, () => void this.stop('idle'));
  }

  async start(): Promise<void> {
    try {
      await this.acquire();
    } catch (err) {
      await this.releasers.releaseAll();
      throw err;
    }
    this.idle.start();
    // Which record scanner checks the syncs' lines: the native fast path, or the JavaScript one
    // alone (with why) where scripts/build-native could not build it. Both check the same.
    const { scanner: recordScanner, problem: recordScannerProblem } = recordScannerInUse();
    this.logger.info({ concurrency: this.config.concurrency, idleTimeoutMs: this.config.idleTimeout, launcher: this.options.launcher.kind, recordScanner, recordScannerProblem }, 'runner consuming');
  }

  /** Acquires what the runner holds, each with its releaser right after, and starts consuming. */
  private async acquire(): Promise<void> {
    const { config } = this;
    const redis = createRedis(config.redisUrl, this.logger, { tls: tlsFiles(config, 'redis') });
    this.releasers.add('redis', () => redis.disconnect());
    this.options.metrics.reconnects.watchRedis(redis);
    const store = createStore(redis, config);
    this.store = store;
    // A certificate Redis or we refuse stops the runner here (shared/tls.ts); Redis merely down does not.
    await firstConnection(redis);
    const session = await this.broker.connect(60_000);
    this.releasers.add('broker session', () => this.broker.close());

    await this.options.prepare?.(store);

    // First heartbeat before consuming: the scaler stops counting us as "starting" at once.
    await this.heartbeat();
    this.releasers.add('runner record', () => store.runners.remove(this.options.runnerId));
    const heartbeats = setInterval(() => {
      void this.heartbeat();
      void this.leaveIfSurplus();
    }, config.heartbeatInterval);
    this.releasers.add('heartbeat timer', () => clearInterval(heartbeats));

    try {
      await this.consume(session);
    } catch (err) {
      // Lost between connecting and consuming: reconnecting has already begun.
      if (!session.ended) throw err;
    }
  }

  private watchFlowControl(connection: ChannelModel): void {
    connection.on('blocked', (reason: unknown) => this.logger.warn({ reason }, 'broker blocked this connection (resource alarm): publishes wait'));
    connection.on('unblocked', () => this.logger.info('broker unblocked this connection'));
  }

  private async consume(session: RunnerSession): Promise<void> {
    if (!this.store) throw new Error('runner not started');
    const deps: ConsumerDeps = {
      store: this.store,
      launcher: this.options.launcher,
      secretSource: this.options.secretSource,
      config: this.config,
      logger: this.logger,
      runnerId: this.options.runnerId,
      publishChannel: session.channels.publish,
      topology: this.topology,
      metrics: this.options.metrics,
      notifier: new Notifier(this.store.outbox, this.logger),
    };
    const { consumerTag } = await session.channels.consume.consume(this.topology.syncsQueue, (message) => {
      // null: the broker cancelled the consumer (the queue was deleted, or its leader moved away
      // for good). A new session declares the queue again and consumes anew.
      if (message) this.onDelivery(message, session, deps);
      else this.broker.lost(session, 'consumer cancelled by the broker');
    });
    this.consumer = { session, tag: consumerTag };
  }

  private onDelivery(message: ConsumeMessage, session: RunnerSession, deps: ConsumerDeps): void {
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
    const messageId = typeof message.properties.messageId === 'string' ? message.properties.messageId : undefined;
    this.inFlight.set(work, { abort, session, messageId });
    void work.finally(() => {
      this.inFlight.delete(work);
      this.idle.syncFinished();
      void this.heartbeat();
    });
  }

  /** Acks or requeues on the delivery's own channel; never on another (its tag means nothing there). */
  private settle(session: RunnerSession, message: ConsumeMessage, settlement: Settlement): void {
    if (session.ended) {
      this.logger.info({ messageId: message.properties.messageId as unknown, settlement }, 'not settled: its broker connection is gone, so the broker redelivers it');
      return;
    }
    try {
      if (settlement === 'ack') session.channels.consume.ack(message);
      else session.channels.consume.nack(message, false, true);
    } catch (err) {
      // Channel gone: the broker redelivers the message to another runner.
      this.logger.warn({ err: (err as Error).message }, 'could not settle message; it will be redelivered');
    }
  }

  /** A session was lost: its syncs cannot be settled any more, so they stop (the broker redelivers their messages). */
  private interrupt(session: RunnerSession, what: string): void {
    const interrupted = [...this.inFlight.values()].filter((f) => f.session === session);
    this.logger.warn(
      { reason: what, interrupted: interrupted.length },
      'broker connection lost: interrupting in-flight syncs (the broker redelivers them) and reconnecting',
    );
    for (const f of interrupted) f.abort.abort(new CancelledError('sync interrupted: the runner lost its broker connection; the broker redelivers the message'));
  }

  private async heartbeat(): Promise<void> {
    if (!this.store || this.released) return;
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

  /**
   * The adaptive leave rule (idleMinimum > 0): an idle runner the pool does not need leaves
   * before idleTimeout, as it would at idleTimeout (exit 0). What it cannot read keeps it.
   */
  private async leaveIfSurplus(): Promise<void> {
    if (!this.store || this.draining || this.checkingLeave) return;
    this.checkingLeave = true;
    try {
      const context = { runnerId: this.options.runnerId, store: this.store, connection: this.broker.session?.connection, syncsQueue: this.topology.syncsQueue, idleForMs: this.idle.idleFor() };
      const decision = await considerLeaving(context, this.config);
      // Still idle: a sync delivered while the pool was being read keeps the runner.
      if (decision?.leave && this.idle.idleFor() !== undefined && this.stopping === undefined) {
        this.logger.info({ why: decision.reason }, 'idle and not needed by the pool: leaving before idleTimeout');
        void this.stop('idle');
      }
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, 'could not read the pool for the leave rule; staying');
    } finally {
      this.checkingLeave = false;
    }
  }

  /** Graceful stop; a second call (second signal) forces the abort of in-flight syncs. */
  stop(reason: StopReason): Promise<number> {
    if (this.stopping) {
      this.forceStop();
      return this.stopping;
    }
    this.stopping = this.shutdown(reason);
    void this.stopping.then((code) => this.resolveDone(code));
    return this.stopping;
  }

  private async shutdown(reason: StopReason): Promise<number> {
    this.draining = true;
    this.idle.stop();
    // Before anything is awaited: a loss from now on is our own closing, not one to reconnect after.
    this.broker.stop();
    this.logger.info({ reason, inFlight: this.inFlight.size }, 'runner stopping');
    const consumer = this.consumer;
    if (consumer && consumer.session === this.broker.session && !consumer.session.ended) {
      await consumer.session.channels.consume.cancel(consumer.tag).catch(() => undefined);
    }
    void this.heartbeat();

    const syncs = [...this.inFlight].map(([done, f]) => ({ done, abort: () => f.abort.abort(), label: f.messageId ?? '(no message id)' }));
    const { aborted, left } = await drainSyncs(syncs, { graceMs: reason === 'broker-lost' ? 0 : this.config.shutdownGrace, force: this.forced, abortWaitMs: SYNC_ABORT_WAIT_MS });
    if (left.length > 0) {
      this.logger.warn({ left, waitedMs: SYNC_ABORT_WAIT_MS }, 'aborted syncs still winding down: closing without them (their messages return to the queue unacked)');
    }

    await this.broker.reconnectionEnded(RECONNECT_STOP_WAIT_MS);
    this.released = true;
    await this.releasers.releaseAll();
    this.logger.info({ reason, syncsDone: this.syncsDone, aborted }, 'runner stopped');
    return reason === 'broker-lost' ? 1 : 0;
  }
}
