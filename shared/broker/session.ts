// A broker connection kept up for its owner (a runner, the scaler, the dashboard): connect, open
// the channels the owner asks for, declare the topology, notice the loss of any of it once, and
// make it all again with jittered backoff — until a deadline, if the owner has one.
//
// Each connection and its channels are one Session. Deliveries and their tags belong to the
// session they came on: once it is lost (`ended`), nothing received on it can be acked or
// requeued anywhere else, so owners keep the session next to whatever they hold from it.
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import type { Logger } from '../logger.js';
import { backoffDelay, settledWithin, sleep } from '../backoff.js';
import type { TlsFiles } from '../tls.js';
import { connectBroker, RECONNECT_BACKOFF } from './connection.js';
import { declareTopology, type Topology } from './topology.js';
import { moveLegacyDeadLetters } from './dead-queue-migration.js';

/** A channel the owner wants on every session: a confirm channel (publishes wait for the broker's ack), and a prefetch (consumers). */
export interface ChannelSpec {
  confirm?: boolean;
  prefetch?: number;
}

export type ChannelSpecs = Readonly<Record<string, ChannelSpec>>;

/** The channels of a session, by the names the owner gave them. */
export type SessionChannels<S extends ChannelSpecs> = { readonly [N in keyof S]: S[N] extends { confirm: true } ? ConfirmChannel : Channel };

/** One connection and its channels. */
export interface Session<S extends ChannelSpecs> {
  /** Counts from 1 in the life of its BrokerSession (logs say which session a delivery came on). */
  readonly id: number;
  readonly connection: ChannelModel;
  readonly channels: SessionChannels<S>;
  /** Lost or closed: its delivery tags are dead, nothing can be settled on it any more. */
  readonly ended: boolean;
}

interface OpenSession<S extends ChannelSpecs> extends Session<S> {
  ended: boolean;
}

export interface BrokerSessionOptions<S extends ChannelSpecs> {
  url: string;
  /** For an amqps:// URL: CA, client certificate and key (shared/tls.ts). */
  tls?: TlsFiles | undefined;
  logger: Logger;
  /** Shown in the RabbitMQ management UI. */
  connectionName: string;
  /** Channels opened on every session, in this order (closed in the reverse one); losing one loses the session. */
  channels: S;
  /** Declared on every session (at start and after each reconnection, so a broker that lost its definitions gets them back); none: declared by others. */
  topology?: Topology;
  /** Runs on each connection before its channels are opened (listeners of the owner's own). */
  onConnection?: (connection: ChannelModel) => void;
  /** After a loss, give up once this long has passed without a session (the last wait is cut to the time left); none: keep trying. */
  reconnectTimeoutMs?: number;
  /** Whether a lost session is made again now; by default until stop(). Asked as well as stop(). */
  keepConnected?: () => boolean;
  /** A session was lost: once per session, not for sessions closed by their owner nor while not keeping connected. */
  onLost?: (session: Session<S>, what: string) => void;
  /** Awaited once after a loss, before the first reconnection try (the runner lets interrupted syncs wind down). */
  beforeReconnect?: () => Promise<void>;
  /** Runs on a new session made by a reconnection before it counts as restored (the runner consumes on it); throwing fails that try. */
  resume?: (session: Session<S>) => Promise<void>;
  onRestored?: (session: Session<S>, downMs: number, tries: number) => void;
  /** No session could be made within reconnectTimeoutMs. */
  onGiveUp?: () => void;
}

export class BrokerSession<S extends ChannelSpecs> {
  private current: OpenSession<S> | undefined;
  private sessions = 0;
  private stopped = false;
  private reconnecting: Promise<void> | undefined;
  /** Aborted by stop(): ends connection retries and reconnection waits. */
  private readonly lifetime = new AbortController();

  constructor(private readonly options: BrokerSessionOptions<S>) {}

  /** The session in use; undefined while connecting, reconnecting or stopped. */
  get session(): Session<S> | undefined {
    return this.current;
  }

