// RunnerLauncher adapter for one machine: each runner is a child process running
// `tidepool runner`. Runners are detached (their own process group) so that a scaler restart
// does not take running syncs down with it; they leave by themselves when idle.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, lstatSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { envName, type Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { CLI_PATH } from '../shared/paths.js';
import type { LaunchedRunner, RunnerLauncher } from '../shared/ports/runner-launcher.js';
import { LocalMetricsPorts } from './local-metrics-ports.js';
import { runnerEnv } from './runner-env.js';

/**
 * The runner log directory, made private: 0700, ours. Runner logs hold sync ids, connector
 * stderr and reasons; under /tmp, another user could create the directory first and read or
 * swap them. One that exists and belongs to another user, or that others may write to, is
 * refused; one of ours that others may only read (made before logs were private) is tightened.
 */
export function privateLogDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const refuse = (why: string) => new Error(`TIDEPOOL_RUNNER_LOG_DIR ${dir} ${why}: runner logs would not be private; remove it or set TIDEPOOL_RUNNER_LOG_DIR to a directory of this user's`);
  if (!st.isDirectory()) throw refuse(st.isSymbolicLink() ? 'is a symbolic link' : 'is not a directory');
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw refuse(`is owned by uid ${st.uid}, not by this user (uid ${uid})`);
  if ((st.mode & 0o022) !== 0) throw refuse(`is writable by its group or by anyone (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** A new log file only this user may read; never through a link planted under its name. */
const LOG_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_APPEND | constants.O_NOFOLLOW;

/** Finished runners stay listed this long, so list() callers can see how they ended. */
const KEEP_FINISHED_MS = 60_000;

interface Tracked {
  runner: LaunchedRunner;
  child: ChildProcess;
  finishedAt?: number;
}

export class LocalProcessRunnerLauncher implements RunnerLauncher {
  readonly kind = 'local';
  private readonly runners = new Map<string, Tracked>();
  private readonly metricsPorts: LocalMetricsPorts | undefined;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly options: { cliPath?: string; extraEnv?: Record<string, string> } = {},
  ) {
    this.metricsPorts = LocalMetricsPorts.of(config);
  }

  async launch(count: number): Promise<string[]> {
    const ids: string[] = [];
    privateLogDir(this.config.runnerLogDir);
    for (let i = 0; i < count; i++) {
      const runnerId = `runner-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      const metricsEnv = await this.metricsEnv(runnerId);
      const logPath = join(this.config.runnerLogDir, `${runnerId}.log`);
      let child: ChildProcess;
      try {
        const log = openSync(logPath, LOG_FLAGS, 0o600);
        try {
          child = spawn(process.execPath, [this.options.cliPath ?? CLI_PATH, 'runner', '--runner-id', runnerId], {
            env: { ...runnerEnv(this.config, 'local'), ...metricsEnv, ...this.options.extraEnv },
            stdio: ['ignore', log, log],
            detached: true,
          });
        } finally {
          closeSync(log);
        }
      } catch (err) {
        this.metricsPorts?.release(runnerId);
        throw err;
      }
      const tracked: Tracked = { runner: { runnerId, phase: 'running', launchedAt: Date.now() }, child };
      child.once('error', (err) => {
        this.logger.error({ runnerId, err: err.message }, 'runner failed to start');
        this.finish(tracked, null, err.message);
      });
      child.once('exit', (code, signal) => this.finish(tracked, code, signal ?? undefined));
      // The scaler may exit before the runner; don't let the child keep the scaler's loop alive.
      child.unref();
      this.runners.set(runnerId, tracked);
      ids.push(runnerId);
      this.logger.info({ runnerId, pid: child.pid, log: logPath, metricsPort: metricsEnv[envName('metricsPort')] }, 'runner launched');
    }
    return ids;
  }

  /** The runner's own /metrics port, when the installation serves metrics (else runnerEnv's 0: none). */
  private async metricsEnv(runnerId: string): Promise<Record<string, string>> {
    if (!this.metricsPorts) return {};
    const port = await this.metricsPorts.take(runnerId);
    if (port !== undefined) return { [envName('metricsPort')]: String(port) };
    const { first, last } = this.metricsPorts.range;
    this.logger.warn({ runnerId, first, last }, 'no free metrics port for the runner in its range: it serves no /metrics');
    return {};
  }

  private finish(tracked: Tracked, code: number | null, reason?: string): void {
    this.metricsPorts?.release(tracked.runner.runnerId);
    if (tracked.runner.phase === 'finished') return;
    tracked.runner = { ...tracked.runner, phase: 'finished', exitCode: code, ...(reason ? { reason } : {}) };
    tracked.finishedAt = Date.now();
    this.logger.info({ runnerId: tracked.runner.runnerId, exitCode: code, reason }, 'runner exited');
  }

  list(): Promise<LaunchedRunner[]> {
    const now = Date.now();
    for (const [id, t] of this.runners) {
      if (t.finishedAt !== undefined && now - t.finishedAt > KEEP_FINISHED_MS) this.runners.delete(id);
    }
    return Promise.resolve([...this.runners.values()].map((t) => ({ ...t.runner })));
  }

  close(): Promise<void> {
    this.runners.clear();
    return Promise.resolve();
  }
}
