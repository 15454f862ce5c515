// The runner's side of the adaptive leave rule (decideLeave in idle.ts): while idle, at every
// heartbeat past idleMinimum, it reads what it needs — the syncs queue's ready count (the
// broker), the pool's heartbeats and how many syncs started in the last minute (the store) — and
// asks the rule whether it is surplus. Anything it cannot read keeps it: a runner unsure of the
// pool stays until idleTimeout, as it would without the rule.
import type { ChannelModel } from 'amqplib';
import type { Config } from '../shared/config.js';
import { queueDepth } from '../shared/broker/connection.js';
import type { Store } from '../shared/store/index.js';
import { decideLeave, type LeaveDecision, type LeaveSettings } from './idle.js';

/** The arrival rate idle runners size the warm slots by: syncs started over this last stretch. */
export const ARRIVAL_WINDOW_MS = 60_000;

export interface EarlyLeaveContext {
  runnerId: string;
  store: Store;
  /** The broker connection in use; undefined while reconnecting. */
  connection: ChannelModel | undefined;
  syncsQueue: string;
  /** How long the runner has had nothing in flight; undefined while a sync runs. */
  idleForMs: number | undefined;
}

export function leaveSettings(config: Pick<Config, 'idleTimeout' | 'idleMinimum' | 'runnerStartEstimate' | 'minRunners'>): LeaveSettings {
  return { idleTimeoutMs: config.idleTimeout, idleMinimumMs: config.idleMinimum, refillMs: config.runnerStartEstimate, minRunners: config.minRunners };
}

/** The rule's decision for this runner now; undefined when it does not apply (busy, too soon, broker away). */
export async function considerLeaving(context: EarlyLeaveContext, config: Config): Promise<LeaveDecision | undefined> {
  const settings = leaveSettings(config);
  const { idleForMs, connection } = context;
  if (settings.idleMinimumMs <= 0 || idleForMs === undefined || idleForMs < settings.idleMinimumMs || !connection) return undefined;
  const now = Date.now();
  const [depth, heartbeats, recentStarts] = await Promise.all([
    queueDepth(connection, context.syncsQueue),
    context.store.runners.alive(),
    context.store.runs.startedSince(now - ARRIVAL_WINDOW_MS),
  ]);
  const pool = heartbeats
    .filter((h) => h.state === 'consuming')
    .map((h) => ({ runnerId: h.runnerId, concurrency: h.concurrency, inFlight: h.inFlight, syncsDone: h.syncsDone }));
  return decideLeave(
    { runnerId: context.runnerId, concurrency: config.concurrency, idleForMs, ready: depth.ready, pool, recentStarts, windowMs: ARRIVAL_WINDOW_MS },
    settings,
  );
}
