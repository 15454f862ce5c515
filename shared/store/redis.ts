// The Redis client every tidepool process uses, and the key layout under the prefix.
import { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { backoffDelay } from '../backoff.js';
import { tlsVerificationFailure, type TlsFiles, type TlsVerificationError } from '../tls.js';

/**
 * Reconnection waits: 200 ms doubling to 5 s, each 50–100 % of its ceiling (shared/backoff.ts),
 * for ever — a store outage is waited out, not turned into a crash.
 */
export const REDIS_RECONNECT_BACKOFF = { baseMs: 200, factor: 2, capMs: 5_000 };

/**
 * Commands issued while Redis is away wait in ioredis' offline queue through this many
 * reconnection tries, then fail to their caller with MaxRetriesPerRequestError. With
 * REDIS_RECONNECT_BACKOFF that is about a minute (20 tries: ~4 s for the first five, then
 * 2.5–5 s each): a restart (seconds) is ridden out — a sync just pauses — while a longer outage
 * fails the sync's store call, and the sync is retried later through the delay queues.
 */
export const REDIS_MAX_RETRIES_PER_REQUEST = 20;

/**
 * A command sent and nothing heard back for this long: the connection is taken for dead,
 * destroyed and made again (its unanswered commands are sent again on the new one, as on any
 * reconnect). Without it a Redis cut off by a partition rather than closing its sockets holds
 * every command for the kernel's TCP retransmission timeout, about 15 minutes, with the runner
 * stuck and nothing in its log. tidepool sends no blocking commands, and its scripts are short,
 * so a healthy Redis answers well within this.
 */
export const REDIS_SOCKET_TIMEOUT_MS = 15_000;

/** Each client's first connection: see firstConnection. */
const firstConnections = new WeakMap<Redis, Promise<void>>();

/**
 * Tries that connected and were then dropped before Redis answered, which the first connection
 * waits through before the process goes on. Redis refusing a client's certificate under TLS 1.3
 * sends its alert after our side of the handshake is done and closes at once; when that close
 * races the ready check we have just written, the kernel answers our write with a reset and the
 * reset discards the alert still unread (about 1 try in 12 on loopback here). The next try
 * reads the alert; four in a row lost is a chance of about 1 in 20,000, and they take under 2 s.
 */
const DROPPED_FIRST_TRIES = 4;

export function createRedis(url: string, logger: Logger, options: { lazyConnect?: boolean; socketTimeoutMs?: number; tls?: TlsFiles | undefined } = {}): Redis {
  /**
   * Redis refused our certificates before this client ever got in: it stops trying. Waiting
   * changes neither our files nor Redis's certificate.
   */
  let refusal: TlsVerificationError | undefined;
  const redis: Redis = new Redis(url, {
    // For a rediss:// URL: CA, client certificate and key (shared/tls.ts); none: the system's CAs.
    ...(options.tls ? { tls: options.tls } : {}),
    lazyConnect: options.lazyConnect ?? false,
    socketTimeout: options.socketTimeoutMs ?? REDIS_SOCKET_TIMEOUT_MS,
    // An idle connection to a vanished host is found by TCP keepalive probes after 30 s idle.
    keepAlive: 30_000,
    // Reconnect for ever with jittered backoff: many runners cut off by one Redis restart come
    // back spread out instead of all at once. `times` counts from 1. No more tries once refused
    // on a certificate before ever getting in.
    retryStrategy: (times): number | null => (refusal ? null : backoffDelay(times - 1, REDIS_RECONNECT_BACKOFF)),
    maxRetriesPerRequest: REDIS_MAX_RETRIES_PER_REQUEST,
    // Commands wait for the connection instead of failing at once: a sync outlives a restart.
    enableOfflineQueue: true,
    // Commands sent but unanswered when the connection dropped are sent again on reconnect
    // (the default, and deliberate: turning it off leaves their promises pending for ever in
    // ioredis 5). A command may thus run twice, so every write is safe to repeat: SET / HSET /
    // ZADD / PEXPIRE overwrite; lock acquisition and release compare the lock's value; a state
    // commit carries an id and a repeated one is a no-op (state.ts), so a commit whose reply was
    // lost is never counted twice.
    autoResendUnfulfilledCommands: true,
    // Wait for Redis to finish loading its AOF after a restart before sending (LOADING errors).
    enableReadyCheck: true,
    // No commandTimeout: a command that timed out may still run, and callers could not tell;
    // socketTimeout (above) ends a dead connection instead, and the command is sent again.
  });
  let settleFirst!: (refused?: TlsVerificationError) => void;
  const first = new Promise<void>((resolve, reject) => (settleFirst = (refused) => (refused ? reject(refused) : resolve())));
  first.catch(() => undefined); // a client nobody awaits must not raise an unhandled rejection
  firstConnections.set(redis, first);

  let lost = false;
  let everReady = false;
  /** This try's socket (and TLS handshake) is up: a close now came from Redis's side. */
  let connected = false;
  let droppedTries = 0;
  redis.on('error', (err: Error) => {
    const refused = tlsVerificationFailure(err, 'redis');
    // Once in, a certificate error is a change on Redis's side (a certificate being rotated),
    // which may be put right: tried again like any other loss.
    if (refused && !everReady) {
      refusal = refused;
      logger.error({ code: refused.code }, refused.message);
      settleFirst(refused);
    } else logger.warn({ err: (refused ?? err).message }, 'redis error');
  });
  redis.on('connect', () => (connected = true));
  redis.on('close', () => {
    // A try that never connected (Redis down, restarting, unreachable) ends the first connection:
    // commands wait for a later try while the process goes on. One dropped after connecting
    // may be a refusal whose alert was lost (DROPPED_FIRST_TRIES): the next tries tell.
    if (!everReady && (!connected || ++droppedTries >= DROPPED_FIRST_TRIES)) settleFirst();
    connected = false;
  });
  redis.on('reconnecting', (delayMs: number) => {
    if (!lost) logger.warn({ retryInMs: delayMs }, 'redis connection lost; reconnecting (commands wait)');
    lost = true;
  });
  redis.on('ready', () => {
    if (lost) logger.info('redis connection restored');
    lost = false;
    everReady = true;
    settleFirst();
  });
  return redis;
}

/**
 * Waits for the first connection of a client from createRedis. Resolves once it is ready, or
 * once a try failed in a way a later one may fix (Redis down or restarting: commands wait for
 * the reconnection, as ever), or at once for a client not connecting (lazyConnect). Rejects
 * with the TlsVerificationError if Redis refused the certificates: a runner or scaler stops at
 * start, saying what to check, rather than running without its store.
 */
export function firstConnection(redis: Redis): Promise<void> {
  if (redis.status === 'wait') return Promise.resolve();
  return firstConnections.get(redis) ?? Promise.resolve();
}

/** Key names, all under `<prefix>:`. One place, so the layout is readable at a glance. */
export class Keys {
  constructor(readonly prefix: string) {}
  connection(id: string) { return `${this.prefix}:connection:${id}`; }
  connections() { return `${this.prefix}:connections`; }
  /** List, newest first: every version of the connection as applied (connections history). */
  connectionHistory(id: string) { return `${this.prefix}:connection-history:${id}`; }
  /** Counter: the connection's current version number. */
  connectionVersion(id: string) { return `${this.prefix}:connection-version:${id}`; }
  catalog(id: string) { return `${this.prefix}:catalog:${id}`; }
  /** Hash: role → hash of the connector definition whose `check` succeeded. */
  checked(id: string) { return `${this.prefix}:checked:${id}`; }
  /** A connector program's SPEC, by its fingerprint (runner/sync/spec.ts): shared by every connection. */
  spec(fingerprint: string) { return `${this.prefix}:spec:${fingerprint}`; }
  state(id: string) { return `${this.prefix}:state:${id}`; }
  run(syncId: string) { return `${this.prefix}:run:${syncId}`; }
  runs() { return `${this.prefix}:runs`; }
  connectionRuns(id: string) { return `${this.prefix}:runs:connection:${id}`; }
  lock(connectionId: string) { return `${this.prefix}:lock:connection:${connectionId}`; }
  fence(connectionId: string) { return `${this.prefix}:fence:connection:${connectionId}`; }
  /** A cancel marker of one sync (cancels.ts). */
  syncCancel(syncId: string) { return `${this.prefix}:cancel:sync:${syncId}`; }
  /** A cancel marker of every sync of a connection requested up to its time (cancels.ts). */
  connectionCancel(connectionId: string) { return `${this.prefix}:cancel:connection:${connectionId}`; }
  runner(id: string) { return `${this.prefix}:runner:${id}`; }
  runners() { return `${this.prefix}:runners`; }
  leader(role: string) { return `${this.prefix}:leader:${role}`; }
  series() { return `${this.prefix}:series`; }
  /** The notifications outbox (outbox.ts): items by id, when each is due, and those given up. */
  outboxItems() { return `${this.prefix}:outbox:items`; }
  outboxDue() { return `${this.prefix}:outbox:due`; }
  outboxGivenUp() { return `${this.prefix}:outbox:given-up`; }
  /** Hash: a connection's schedule: cursor (slots decided up to), spec, paused, last decided slot. */
  schedule(id: string) { return `${this.prefix}:schedule:${id}`; }
  /** Hash: slot (epoch ms) → what became of it (claimed, published, skipped, missed). */
  scheduleSlots(id: string) { return `${this.prefix}:schedule-slots:${id}`; }
  /** Sorted set: scheduled syncs published and not yet over (score: slot), for the overlap rule. */
  scheduleOpen(id: string) { return `${this.prefix}:schedule-open:${id}`; }
}
