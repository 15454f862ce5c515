// Connecting to RabbitMQ with jittered exponential backoff, so a fleet of runners started at
// once — or all cut off by one broker restart — does not hammer a broker that is still starting.
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Logger } from '../logger.js';
import { maskUrlCredentials } from '../redact.js';
import { backoffDelay, sleep, type BackoffOptions } from '../backoff.js';
import { tlsVerificationFailure, type TlsFiles } from '../tls.js';
import { declareTopology, type Topology } from './topology.js';
import { moveLegacyDeadLetters } from './dead-queue-migration.js';

/**
 * Connecting at start: 200 ms doubling to 5 s, each wait 50–100 % of its ceiling
 * (shared/backoff.ts): 0.1–0.2, 0.2–0.4, 0.4–0.8, 0.8–1.6, 1.6–3.2, then 2.5–5 s.
 */
export const CONNECT_BACKOFF: BackoffOptions = { baseMs: 200, factor: 2, capMs: 5_000 };

/**
 * Reconnecting after a connection was lost (runners, the scaler, the publisher): the first try
 * 250–500 ms after the loss — not at once, so the processes a broker restart cut off together
 * do not come back together — then 0.5–1, 1–2, 2–4, 4–8, then 5–10 s between tries. A
 * RabbitMQ node takes ~15 s to restart: a runner is back within 10 s of it, and a hundred
 * runners waiting for it make ~10–20 connection attempts a second between them.
 */
export const RECONNECT_BACKOFF: BackoffOptions = { baseMs: 500, factor: 2, capMs: 10_000 };

export interface ConnectOptions {
  url: string;
  logger: Logger;
  /** Give up after this long (0: one try); default: keep trying. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Shown in the RabbitMQ management UI. */
  connectionName?: string;
  /** Waits between tries; default CONNECT_BACKOFF. */
  backoff?: BackoffOptions;
  /** CA, client certificate and key for an amqps:// URL (shared/tls.ts); none: the system's CAs. */
  tls?: TlsFiles | undefined;
}

export async function connectBroker(options: ConnectOptions): Promise<ChannelModel> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      const connection = await amqp.connect(withHeartbeat(options.url), {
        ...options.tls,
        clientProperties: { connection_name: options.connectionName ?? 'tidepool' },
        // A connect that hangs (a host that drops packets) counts as a failed try.
        timeout: CONNECT_TIMEOUT_MS,
      });
      // An 'error' without a listener would crash the process; closing is handled by the owner.
      connection.on('error', (err: Error) => options.logger.warn({ err: err.message }, 'broker connection error'));
      return connection;
    } catch (caught) {
      const err = tlsVerificationFailure(caught, 'amqp') ?? caught;
      const elapsed = Date.now() - started;
      if (options.signal?.aborted || isPermanentBrokerError(err) || (options.timeoutMs !== undefined && elapsed >= options.timeoutMs)) {
        throw new BrokerUnavailableError(`cannot connect to RabbitMQ at ${maskUrlCredentials(options.url)}: ${(err as Error).message}`, { cause: err });
      }
      let delay = backoffDelay(attempt, options.backoff ?? CONNECT_BACKOFF);
      if (options.timeoutMs !== undefined) delay = Math.min(delay, Math.max(0, options.timeoutMs - elapsed));
      options.logger.warn({ err: (err as Error).message, retryInMs: delay }, 'broker not reachable yet');
      await sleep(delay, options.signal);
    }
  }
}

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * AMQP heartbeat, unless the URL sets one (`?heartbeat=`): a broker that vanishes without
 * closing the socket (a partition, a host gone) is noticed after two missed heartbeats, 40 s,
 * instead of the 2 × 60 s of RabbitMQ's default. A broker that shuts down closes its
 * connections, which clients notice at once either way.
 */
export const HEARTBEAT_SECONDS = 20;

function withHeartbeat(url: string): string {
  if (/[?&]heartbeat=/.test(url)) return url;
  return `${url}${url.includes('?') ? '&' : '?'}heartbeat=${HEARTBEAT_SECONDS}`;
}

/** The broker could not be reached (or refused us) within the time allowed. */
export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
}

/**
 * Errors that another try cannot fix: wrong credentials (ACCESS_REFUSED 403), a declaration
 * that contradicts an existing queue (PRECONDITION_FAILED 406, e.g. another deliveryLimit), a
 * missing exchange (NOT_FOUND 404), a malformed URL, a TLS certificate that fails verification
 * (either side's: shared/tls.ts). Anything else may pass: refused or reset
 * connections, a broker shutting down (CONNECTION_FORCED 320), a vhost still starting after a
 * restart (NOT_ALLOWED 530), a channel closed under a publish, a nack.
 */
export function isPermanentBrokerError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (tlsVerificationFailure(err, 'amqp')) return true;
  const code = (err as { code?: unknown }).code;
  if (code === 403 || code === 406 || code === 404 || code === 'ERR_INVALID_URL') return true;
  return /ACCESS[-_]REFUSED|PRECONDITION[-_]FAILED|NOT[-_]FOUND|Expected amqps?: /i.test(err.message);
}

/** A confirm channel with topology declared: every publish waits for the broker's ack. */
export async function openConfirmChannel(connection: ChannelModel, topology: Topology, logger: Logger): Promise<ConfirmChannel> {
  const channel = await connection.createConfirmChannel();
  channel.on('error', (err: Error) => logger.warn({ err: err.message }, 'broker channel error'));
  await declareTopology(channel, topology);
  await moveLegacyDeadLetters(connection, topology, logger);
  return channel;
}

/** Ready messages and consumers of a queue, read on a throw-away channel (a missing queue closes it). */
export async function queueDepth(connection: ChannelModel, queue: string): Promise<{ ready: number; consumers: number }> {
  const channel = await connection.createChannel();
  channel.on('error', () => undefined);
  try {
    const ok = await channel.checkQueue(queue);
    return { ready: ok.messageCount, consumers: ok.consumerCount };
  } finally {
    await channel.close().catch(() => undefined);
  }
}
