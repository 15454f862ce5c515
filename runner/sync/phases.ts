// Where a run's time went: the moments a sync passed (published, delivered, locked, connectors
// launched, first byte, outputs ended) turned into the phase durations of its run record
// (shared/store/runs.ts PHASES). Pure: the sync script collects the moments as they happen.
import type { ConnectorStartup } from '../../shared/ports/connector-launcher.js';
import type { ConnectorStartTimes, Phase, RunPhases } from '../../shared/store/runs.js';

/** The moments a sync passes, in order (epoch ms); each starts the phase of the same index. */
export const MARKS = ['queuedSince', 'deliveredAt', 'lockedAt', 'launchedAt', 'firstByteAt', 'sourceEndedAt', 'destinationEndedAt'] as const;
export type Mark = (typeof MARKS)[number];
export type Marks = Partial<Record<Mark, number>>;

const PHASE_OF: Record<Mark, Phase> = {
  queuedSince: 'queued',
  deliveredAt: 'lockWait',
  lockedAt: 'preparing',
  launchedAt: 'starting',
  firstByteAt: 'reading',
  sourceEndedAt: 'committing',
  destinationEndedAt: 'finishing',
};

/**
 * Phase durations from the moments reached. A phase runs from its mark to the next mark that
 * was reached (a source that wrote nothing: starting runs to its output's end, and there is no
 * reading); the last one runs to `endedAt`, or is left out while the run still goes. A moment
 * from outside the process (the publisher's requestedAt) may lie in the future: durations are
 * never negative.
 */
export function phasesFrom(marks: Marks, endedAt?: number): RunPhases {
  const reached = MARKS.filter((m) => Number.isFinite(marks[m]));
  const phases: RunPhases = {};
  reached.forEach((mark, i) => {
    const next = reached[i + 1];
    const end = next !== undefined ? marks[next] : endedAt;
    if (end === undefined) return;
    phases[PHASE_OF[mark]] = Math.max(0, Math.round(end - marks[mark]!));
  });
  return phases;
}

/** A connector's start steps, in ms from its launch; none when its launcher told nothing. */
export function startTimes(startup: ConnectorStartup | undefined): ConnectorStartTimes | undefined {
  if (!startup) return undefined;
  const since = (t: number | undefined) => (t === undefined ? undefined : Math.max(0, Math.round(t - startup.launchedAt)));
  const out: ConnectorStartTimes = {};
  const scheduled = since(startup.scheduledAt);
  const started = since(startup.startedAt);
  const connected = since(startup.connectedAt);
  if (scheduled !== undefined) out.scheduledMs = scheduled;
  if (started !== undefined) out.startedMs = started;
  if (connected !== undefined) out.connectedMs = connected;
  return Object.keys(out).length > 0 ? out : undefined;
}
