// RunnerLauncher adapter for one machine: each runner is a child process running
// `tidepool runner`. Runners are detached (their own process group) so that a scaler restart
// does not take running syncs down with it; they leave by themselves when idle.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { CLI_PATH } from '../shared/paths.js';
import type { LaunchedRunner, RunnerLauncher } from '../shared/ports/runner-launcher.js';
import { runnerEnv } from './runner-env.js';

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

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly options: { cliPath?: string; extraEnv?: Record<string, string> } = {},
  ) {}

  launch(count: number): Promise<string[]> {
    const ids: string[] = [];
    mkdirSync(this.config.runnerLogDir, { recursive: true });
    for (let i = 0; i < count; i++) {
      const runnerId = `runner-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      const logPath = join(this.config.runnerLogDir, `${runnerId}.log`);
      const log = openSync(logPath, 'a');
      let child: ChildProcess;
      try {
        child = spawn(process.execPath, [this.options.cliPath ?? CLI_PATH, 'runner', '--runner-id', runnerId], {
          env: { ...runnerEnv(this.config, 'local'), ...this.options.extraEnv },
          stdio: ['ignore', log, log],
          detached: true,
        });
      } finally {
        closeSync(log);
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
      this.logger.info({ runnerId, pid: child.pid, log: logPath }, 'runner launched');
    }
    return Promise.resolve(ids);
  }

  private finish(tracked: Tracked, code: number | null, reason?: string): void {
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
