// ConnectorLauncher adapter: each connector run is a child process of the runner.
// Config, catalog and state go to a private temp directory (0700, files 0600) that is removed
// when the connector exits: connector configs carry credentials.
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams, type SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getDefaultHighWaterMark, setDefaultHighWaterMark } from 'node:stream';
import { plainEnv } from '../../shared/connections.js';
import type { ConnectorExit, ConnectorLauncher, ConnectorProcess, ConnectorRun, ConnectorStartup } from '../../shared/ports/connector-launcher.js';
import { ConnectorError } from '../../shared/errors.js';
import { builtinConnectorCommand } from '../../shared/paths.js';
import { describeSpawnError, resolveProgram } from './program.js';

export function connectorArgv(run: ConnectorRun, fileArgs: string[]): string[] {
  const c = run.connector;
  const base = c.connector !== undefined ? builtinConnectorCommand(c.connector) : c.command;
  // A connector this launcher cannot run will not run on a retry either: a configuration error.
  if (!base) throw ConnectorError.of({ kind: 'not_started' }, `${run.role} has no command (image connectors need the docker or kubernetes launcher)`, run.role);
  return [...base, run.command, ...fileArgs];
}

/**
 * A new private directory (0700) for a connector run, directly under `baseDir`. Its name is
 * built from a safe form of the run id (the id's file-name characters, cut, plus a hash of the
 * whole id for uniqueness), never from the id itself: however the id got past validation, it
 * cannot name a path outside `baseDir`.
 */
export async function makeRunDir(baseDir: string, runId: string): Promise<string> {
  const readable = runId.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 40);
  const hash = createHash('sha256').update(runId).digest('hex').slice(0, 12);
  return mkdtemp(join(baseDir, `tidepool-${readable}-${hash}-`));
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

/**
 * The buffer of each of a connector's stdio streams in the runner: how far it reads ahead of the
 * pump. Node's default (16 KiB) stops reading the socket after each 64 KiB read and starts it
 * again when the pump asks for more (two epoll_ctl per chunk); with 1 MiB it keeps reading while
 * the pump checks a chunk, and the pump is then handed everything read meanwhile at once (fewer,
 * larger chunks: fewer per-chunk costs and writes). Measured with `throughput --capacity`.
 */
export const STDIO_HIGH_WATER_MARK = 1024 * 1024;

/**
 * spawn() with its stdin, stdout and stderr piped, their buffers STDIO_HIGH_WATER_MARK. spawn()
 * takes no buffer size for them; they are created synchronously inside it with the process-wide
 * default, which is set for that call only and put back at once.
 */
export function spawnWithLargeStdio(file: string, args: string[], options: Omit<SpawnOptions, 'stdio'>): ChildProcessWithoutNullStreams {
  const previous = getDefaultHighWaterMark(false);
  setDefaultHighWaterMark(false, STDIO_HIGH_WATER_MARK);
  try {
    return spawn(file, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'] });
  } finally {
    setDefaultHighWaterMark(false, previous);
  }
}

function notStarted(run: ConnectorRun, problem: string): ConnectorError {
  return ConnectorError.of({ kind: 'not_started' }, `${run.role} could not start: ${problem}`, run.role);
}

export class LocalProcessConnectorLauncher implements ConnectorLauncher {
  readonly kind = 'local';

  constructor(private readonly baseDir: string = tmpdir()) {}

  async start(run: ConnectorRun): Promise<ConnectorProcess> {
    const startup: ConnectorStartup = { launchedAt: Date.now() };
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: process.env.LANG ?? 'C.UTF-8', ...plainEnv(run.connector) };
    // A program that is not there fails the run at once as a configuration error (a typo in a
    // path is not a crash, and no retry will fix it). Resolved here, against the runner's
    // working directory and the connector's PATH, because spawn() would resolve a relative
    // path against the connector's private directory.
    const [program, ...rest] = connectorArgv(run, []);
    const resolved = await resolveProgram(program!, env.PATH);
    if (!resolved.ok) throw notStarted(run, resolved.problem);
    const dir = await makeRunDir(this.baseDir, run.runId);
    let args: string[];
    try {
      args = [...rest, ...(await writeRunFiles(dir, run))];
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    const file = resolved.path;
    const child = spawnWithLargeStdio(file, args, {
      cwd: dir,
      env: { HOME: dir, ...env },
      // Own process group: kill() ends the connector and anything it started.
      detached: true,
    });
    // EPIPE when the connector exits before reading all of stdin is expected; the exit says why.
    child.stdin.on('error', () => undefined);

    const exit = exitThenRemove(child, dir, file, (code, signal) => ({ code, signal }));
    // The program was there a moment ago, but exec can still fail (a #! interpreter missing,
    // no permission): wait for the process to exist before handing it out.
    const spawnError = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', resolve);
    });
    if (spawnError) {
      await exit;
      throw notStarted(run, describeSpawnError(file, spawnError));
    }
    startup.startedAt = Date.now();

    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exit,
      startup,
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
