// A `tidepool runner` of a bench's own whose output goes to a log file: a round's runner logs a
// whole big sync, more than is worth holding in memory, and the log's tail is what the bench
// shows when the round fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { CLI_PATH } from '../../shared/paths.js';
import { CLK_TCK } from './cpu.js';

export interface LoggedRunner {
  child: ChildProcess;
  /** Its exit code (null: killed by a signal). */
  exited: Promise<number | null>;
  /** The last `lines` lines of its log ('' while there is none). */
  logTail(lines: number): Promise<string>;
}

export interface LoggedRunnerOptions {
  env: NodeJS.ProcessEnv;
  logPath: string;
  /** Node's own flags (--cpu-prof): they apply to the runner process, not to its connectors. */
  nodeFlags?: string[];
  /** A runner that could not be started at all. */
  onError: (err: Error) => void;
}

export function spawnLoggedRunner(runnerId: string, o: LoggedRunnerOptions): LoggedRunner {
  const logFd = openSync(o.logPath, 'w');
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), CLI_PATH, 'runner', '--runner-id', runnerId], { env: o.env, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.once('error', o.onError);
  const logTail = async (lines: number) => (await readFile(o.logPath, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-lines).join('\n');
  return { child, exited, logTail };
}

/** How a supervised runner ended, and what it used on the way. */
export interface RunnerUsage {
  /** Its exit code (null: killed by a signal), or 'timeout' when it was still running after the limit (then killed). */
  code: number | null | 'timeout';
  /** The kernel's high-water mark of its resident set (VmHWM), children not included. */
  peakRssKb: number;
  /** CPU seconds it used itself, user and system, as last sampled (its connectors not included). */
  userS: number;
  sysS: number;
}

/**
 * Waits for the runner to exit (SIGTERM past `timeoutMs`), sampling its VmHWM and its CPU time
 * every 50 ms; the last sample is taken while it idles before its exit.
 */
export async function superviseRunner(runner: LoggedRunner, timeoutMs: number): Promise<RunnerUsage> {
  const { child, exited } = runner;
  const usage: RunnerUsage = { code: null, peakRssKb: 0, userS: 0, sysS: 0 };
  const sample = async (): Promise<void> => {
    if (child.pid === undefined) return;
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(await readFile(`/proc/${child.pid}/status`, 'utf8'));
      if (m) usage.peakRssKb = Math.max(usage.peakRssKb, Number(m[1]));
      const stat = await readFile(`/proc/${child.pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
      usage.userS = Math.max(usage.userS, (rest[11] ?? 0) / CLK_TCK);
      usage.sysS = Math.max(usage.sysS, (rest[12] ?? 0) / CLK_TCK);
    } catch {
      // exited between samples
    }
  };
  const sampler = setInterval(() => void sample(), 50);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    usage.code = await Promise.race([exited, timedOut]);
  } finally {
    clearInterval(sampler);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      child.kill('SIGTERM');
      await exited;
    }
  }
  return usage;
}
