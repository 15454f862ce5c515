// ConnectorLauncher adapter: each connector run is a child process of the runner.
// Config, catalog and state go to a private temp directory (0700, files 0600) that is removed
// when the connector exits: connector configs carry credentials.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectorExit, ConnectorLauncher, ConnectorProcess, ConnectorRun } from '../shared/ports/connector-launcher.js';
import { builtinConnectorCommand } from '../shared/paths.js';

export function connectorArgv(run: ConnectorRun, fileArgs: string[]): string[] {
  const c = run.connector;
  const base = c.connector !== undefined ? builtinConnectorCommand(c.connector) : c.command;
  if (!base) throw new Error(`connector of ${run.runId} has no command (image connectors need the docker or kubernetes launcher)`);
  return [...base, run.command, ...fileArgs];
}

/** Writes the run's files into `dir`; returns the protocol flags pointing at them. */
export async function writeRunFiles(dir: string, run: ConnectorRun, pathInConnector: (name: string) => string = (n) => join(dir, n)): Promise<string[]> {
  const args: string[] = [];
  for (const name of ['config', 'catalog', 'state'] as const) {
    const value = run.files[name];
    if (value === undefined) continue;
    await writeFile(join(dir, `${name}.json`), JSON.stringify(value), { mode: 0o600 });
    args.push(`--${name}`, pathInConnector(`${name}.json`));
  }
  return args;
}

/**
 * The connector's exit, resolved once its private directory is removed (the files hold
 * credentials). `describe` turns the process's own exit into the connector's.
 */
export function exitThenRemove(
  child: ChildProcess,
  dir: string,
  program: string,
  describe: (code: number | null, signal: NodeJS.Signals | null) => ConnectorExit,
): Promise<ConnectorExit> {
  return new Promise<ConnectorExit>((resolve) => {
    let settled = false;
    const finish = (e: ConnectorExit) => {
      if (settled) return;
      settled = true;
      void rm(dir, { recursive: true, force: true }).finally(() => resolve(e));
    };
    child.once('error', (err) => finish({ code: null, signal: null, reason: `failed to start ${program}: ${err.message}` }));
    child.once('exit', (code, signal) => finish(describe(code, signal)));
  });
}

export class LocalProcessConnectorLauncher implements ConnectorLauncher {
  readonly kind = 'local';

  constructor(private readonly baseDir: string = tmpdir()) {}

  async start(run: ConnectorRun): Promise<ConnectorProcess> {
    const dir = await mkdtemp(join(this.baseDir, `tidepool-${run.runId.slice(0, 60)}-`));
    let argv: string[];
    try {
      argv = connectorArgv(run, await writeRunFiles(dir, run));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    const [file, ...args] = argv as [string, ...string[]];
    const child = spawn(file, args, {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, LANG: process.env.LANG ?? 'C.UTF-8', ...run.connector.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      // Own process group: kill() ends the connector and anything it started.
      detached: true,
    });
    // EPIPE when the connector exits before reading all of stdin is expected; the exit says why.
    child.stdin.on('error', () => undefined);

    const exit = exitThenRemove(child, dir, file, (code, signal) => ({ code, signal }));

    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exit,
      kill(signal: NodeJS.Signals = 'SIGTERM') {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
        try {
          process.kill(-child.pid, signal);
        } catch {
          child.kill(signal);
        }
      },
    };
  }
}
