// How busy the machine is. Benches run on a shared 2-core VM: another process's burst (a test
// suite, a build) during one round lands on one mode only and skews the comparison, so a bench
// waits for a quiet CPU before a round and counts what other processes used during it.
import { readFile } from 'node:fs/promises';
import { sleep } from '../../shared/backoff.js';

/** USER_HZ: the unit of /proc/stat and /proc/<pid>/stat times on Linux. */
export const CLK_TCK = 100;

/** A machine busier than this (share of all its CPU) is not quiet enough to time a round on. */
export const QUIET_BUSY_SHARE = 0.15;

/** Share of the machine's CPU in use over the next `ms` (0 where /proc/stat cannot be read). */
export async function busyShare(ms: number): Promise<number> {
  const read = async (): Promise<{ idle: number; total: number }> => {
    const fields = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total: fields.reduce((a, b) => a + b, 0) };
  };
  try {
    const a = await read();
    await sleep(ms);
    const b = await read();
    return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
  } catch {
    return 0;
  }
}

/**
 * Waits up to `maxMs` for the machine to be quiet (QUIET_BUSY_SHARE), sampling its CPU over
 * `sampleMs` once a second; returns the busy share at the end, quiet or not.
 */
export async function waitForQuietCpu(maxMs: number, sampleMs: number): Promise<number> {
  let busy = await busyShare(sampleMs);
  for (const until = Date.now() + maxMs; busy > QUIET_BUSY_SHARE && Date.now() < until; ) {
    await sleep(1000);
    busy = await busyShare(sampleMs);
  }
  return busy;
}

/** CPU seconds used so far by the whole machine, and by this process with its reaped children. */
export async function cpuCounters(): Promise<{ machine: number; ours: number }> {
  const stat = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const busy = stat.reduce((a, b) => a + b, 0) - (stat[3] ?? 0) - (stat[4] ?? 0);
  const self = await readFile('/proc/self/stat', 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3; utime..cstime are 14..17.
  const rest = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
  const ours = (rest[11] ?? 0) + (rest[12] ?? 0) + (rest[13] ?? 0) + (rest[14] ?? 0);
  return { machine: busy / CLK_TCK, ours: ours / CLK_TCK };
}
