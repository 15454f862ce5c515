// The scaling decision, as a pure function: how many runners to launch now.
//
// Scale-up only. Runners leave by themselves when idle, so the policy never has to pick a
// victim (the HPA's problem with long tasks). Starting runners — launched, not yet
// heartbeating — count as capacity until their first heartbeat: a slow start must not trigger
// a second launch for the same backlog (the duplicate-launch bug KEDA users keep reporting).

export interface ScalingInput {
  /** Messages waiting in the queue (not delivered to any runner). */
  ready: number;
  /** Syncs running now, summed from runner heartbeats. */
  inFlight: number;
  /** Runners heartbeating. */
  running: number;
  /** Runners launched but not heartbeating yet. */
  starting: number;
  /** Syncs one runner runs at once. */
  concurrency: number;
  minRunners: number;
  maxRunners: number;
  /** Launches the rate limiter allows right now (whole tokens). */
  launchBudget: number;
}

export interface ScalingDecision {
  launch: number;
  /** Why, for the log and the dashboard. */
  reason: string;
}

export function decideLaunches(input: ScalingInput): ScalingDecision {
  const { ready, inFlight, running, starting, concurrency, minRunners, maxRunners, launchBudget } = input;
  const pool = running + starting;
  // Free slots: every running or starting runner takes `concurrency` syncs; in-flight ones use some.
  const free = Math.max(0, pool * concurrency - inFlight);
  const unserved = Math.max(0, ready - free);
  const forBacklog = Math.ceil(unserved / concurrency);
  const forMinimum = Math.max(0, minRunners - pool);
  const wanted = Math.max(forBacklog, forMinimum);
  if (wanted === 0) {
    return { launch: 0, reason: ready === 0 ? 'queue empty' : `${ready} waiting, ${free} free slots` };
  }
  const room = Math.max(0, maxRunners - pool);
  const launch = Math.max(0, Math.min(wanted, room, Math.floor(launchBudget)));
  let reason = forBacklog >= forMinimum ? `${unserved} syncs without a slot` : `below minRunners (${minRunners})`;
  if (launch < wanted) {
    // Name the cap that actually binds: the smaller of the two limits.
    reason += room <= Math.floor(launchBudget) ? `; capped by maxRunners (${maxRunners})` : '; capped by launch rate';
  }
  return { launch, reason };
}

/** Token bucket for the launch rate: `rate` launches per second, bursts up to `burst`. */
export interface RateLimiterState {
  tokens: number;
  updatedAt: number;
}

export function refillTokens(state: RateLimiterState, now: number, rate: number, burst: number): RateLimiterState {
  const elapsed = Math.max(0, now - state.updatedAt) / 1000;
  return { tokens: Math.min(burst, state.tokens + elapsed * rate), updatedAt: now };
}

export function spendTokens(state: RateLimiterState, count: number): RateLimiterState {
  return { tokens: Math.max(0, state.tokens - count), updatedAt: state.updatedAt };
}
