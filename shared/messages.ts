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
  attempt: 'x-tidepool-attempt',
  firstFailureAt: 'x-tidepool-first-failure-at',
  reason: 'x-tidepool-reason',
  origin: 'x-tidepool-failure-origin',
  type: 'x-tidepool-failure-type',
  runner: 'x-tidepool-runner',
  lastFailureAt: 'x-tidepool-last-failure-at',
  stderrSource: 'x-tidepool-stderr-source',
  stderrDestination: 'x-tidepool-stderr-destination',
  replayed: 'x-tidepool-replayed',
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
