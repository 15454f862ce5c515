// Timed rounds that other work on the machine disturbed are run again: on a shared 2-core VM a
// burst of someone else's CPU during one round skews that mode's median, and waiting for a quiet
// machine beforehand does not stop a burst that starts during the round.
import { performance } from 'node:perf_hooks';
import { sleep } from '../../shared/backoff.js';
import { progress } from './cli.js';
import { cpuCounters, QUIET_BUSY_SHARE, waitForQuietCpu } from './cpu.js';

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

/** One timed run of a mode: what it measured, its time in seconds, and what its progress line says of it. */
export interface Measured<S> {
  sample: S;
  seconds: number;
  note: string;
}

/**
 * `rounds` rounds of two modes, alternating (the first mode alternates per round, so neither
 * always runs on a warmer machine), each after waiting up to 60 s for a quiet CPU, each run again
 * up to `retries` times when other processes disturbed it. Returns each mode's samples in order.
 */
export async function alternateRounds<M extends string, S>(
  modes: readonly [M, M],
  rounds: number,
  retries: number,
  run: (mode: M, label: string) => Promise<Measured<S>>,
): Promise<Record<M, S[]>> {
  const out = { [modes[0]]: [], [modes[1]]: [] } as unknown as Record<M, S[]>;
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? modes : ([modes[1], modes[0]] as const);
    for (const mode of order) {
      const label = `round ${round}/${rounds} ${mode}`;
      // Another process's burst would land on one mode only.
      const busy = await waitForQuietCpu(60_000, 300);
      if (busy > QUIET_BUSY_SHARE) progress(`${label}: warning: ${Math.round(busy * 100)}% of the CPU still busy with other work after waiting 60 s; timings will be skewed`);
      const sample = await leastDisturbed(label, async (attempt) => {
        if (attempt > 0) await sleep(2000);
        // CPU used by processes that are not ours during the round, to spot a skewed round.
        const before = await cpuCounters();
        const t0 = performance.now();
        const m = await run(mode, label);
        const wallS = (performance.now() - t0) / 1000;
        const after = await cpuCounters();
        const otherCpuS = Math.max(0, after.machine - before.machine - (after.ours - before.ours));
        const note = `${m.note}; other processes used ${otherCpuS.toFixed(2)} CPU-s in ${wallS.toFixed(1)} s`;
        return { sample: m.sample, otherCpuS, wallS, seconds: m.seconds, note };
      }, (attempt) => attempt < retries);
      out[mode].push(sample);
    }
  }
  return out;
}
