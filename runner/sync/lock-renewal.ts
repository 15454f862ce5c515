// The connection's lock, held for the whole sync: no two syncs of one connection at once. It
// is waited for (another sync of the connection may be running), then renewed every third of
// its TTL, so a runner that stalls or dies loses it within lockTtl and another may take over;
// the fence on every state commit keeps the stalled one from writing after that.
import type { Config } from '../../shared/config.js';
import { CancelledError, LockLostError, LockTimeoutError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { LockHandle, LockStore } from '../../shared/store/locks.js';
import { backoffDelay, sleep } from '../../shared/backoff.js';

type Locks = Pick<LockStore, 'tryAcquire' | 'renew'>;

/** Waits for the connection's lock, polling with jittered backoff up to lockWait. */
export async function acquireLock(
  locks: Locks,
  connectionId: string,
  owner: string,
  config: Pick<Config, 'lockTtl' | 'lockWait'>,
  signal: AbortSignal,
  logger: Logger,
): Promise<LockHandle> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    if (signal.aborted) throw new CancelledError(`cancelled while waiting for the lock of connection "${connectionId}"`);
    const lock = await locks.tryAcquire(connectionId, owner, config.lockTtl);
    if (lock) return lock;
    const waited = Date.now() - started;
    if (waited >= config.lockWait) throw new LockTimeoutError(connectionId, waited);
    if (attempt === 0) logger.info('connection busy with another sync; waiting for its lock');
    await sleep(Math.min(backoffDelay(attempt, { baseMs: 100, factor: 2, capMs: 2000 }), config.lockWait - waited), signal);
  }
}

export interface LockKeeper {
  /** Aborted with a LockLostError once another runner holds the lock. */
  readonly lost: AbortSignal;
  stop(): void;
}

/**
 * Renews the lock every third of its TTL. A renewal that fails (the store unreachable for a
 * moment) is retried at the next tick: the TTL leaves two more before the lock runs out.
 */
export function keepLock(locks: Locks, lock: LockHandle, ttlMs: number, logger: Logger): LockKeeper {
  const lost = new AbortController();
  const timer = setInterval(() => {
    locks.renew(lock, ttlMs).then(
      (ok) => {
        if (!ok) lost.abort(new LockLostError(lock.connectionId));
      },
      (err: unknown) => logger.warn({ err: (err as Error).message }, 'lock renewal failed; retrying'),
    );
  }, Math.max(500, Math.floor(ttlMs / 3)));
  return { lost: lost.signal, stop: () => clearInterval(timer) };
}
