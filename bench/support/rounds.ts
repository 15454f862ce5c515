// Timed rounds that other work on the machine disturbed are run again: on a shared 2-core VM a
// burst of someone else's CPU during one round skews that mode's median, and waiting for a quiet
// machine beforehand does not stop a burst that starts during the round.
import { progress } from './cli.js';

/**
 * CPU other processes may use during one round (the broker, the store and the kernel's own
 * threads included) before it counts as disturbed: a base plus a share of one core over the
 * round.
 */
export const INTERFERENCE = { baseS: 0.25, share: 0.05 };

/** Whether `otherCpuS` of other processes' CPU over a round of `wallS` seconds disturbed it. */
export function disturbed(otherCpuS: number, wallS: number): boolean {
  return otherCpuS > INTERFERENCE.baseS + INTERFERENCE.share * wallS;
}

/** One attempt at a round. */
export interface Attempt<S> {
  sample: S;
  /** CPU seconds other processes used during the attempt. */
  otherCpuS: number;
  /** How long the attempt took, in seconds. */
  wallS: number;
  /** The attempt's timing, in seconds, as its progress line names it. */
  seconds: number;
  /** Its progress line: what it measured and what other processes used meanwhile. */
  note: string;
}

/**
 * Runs `attempt` (0, 1, …) until one is not disturbed or `mayRetry(n)` says no more, and
 * returns the least disturbed attempt's sample, with a progress line for each.
 */
export async function leastDisturbed<S>(label: string, attempt: (n: number) => Promise<Attempt<S>>, mayRetry: (n: number) => boolean): Promise<S> {
  let best: Attempt<S> | undefined;
  for (let n = 0; ; n++) {
    const a = await attempt(n);
    const skewed = disturbed(a.otherCpuS, a.wallS);
    if (!best || a.otherCpuS < best.otherCpuS) best = a;
    if (skewed && mayRetry(n)) {
      progress(`${label}: ${a.note}: too much other work, running the round again`);
      continue;
    }
    progress(`${label}: ${a.note}`);
    if (best !== a) progress(`${label}: still disturbed; keeping the least disturbed attempt (${best.seconds.toFixed(2)} s, other processes ${best.otherCpuS.toFixed(2)} CPU-s)`);
    else if (skewed) progress(`${label}: warning: skewed by other work`);
    return best.sample;
  }
}
