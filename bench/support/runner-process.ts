// A `tidepool runner` of a bench's own whose output goes to a log file: a round's runner logs a
// whole big sync, more than is worth holding in memory, and the log's tail is what the bench
// shows when the round fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { CLI_PATH } from '../../shared/paths.js';

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
