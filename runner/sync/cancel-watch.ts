// How a running sync learns that an operator cancelled it: it reads its cancel marker
// (shared/store/cancels.ts) once a second while it runs. Polling rather than a Redis pub/sub
// channel, because a published message reaches only the subscribers connected at that instant:
// a runner whose Redis connection is reconnecting (a Redis restart, a blip) would miss it and
// run the sync to its end. A marker stays until read, so the cancel lands as soon as Redis
// answers again. The cost is one MGET per running sync per second, small beside what a sync
// writes, and the lock renewal (every lockTtl / 3, 10 s by default) would be too slow for
// "stopped within a few seconds".
import { SyncCancelledError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { CancelMarker, CancelStore, CancelSubject } from '../../shared/store/cancels.js';

/** How often a running sync reads its cancel marker. */
export const CANCEL_POLL_MS = 1_000;

export interface CancelWatch {
  /** Aborted with a SyncCancelledError once the sync's marker is found. */
  readonly cancelled: AbortSignal;
  /** The marker that cancelled it, once found. */
  readonly marker: CancelMarker | undefined;
  /** Reads the marker now, not at the next tick (before the sync starts its connectors). */
  check(): Promise<void>;
  stop(): void;
}

/**
 * Reads the marker every intervalMs until stopped or found. A read that fails (the store away)
 * is tried again at the next tick: a sync is not stopped because its cancel could not be read.
 */
export function watchCancel(cancels: Pick<CancelStore, 'cancelOf'>, subject: CancelSubject, logger: Logger, intervalMs = CANCEL_POLL_MS): CancelWatch {
  const controller = new AbortController();
  let marker: CancelMarker | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  /** One read; true once the sync is cancelled (the watch is then done). */
  const read = async (): Promise<boolean> => {
    let found: CancelMarker | undefined;
    try {
      found = await cancels.cancelOf(subject);
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'could not read the cancel marker; trying again');
    }
    // A read (check) and a tick may overlap: the first to find the marker aborts, once.
    if (found && !stopped && marker === undefined) {
      marker = found;
      logger.info({ cancelledBy: found.by, cancelledAt: found.at }, 'sync cancelled by an operator: stopping it');
      controller.abort(new SyncCancelledError(found.by, found.at));
    }
    return marker !== undefined;
  };
  const tick = async () => {
    if ((await read()) || stopped) return;
    timer = setTimeout(() => void tick(), intervalMs);
  };
  timer = setTimeout(() => void tick(), intervalMs);
  return {
    cancelled: controller.signal,
    get marker() {
      return marker;
    },
    check: async () => {
      await read();
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
