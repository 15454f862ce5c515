// Cancel markers: an operator's "do not run this" for one sync, or for every sync of a
// connection requested up to a moment. A marker is written where every runner looks, not sent
// to one: the sync may still wait in the queue or a delay queue (the runner that gets it acks it
// without running it), or be running (the runner holding it polls for it, runner/sync/
// cancel-watch.ts). A connection marker covers syncs whose ids nobody can list: messages still
// in the queue are not readable without consuming them, but each carries when it was requested.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { Keys } from './redis.js';

/** Who asked for the cancel, and when (ISO time). */
export interface CancelMarker {
  by: string;
  at: string;
}

/**
 * How long a sync's marker is kept: past the longest a sync waits in the queues (delay queues
 * wait retryMaxDelay at most, 10 minutes by default; a backlog, hours), so the marker still
 * stands when the sync is delivered, and does not pile up after. A connection's marker is one
 * key per connection, overwritten by the next cancel: it is kept as long as the connection.
 */
export const SYNC_CANCEL_TTL_MS = 7 * 24 * 3600_000;

const storedMarker = z.object({ by: z.string(), at: z.string() });

function decode(json: string | null): CancelMarker | undefined {
  if (json === null) return undefined;
  try {
    const parsed = storedMarker.safeParse(JSON.parse(json));
    // A marker that does not parse is no cancel: a stray write must not stop syncs.
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** What a delivered or running sync is checked against. */
export interface CancelSubject {
  syncId: string;
  connectionId: string;
  /** When the sync was requested (its message's requestedAt). */
  requestedAt: string;
  /** When an operator replayed it from the dead-letter queue, epoch ms: a replay after a cancel is a new request. */
  replayedAt?: number | undefined;
}

export class CancelStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Marks one sync cancelled. A second cancel keeps the first marker (who asked first, and when). */
  async cancelSync(syncId: string, marker: CancelMarker): Promise<CancelMarker> {
    const key = this.keys.syncCancel(syncId);
    const [[, set], [, stored]] = (await this.redis.multi().set(key, JSON.stringify(marker), 'PX', SYNC_CANCEL_TTL_MS, 'NX').get(key).exec()) as [[unknown, unknown], [unknown, string | null]];
    return set === 'OK' ? marker : (decode(stored) ?? marker);
  }

  /** Marks every sync of the connection requested up to marker.at cancelled. */
  async cancelConnection(connectionId: string, marker: CancelMarker): Promise<void> {
    await this.redis.set(this.keys.connectionCancel(connectionId), JSON.stringify(marker));
  }

  /** The marker that cancels this sync, if any: its own, else its connection's if it was requested before that. */
  async cancelOf(subject: CancelSubject): Promise<CancelMarker | undefined> {
    const [own, connection] = (await this.redis.mget(this.keys.syncCancel(subject.syncId), this.keys.connectionCancel(subject.connectionId))).map(decode);
    return [own, connection && Date.parse(subject.requestedAt) <= Date.parse(connection.at) ? connection : undefined].find(
      (m): m is CancelMarker => m !== undefined && !(subject.replayedAt !== undefined && subject.replayedAt >= Date.parse(m.at)),
    );
  }
}
