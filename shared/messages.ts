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
/**
 * Largest message body that is parsed (bytes). A sync request is a few hundred bytes; a bigger
 * body is none, and parsing a hostile one costs memory (a 50 MB body took a runner from 118 to
 * 305 MB). Runners dead-letter it unread; dead-letter listings show it without parsing it.
 */
export const MAX_BODY_BYTES = 64 * 1024;

/** Why a body is not parsed at all, or undefined when it is small enough to be. */
export function oversizedBody(body: Buffer): string | undefined {
  return body.length > MAX_BODY_BYTES ? `message body is ${body.length} bytes, over the limit of ${MAX_BODY_BYTES}: not parsed` : undefined;
}

export function parseSyncRequest(body: Buffer): SyncRequest {
  const tooBig = oversizedBody(body);
  if (tooBig !== undefined) throw new InvalidMessageError(tooBig);
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
  if (oversizedBody(body) !== undefined) return {};
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
