// How a runner stops, in two parts, each with an end that does not depend on anything else
// ending. First its syncs: they may finish within the grace period (or until a second signal),
// then what is left is aborted, and the aborted ones get SYNC_ABORT_WAIT_MS to wind down. Then
// what it holds: everything acquired at start is released in reverse order of acquisition
// (graphile-worker's "releasers"), each within a bound, so a store or broker that no longer
// answers cannot keep a stopping runner alive.
import { settledWithin } from '../shared/backoff.js';
import type { Logger } from '../shared/logger.js';

/**
 * How long aborted syncs get to wind down before the runner closes anyway. An aborted sync kills
 * its connectors and records itself as `requeued`, which takes well under a second — unless the
 * store is away: its write then waits in ioredis' offline queue for about a minute
 * (REDIS_MAX_RETRIES_PER_REQUEST), past any grace an orchestrator gives (Kubernetes' default
 * termination grace is 30 s). Closing without it loses nothing: the message was never acked and
 * returns to the queue when the broker connection closes, and the run record says `running`
 * until the next attempt replaces it.
 */
export const SYNC_ABORT_WAIT_MS = 10_000;

/** How long one releaser may take by default (a channel close, a Redis write, a timer). */
export const RELEASE_WAIT_MS = 5_000;

/** A sync in flight, as the drain sees it. */
export interface Draining {
  /** Settles when the sync is done with (never rejects in the runner; a rejection counts as done). */
  done: Promise<unknown>;
  abort(): void;
  /** Says which sync it is in a log line. */
  label: string;
}

export interface DrainOptions {
  graceMs: number;
  /** Resolves when the syncs are to be aborted at once (a second signal). */
  force: Promise<void>;
  abortWaitMs?: number;
}

/** Lets the syncs finish within the grace, aborts the rest, waits for them at most abortWaitMs. */
export async function drainSyncs(syncs: readonly Draining[], options: DrainOptions): Promise<{ aborted: number; left: string[] }> {
  if (syncs.length === 0) return { aborted: 0, left: [] };
  const pending = new Set(syncs);
  for (const sync of syncs) {
    const gone = () => pending.delete(sync);
    sync.done.then(gone, gone);
  }
  const all = Promise.allSettled(syncs.map((s) => s.done));
  await settledWithin(Promise.race([all, options.force]), options.graceMs);
  const aborted = pending.size;
  for (const sync of pending) sync.abort();
  await settledWithin(all, options.abortWaitMs ?? SYNC_ABORT_WAIT_MS);
  return { aborted, left: [...pending].map((s) => s.label) };
}

interface Releaser {
  name: string;
  release: () => unknown;
  maxMs: number;
}

/** What a component holds, and how to give each thing back: released last acquired first. */
export class Releasers {
  private readonly held: Releaser[] = [];

  constructor(private readonly logger: Logger) {}

  /** Call right after acquiring: a later acquisition may depend on this one, so it is released earlier. */
  add(name: string, release: () => unknown, maxMs = RELEASE_WAIT_MS): void {
    this.held.push({ name, release, maxMs });
  }

  /**
   * Releases everything held, in reverse order of acquisition, each within its bound: one that
   * fails or hangs is logged and the next goes on. Never throws; a second call releases only
   * what was added since. Returns the names of the ones that failed or ran out of time.
   */
  async releaseAll(): Promise<string[]> {
    const unreleased: string[] = [];
    for (const releaser of this.held.splice(0).reverse()) {
      const outcome: { err?: unknown } = {};
      const release = Promise.resolve()
        .then(releaser.release)
        .catch((err: unknown) => (outcome.err = err ?? 'failed'));
      if (!(await settledWithin(release, releaser.maxMs))) {
        this.logger.warn({ releasing: releaser.name, waitedMs: releaser.maxMs }, 'not released in time: going on without it');
        unreleased.push(releaser.name);
      } else if ('err' in outcome) {
        this.logger.warn({ releasing: releaser.name, err: outcome.err instanceof Error ? outcome.err.message : String(outcome.err) }, 'could not release: going on without it');
        unreleased.push(releaser.name);
      }
    }
    return unreleased;
  }
}
