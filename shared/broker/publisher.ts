// Publishing sync requests: persistent, messageId = syncId, and confirmed by the broker before
// the call returns, so a publish that "succeeded" cannot be lost. A publish the broker did not
// confirm is an error, never a success.
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import type { Logger } from '../logger.js';
import type { SyncRequest } from '../messages.js';
import { backoffDelay, sleep } from '../backoff.js';
import { connectBroker, isPermanentBrokerError, openConfirmChannel, RECONNECT_BACKOFF } from './connection.js';
import { firstAttemptHeaders } from './envelope.js';
import type { TlsFiles } from '../tls.js';
import type { Topology } from './topology.js';

/** The broker did not confirm a publish. */
export class PublishError extends Error {
  override readonly name = 'PublishError';
  constructor(
    message: string,
    /** True when a publish reached the channel but its confirm never came: the broker may hold it. */
    readonly maybeQueued: boolean,
    /** False when trying again cannot help (credentials, a conflicting declaration). */
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function confirmPublish(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  body: Buffer,
  options: { messageId?: string; headers?: Record<string, unknown>; expiration?: string },
): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.publish(
      exchange,
      routingKey,
      body,
      {
        persistent: true,
        contentType: 'application/json',
        timestamp: Math.floor(Date.now() / 1000),
        ...(options.messageId ? { messageId: options.messageId } : {}),
        ...(options.expiration ? { expiration: options.expiration } : {}),
        headers: options.headers ?? {},
      },
      (err: unknown) => (err ? reject(confirmError(err, options.messageId)) : resolve()),
    );
  });
}

/** amqplib reports a nack as "message nacked" and a channel gone before the confirm as "channel closed". */
function confirmError(err: unknown, messageId: string | undefined): Error {
  const what = messageId ? `message ${messageId}` : 'the message';
  const text = err instanceof Error ? err.message : String(err);
  if (/nack/i.test(text)) return new Error(`the broker refused ${what} (nack)`, { cause: err });
  if (/closed/i.test(text)) return new UnconfirmedError(`the broker connection closed before ${what} was confirmed: ${text}`, { cause: err });
  return err instanceof Error ? err : new Error(`${what} was not confirmed: ${text}`);
}

/** A publish whose outcome is unknown: sent, but the channel closed before its confirm. */
class UnconfirmedError extends Error {
  override readonly name = 'UnconfirmedError';
}

export async function publishSync(
  channel: ConfirmChannel,
  topology: Topology,
  request: SyncRequest,
  headers: Record<string, unknown> = {},
): Promise<void> {
  await confirmPublish(channel, topology.exchange, topology.syncRoutingKey, Buffer.from(JSON.stringify(request)), {
    messageId: request.syncId,
    headers: firstAttemptHeaders(headers),
  });
}

export interface PublishWithRetriesOptions {
  url: string;
  /** For an amqps:// URL: CA, client certificate and key (shared/tls.ts). */
  tls?: TlsFiles | undefined;
  topology: Topology;
  logger: Logger;
  /** Keep trying transient failures (broker down or restarting, connection lost, nack) this long. */
  timeoutMs: number;
  signal?: AbortSignal;
  connectionName?: string;
}

/**
 * Publishes a sync request on a connection of its own (topology declared first) and resolves
 * once the broker confirmed it. Transient failures are tried again with jittered backoff
 * (RECONNECT_BACKOFF) until `timeoutMs`; then, or at once for a permanent one, it throws a
 * PublishError saying why and whether the request may be queued anyway.
 *
 * A try whose confirm was lost may have been queued, so the next try can queue it twice. Both
 * copies carry the same syncId: a runner acks a copy of a sync that is already settled without
 * running it (runner/delivery/redelivery.ts).
 */
export async function publishSyncWithRetries(request: SyncRequest, options: PublishWithRetriesOptions, headers: Record<string, unknown> = {}): Promise<{ tries: number }> {
  const started = Date.now();
  // An object, not a `let`: set in an inner catch that TypeScript's narrowing does not follow.
  const seen = { maybeQueued: false };
  for (let attempt = 0; ; attempt++) {
    let connection: ChannelModel | undefined;
    try {
      connection = await connectBroker({ url: options.url, tls: options.tls, logger: options.logger, timeoutMs: 0, connectionName: options.connectionName ?? 'tidepool-publisher', ...(options.signal ? { signal: options.signal } : {}) });
      const channel = await openConfirmChannel(connection, options.topology, options.logger);
      try {
        await publishSync(channel, options.topology, request, headers);
      } catch (err) {
        if (err instanceof UnconfirmedError) seen.maybeQueued = true;
        throw err;
      }
      await channel.close().catch(() => undefined);
      return { tries: attempt + 1 };
    } catch (err) {
      const reason = (err as Error).message;
      const where = `sync ${request.syncId} (connection "${request.connectionId}") not published`;
      const queued = seen.maybeQueued ? '; a try was sent but never confirmed, so the broker may hold it anyway' : '; nothing was queued';
      if (isPermanentBrokerError(err) || isPermanentBrokerError((err as Error).cause)) {
        throw new PublishError(`${where}: ${reason}${queued}`, seen.maybeQueued, false, { cause: err });
      }
      // Tried for the whole timeout before giving up: the last wait is cut to the time left.
      const left = options.timeoutMs - (Date.now() - started);
      const delay = Math.min(backoffDelay(attempt, RECONNECT_BACKOFF), Math.max(0, left));
      if (options.signal?.aborted || left <= 0) {
        throw new PublishError(`${where} within ${Math.round(options.timeoutMs / 1000)} s (${attempt + 1} tries): ${reason}${queued}`, seen.maybeQueued, true, { cause: err });
      }
      options.logger.warn({ syncId: request.syncId, err: reason, tries: attempt + 1, retryInMs: delay }, 'publish failed; trying again');
      await sleep(delay, options.signal);
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }
}