  /**
   * Connects (trying again with CONNECT_BACKOFF for up to `timeoutMs`; 0: a single try), opens
   * the channels and declares the topology. The new session is the one in use.
   */
  async connect(timeoutMs: number): Promise<Session<S>> {
    const { options } = this;
    const connection = await connectBroker({ url: options.url, tls: options.tls, logger: options.logger, timeoutMs, signal: this.lifetime.signal, connectionName: options.connectionName });
    // Listeners go on before anything is awaited, so a loss while opening is not missed.
    let session: OpenSession<S> | undefined;
    let lostWhileOpening: string | undefined;
    const lost = (what: string) => {
      if (session) this.lost(session, what);
      else lostWhileOpening ??= what;
    };
    connection.on('close', () => lost('connection closed'));
    options.onConnection?.(connection);
    try {
      const channels = await this.openChannels(connection, lost);
      if (lostWhileOpening) throw new Error(`broker ${lostWhileOpening} while opening channels`);
      if (this.stopped) throw new Error('broker session stopped while connecting');
      session = { id: ++this.sessions, connection, channels, ended: false };
      this.current = session;
      return session;
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
  }

  private async openChannels(connection: ChannelModel, lost: (what: string) => void): Promise<SessionChannels<S>> {
    const { channels: specs, topology, logger } = this.options;
    const channels: Record<string, Channel> = {};
    for (const [name, spec] of Object.entries(specs)) {
      const channel = spec.confirm ? await connection.createConfirmChannel() : await connection.createChannel();
      channel.on('error', (err: Error) => logger.warn({ err: err.message }, `${name} channel error`));
      channel.on('close', () => lost(`${name} channel closed`));
      if (topology && Object.keys(channels).length === 0) await declareTopology(channel, topology);
      if (spec.prefetch !== undefined) await channel.prefetch(spec.prefetch);
      channels[name] = channel;
    }
    if (topology && Object.keys(channels).length === 0) {
      // No channel of its own to declare on: a throw-away one.
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await declareTopology(channel, topology);
      await channel.close();
    }
    if (topology) await moveLegacyDeadLetters(connection, topology, logger);
    return channels as SessionChannels<S>;
  }

  /**
   * The owner learnt that `session` is gone (a cancelled consumer, say); the connection's and
   * channels' close events call it too. Acts once per session.
   */
  lost(session: Session<S>, what: string): void {
    const open = session as OpenSession<S>;
    if (open.ended) return;
    open.ended = true;
    if (this.current === open) this.current = undefined;
    if (!this.keepsConnected()) return; // our own closing
    this.options.onLost?.(session, what);
    // A channel closed on its own leaves the connection open: end all of it, start afresh.
    void session.connection.close().catch(() => undefined);
    this.reconnecting ??= this.reconnect().finally(() => (this.reconnecting = undefined));
  }

  private keepsConnected(): boolean {
    return !this.stopped && (this.options.keepConnected?.() ?? true);
  }

  private async reconnect(): Promise<void> {
    const { options } = this;
    const lostAt = Date.now();
    const deadline = lostAt + (options.reconnectTimeoutMs ?? Number.POSITIVE_INFINITY);
    await options.beforeReconnect?.();
    for (let attempt = 0; ; attempt++) {
      // Give up only once the whole timeout has passed: the last wait is cut to the time left,
      // so the last try is made at the deadline rather than skipped before it.
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(backoffDelay(attempt, RECONNECT_BACKOFF), left), this.lifetime.signal);
      if (!this.keepsConnected()) return;
      let session: Session<S> | undefined;
      try {
        session = await this.connect(0);
        if (!this.keepsConnected()) {
          await this.close(session);
          return;
        }
        await options.resume?.(session);
        if (session.ended) continue; // lost again at once: next try
        options.onRestored?.(session, Date.now() - lostAt, attempt + 1);
        return;
      } catch (err) {
        if (!this.keepsConnected()) return;
        if (session) await this.close(session);
        options.logger.warn({ err: (err as Error).message, tries: attempt + 1, downMs: Date.now() - lostAt }, 'broker still unreachable; retrying');
      }
    }
    options.onGiveUp?.();
  }

  /** No more reconnections: ends the waits between tries at once; a loss from now on is only noted. */
  stop(): void {
    this.stopped = true;
    this.lifetime.abort();
  }

  /** Waits, at most `maxMs`, for a reconnection under way to end (a try in flight is bounded by the connect timeout). */
  async reconnectionEnded(maxMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.reconnecting) await settledWithin(this.reconnecting, maxMs);
  }

  /** Closes a session of ours: its channels in reverse order of opening, then its connection. */
  async close(session: Session<S> | undefined = this.current): Promise<void> {
    if (!session) return;
    const open = session as OpenSession<S>;
    open.ended = true;
    if (this.current === open) this.current = undefined;
    for (const channel of Object.values<Channel>(session.channels).reverse()) await channel.close().catch(() => undefined);
    await session.connection.close().catch(() => undefined);
  }
}
