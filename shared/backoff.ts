// Jittered exponential backoff ("full jitter"): spreads reconnects of many processes over time
// instead of synchronising them into a restart storm.

export interface BackoffOptions {
  baseMs: number;
  factor: number;
  capMs: number;
}

export function backoffDelay(attempt: number, o: BackoffOptions, random: () => number = Math.random): number {
  const ceiling = Math.min(o.capMs, o.baseMs * o.factor ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The longest delay setTimeout takes (a signed 32-bit count of ms, ~24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Waits for `work` to settle, but at most `ms`: true if it settled in time. For shutdowns, which
 * must end even when what they wait for does not; the timer does not keep the process alive.
 */
export async function settledWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  // Beyond a timer's range (Infinity included) Node fires it at once: no bound then.
  if (ms > MAX_TIMER_MS) return settled;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms).unref()));
  try {
    return await Promise.race([settled, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** How long a failed sync waits before its next attempt (settings retryBaseDelay, retryFactor, retryMaxDelay). */
export interface RetryBackoff {
  baseMs: number;
  factor: number;
  maxMs: number;
}

/**
 * ± this fraction of the level's delay. Retries of syncs that failed together (a database
 * restart fails every sync reading from it) come back spread out, not as one wave; and since
 * each level has its own delay queue, a message at a queue's head holds the ones behind it by
 * at most the spread (2 × RETRY_JITTER of the level's delay).
 */
export const RETRY_JITTER = 0.2;

/**
 * The delay of retry level `level` (1 = the wait after the first failed attempt): base ×
 * factor^(level-1), capped at maxMs, ± RETRY_JITTER, and never above maxMs.
 * Defaults (s): 10, 30, 90, 270, then 600 (the cap) for any further level.
 */
export function retryDelay(level: number, o: RetryBackoff, random: () => number = Math.random): number {
  const nominal = retryNominalDelay(level, o);
  const jittered = nominal * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random());
  return Math.max(1, Math.min(o.maxMs, Math.round(jittered)));
}

/** The level's delay before jitter. */
export function retryNominalDelay(level: number, o: RetryBackoff): number {
  if (!Number.isInteger(level) || level < 1) throw new RangeError(`retry level must be an integer ≥ 1, got ${level}`);
  return Math.min(o.maxMs, o.baseMs * o.factor ** (level - 1));
}
