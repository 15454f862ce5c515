// Connecting to RabbitMQ with jittered exponential backoff, so a fleet of runners started at
// once does not hammer a broker that is still starting.
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Logger } from '../logger.js';
import { maskUrlCredentials } from '../redact.js';
import { backoffDelay, sleep } from '../backoff.js';
import { declareTopology, type Topology } from './topology.js';

export interface ConnectOptions {
  url: string;
  logger: Logger;
  /** Give up after this long; default: keep trying. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Shown in the RabbitMQ management UI. */
  connectionName?: string;
}

export async function connectBroker(options: ConnectOptions): Promise<ChannelModel> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      const connection = await amqp.connect(options.url, {
        clientProperties: { connection_name: options.connectionName ?? 'tidepool' },
      });
      // An 'error' without a listener would crash the process; closing is handled by the owner.
      connection.on('error', (err: Error) => options.logger.warn({ err: err.message }, 'broker connection error'));
      return connection;
    } catch (err) {
      const elapsed = Date.now() - started;
      if (options.signal?.aborted || (options.timeoutMs !== undefined && elapsed >= options.timeoutMs)) {
        throw new Error(`cannot connect to RabbitMQ at ${maskUrlCredentials(options.url)}: ${(err as Error).message}`, { cause: err });
      }
      const delay = backoffDelay(attempt, { baseMs: 200, factor: 2, capMs: 5000 });
      options.logger.warn({ err: (err as Error).message, retryInMs: delay }, 'broker not reachable yet');
      await sleep(delay, options.signal);
    }
  }
}

/** A confirm channel with topology declared: every publish waits for the broker's ack. */
export async function openConfirmChannel(connection: ChannelModel, topology: Topology, logger: Logger): Promise<ConfirmChannel> {
  const channel = await connection.createConfirmChannel();
  channel.on('error', (err: Error) => logger.warn({ err: err.message }, 'broker channel error'));
  await declareTopology(channel, topology);
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
