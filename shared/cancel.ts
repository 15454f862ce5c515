// An operator's cancel, the same from the CLI (`tidepool cancel`) and the dashboard
// (POST /api/runs/<id>/cancel): a marker in the store that every runner looks at
// (shared/store/cancels.ts). What it then does depends on where the sync is: still queued (or
// in a delay queue), it is acked without running when delivered; running, its runner stops it
// within about a second (runner/sync/cancel-watch.ts). A sync that already ended is left alone.
import type { Store } from './store/index.js';
import type { CancelMarker } from './store/cancels.js';
import { FINAL_STATUSES, type RunStatus } from './store/runs.js';

export type SyncCancel =
  /** Marked: `status` is its record's status when marked (undefined: no record yet, so still queued). */
  | { outcome: 'marked'; marker: CancelMarker; status?: RunStatus }
  /** Already ended (succeeded, dead-lettered, cancelled): nothing to cancel. */
  | { outcome: 'ended'; status: RunStatus };

/** Cancels one sync by id, unless it already ended. */
export async function cancelSync(store: Pick<Store, 'runs' | 'cancels'>, syncId: string, by: string): Promise<SyncCancel> {
  const run = await store.runs.get(syncId);
  if (run && FINAL_STATUSES.has(run.status)) return { outcome: 'ended', status: run.status };
  const marker = await store.cancels.cancelSync(syncId, { by, at: new Date().toISOString() });
  return { outcome: 'marked', marker, ...(run ? { status: run.status } : {}) };
}

/** How many of a connection's recent runs are looked at to list the unfinished ones. */
const RECENT_RUNS = 200;

/**
 * Cancels every sync of the connection requested until now: those still queued (their ids are
 * not known before delivery, so by the time they were requested) and the unfinished ones its
 * recent run records list (running, retrying, requeued), which are returned.
 */
export async function cancelConnection(store: Pick<Store, 'runs' | 'cancels'>, connectionId: string, by: string): Promise<{ marker: CancelMarker; unfinished: { syncId: string; status: RunStatus }[] }> {
  const marker = { by, at: new Date().toISOString() };
  await store.cancels.cancelConnection(connectionId, marker);
  const runs = await store.runs.list({ connectionId, limit: RECENT_RUNS });
  const unfinished = runs.filter((r) => !FINAL_STATUSES.has(r.status)).map((r) => ({ syncId: r.syncId, status: r.status }));
  return { marker, unfinished };
}
