// How busy the machine is. Benches run on a shared 2-core VM: another process's burst (a test
// suite, a build) during one round lands on one mode only and skews the comparison, so a bench
// waits for a quiet CPU before a round and counts what other processes used during it.
import { readdir, readFile } from 'node:fs/promises';
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

/** Processes of the cluster itself (scripts/cluster, scripts/keda): they work for our pods. */
const CLUSTER_PROCESS = /tidepool-cluster|\.cache\/tidepool\/|containerd|\brunc\b/;

/**
 * CPU ticks so far of every process that is not ours: not this process or its descendants, not
 * the cluster's own (its binaries, containerd, runc, anything in a kubepods cgroup: our pods),
 * not the kernel's threads, not init (which reaps orphans). Children's reaped time is included,
 * so a test suite or a build that ran and ended within a round still shows, in its driver.
 */
export interface Foreign {
  ppid: string;
  ticks: number;
  command: string;
}

export async function foreignTicks(): Promise<Map<string, Foreign>> {
  const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  const procs = await Promise.all(
    pids.map(async (pid) => {
      try {
        const [stat, cmdline, cgroup] = await Promise.all([
          readFile(`/proc/${pid}/stat`, 'utf8'),
          readFile(`/proc/${pid}/cmdline`, 'utf8'),
          readFile(`/proc/${pid}/cgroup`, 'utf8'),
        ]);
        // Fields after the command name (which may hold spaces): ppid is 4th; utime..cstime 14..17.
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(rest[i] ?? 0), 0);
        // Some processes (containerd's shims) have an empty cmdline: their name is in stat.
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
        const command = cmdline.split('\0').filter(Boolean).slice(0, 3).join(' ').slice(0, 80) || name;
        return { pid, ppid: rest[1] ?? '0', ticks, command, cluster: CLUSTER_PROCESS.test(cmdline) || CLUSTER_PROCESS.test(name) || cgroup.includes('kubepods') };
      } catch {
        return undefined; // exited meanwhile
      }
    }),
  );
  const parent = new Map<string, string>();
  for (const p of procs) if (p) parent.set(p.pid, p.ppid);
  const self = String(process.pid);
  const ours = (pid: string): boolean => {
    for (let at: string | undefined = pid, hops = 0; at && at !== '0' && hops < 64; at = parent.get(at), hops++) if (at === self) return true;
    return false;
  };
  const out = new Map<string, Foreign>();
  for (const p of procs) {
    if (!p || p.pid === '1' || p.pid === '2' || p.ppid === '2' || p.cluster || ours(p.pid)) continue;
    out.set(p.pid, { ppid: p.ppid, ticks: p.ticks, command: p.command });
  }
  return out;
}

/**
 * CPU seconds other people's processes used between two foreignTicks() (a new process: all of
 * its time), and the largest users.
 */
export function foreignSeconds(before: Map<string, Foreign>, after: Map<string, Foreign>): { seconds: number; top: string } {
  const used = new Map<string, number>();
  for (const [pid, p] of after) used.set(pid, p.ticks - (before.get(pid)?.ticks ?? 0));
  // A process that ended during the round was reaped by its parent, whose children's time now
  // holds all of its life: the part before the round is not the round's. (One whose parent is
  // not counted, init or ours, is lost with its time in the round: an under-estimate.)
  for (const [pid, p] of before) {
    if (!after.has(pid) && used.has(p.ppid)) used.set(p.ppid, used.get(p.ppid)! - p.ticks);
  }
  const top = [...used].filter(([, t]) => t > 0).sort((a, b) => b[1] - a[1]).slice(0, 3);
  const ticks = [...used.values()].reduce((sum, t) => sum + t, 0);
  return {
    seconds: Math.max(0, ticks / CLK_TCK),
    top: top.map(([pid, t]) => `${pid} ${after.get(pid)?.command ?? '?'} (${(t / CLK_TCK).toFixed(1)} s)`).join(', '),
  };
}
