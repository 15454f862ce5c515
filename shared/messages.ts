// The sync request: the body of every message on the syncs queue.
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { InvalidMessageError } from './errors.js';

export const syncRequestSchema = z
  .object({
    syncId: z.string().min(1).max(200),
    connectionId: z.string().min(1).max(128),
    /** Ignore committed state, re-read everything, overwrite the destination. */
    fullRefresh: z.boolean().default(false),
    requestedAt: z.iso.datetime(),
    requestedBy: z.string().max(200).optional(),
  })
  .strict();

export type SyncRequest = z.output<typeof syncRequestSchema>;

/** AMQP headers tidepool sets on sync messages. */
export const HEADERS = {
  /** The attempt this delivery is (1 = the first); on a dead letter, the attempts made. */
  attempt: 'x-tidepool-attempt',
  firstFailureAt: 'x-tidepool-first-failure-at',
  reason: 'x-tidepool-reason',
  origin: 'x-tidepool-failure-origin',
  type: 'x-tidepool-failure-type',
  /** A boolean: was the last failure retryable (a retryable dead letter ran out of attempts). */
  retryable: 'x-tidepool-failure-retryable',
  runner: 'x-tidepool-runner',
  lastFailureAt: 'x-tidepool-last-failure-at',
  stderrSource: 'x-tidepool-stderr-source',
  stderrDestination: 'x-tidepool-stderr-destination',
  /** The body's syncId and connectionId, on dead letters (absent when the body is no sync request): listable without parsing bodies. */
  syncId: 'x-tidepool-sync-id',
  connectionId: 'x-tidepool-connection-id',
  /** How many times the sync was put back because its connection stayed busy with another sync (a number). */
  deferrals: 'x-tidepool-deferrals',
  /** How many times an operator replayed this sync from the dead-letter queue (a number, 1 after the first replay). */
  replayed: 'x-tidepool-replayed',
  /** When it was last replayed (ISO 8601). */
  replayedAt: 'x-tidepool-replayed-at',
  /** A unique id of that replay (a UUID): ties the republished message to its confirm or return. */
  replayId: 'x-tidepool-replay-id',
} as const;

export function newSyncRequest(connectionId: string, options: { fullRefresh?: boolean; requestedBy?: string } = {}): SyncRequest {
  return {
    syncId: randomUUID(),
    connectionId,
    fullRefresh: options.fullRefresh ?? false,
    requestedAt: new Date().toISOString(),
    ...(options.requestedBy ? { requestedBy: options.requestedBy } : {}),
  };
}

/** Parses a message body; a malformed one raises InvalidMessageError with the reason. */
export function parseSyncRequest(body: Buffer): SyncRequest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new InvalidMessageError(`message body is not JSON: ${(err as Error).message}`);
  }
  const parsed = syncRequestSchema.safeParse(json);
  if (!parsed.success) {
    throw new InvalidMessageError(`message is not a sync request: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
  }
  return parsed.data;
}
