// The sync request: the body of every message on the syncs queue. (Its headers: broker/envelope.ts.)
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { InvalidMessageError } from './errors.js';
import { idSchema, isValidId } from './ids.js';

export const syncRequestSchema = z
  .object({
    /** Both ids follow the id rule (ids.ts): a sync id names a directory, a run record and a dead letter, a connection id a Redis key. */
    syncId: idSchema('syncId'),
    connectionId: idSchema('connectionId'),
    /** Ignore committed state, re-read everything, overwrite the destination. */
    fullRefresh: z.boolean().default(false),
    requestedAt: z.iso.datetime(),
    requestedBy: z.string().max(200).optional(),
  })
  .strict();

export type SyncRequest = z.output<typeof syncRequestSchema>;

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

/**
 * syncId and connectionId from a body that is JSON but perhaps not a valid sync request: a
 * message that cannot be run is still dead-lettered under the ids it names, if they are valid
 * ids (a hostile one stays in the body and the reason, escaped, never in a header or a key).
 */
export function idsFromBody(body: Buffer): { syncId?: string; connectionId?: string } {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return {};
  }
  if (!json || typeof json !== 'object') return {};
  const { syncId, connectionId } = json as Record<string, unknown>;
  return { ...(isValidId(syncId) ? { syncId } : {}), ...(isValidId(connectionId) ? { connectionId } : {}) };
}
