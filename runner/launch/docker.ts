// ConnectorLauncher adapter for one machine with a container engine: `docker run -i`.
//
// The connector's image runs with its stdio attached to the runner, exactly as Airbyte runs
// connectors under Docker. Config, catalog and state are written to a private directory that is
// mounted read-only at /config and removed after the run. Containers run non-root with a
// read-only root filesystem and no capabilities; --network host lets a connector reach the
// same addresses the runner can (a database on 127.0.0.1 in local mode).
import { execFile } from 'node:child_process';
import { chown, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { plainEnv } from '../../shared/connections.js';
import { ConnectorError } from '../../shared/errors.js';
import type { ConnectorLauncher, ConnectorProcess, ConnectorRun } from '../../shared/ports/connector-launcher.js';
import { exitThenRemove, makeRunDir, spawnWithLargeStdio, writeRunFiles } from './local-process.js';

const exec = promisify(execFile);

export interface DockerOptions {
  /** Image of a reference connector by name. */
  builtinImage: (name: string) => string;
  /** The docker CLI. */
  docker?: string;
  /** User the container runs as; the run's files are made readable to it. */
  uid?: number;
  /** Memory limit per connector container, e.g. "2g". */
  memory?: string;
}

/**
 * Makes sure the image is there, pulling it if it is not. An image that cannot be had (a typo in
 * its name, a tag that does not exist) fails the run at once as a configuration error, with the
 * engine's reason; an engine that does not answer is left for `docker run` to report, since
 * that may pass.
 */
async function ensureImage(docker: string, run: ConnectorRun, image: string): Promise<string | undefined> {
  const id = async () => (await exec(docker, ['image', 'inspect', '--format', '{{.Id}}', '--', image], { timeout: 30_000 })).stdout.trim() || undefined;
  try {
    return await id();
  } catch (err) {
    if (!/no such (image|object)/i.test((err as { stderr?: string }).stderr ?? '')) return undefined;
  }
  try {
    await exec(docker, ['pull', '--quiet', '--', image], { timeout: 10 * 60_000 });
    return await id().catch(() => undefined);
  } catch (err) {
    const why = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n').at(-1) ?? '';
    throw ConnectorError.of({ kind: 'not_started' }, `${run.role} could not start: image ${image} is not on this machine and could not be pulled: ${why}`, run.role);
  }
}

/** True when a container engine answers. */
export async function dockerAvailable(docker = 'docker'): Promise<boolean> {
  try {
    await exec(docker, ['info', '--format', '{{.ServerVersion}}'], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export class DockerConnectorLauncher implements ConnectorLauncher {
  readonly kind = 'docker';
  private readonly docker: string;
  private readonly uid: number;

  constructor(private readonly options: DockerOptions) {
    this.docker = options.docker ?? 'docker';
    this.uid = options.uid ?? 10001;
  }

  async start(run: ConnectorRun): Promise<ConnectorProcess> {
    const c = run.connector;
    const image = c.image ?? (c.connector !== undefined ? this.options.builtinImage(c.connector) : undefined);
    if (!image) throw ConnectorError.of({ kind: 'not_started' }, `${run.role} is a command, not an image: use the local launcher`, run.role);
    // The image id: what ran, whatever the tag points at by the time anyone asks.
    const imageId = await ensureImage(this.docker, run, image);
    const dir = await makeRunDir(tmpdir(), run.runId);
    const name = `tidepool-${run.runId.replace(/[^a-zA-Z0-9_.-]/g, '-').slice(0, 100)}`;
    let args: string[];
    try {
      const fileArgs = await writeRunFiles(dir, run, (file) => `/config/${file}`);
      // The directory stays 0700; only the container's user may read it.
      if (process.getuid?.() === 0) {
        await chown(dir, this.uid, this.uid);
        for (const f of ['config', 'catalog', 'state']) await chown(join(dir, `${f}.json`), this.uid, this.uid).catch(() => undefined);
      }
      args = [
        'run', '-i', '--rm', '--name', name,
        '--network', 'host',
        '--user', `${this.uid}:${this.uid}`,
        '--read-only', '--tmpfs', '/tmp',
        '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges',
        ...(this.options.memory ? ['--memory', this.options.memory] : []),
        '--label', 'tidepool.io/component=connector',
        '-v', `${dir}:/config:ro`,
        ...Object.entries(plainEnv(c)).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
        // After `--`, the image is never read as an option, whatever the store says it is (the
        // connection schema refuses such names too; docker's flag parser honours `--`).
        '--', image, run.command, ...fileArgs,
      ];
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    // `docker run -i` relays the container's stdio through the CLI's pipes: the same large
    // buffers as a local connector's, so the record path reads and writes it the same way.
    const child = spawnWithLargeStdio(this.docker, args, {});
    child.stdin.on('error', () => undefined);
    // docker run exits with the container's code; 125-127 are docker's own failures.
    // docker run exits with the container's code; 125 is docker's own failure (the daemon, a
    // flag), 126 and 127 mean the image's entrypoint cannot be run or is not there: a broken
    // image, which no retry fixes.
    const ran = imageId ? { image: imageId } : {};
    const exit = exitThenRemove(child, dir, this.docker, (code, signal) => {
      if (code === 126 || code === 127) return { code, signal, reason: `the image's entrypoint ${code === 127 ? 'was not found' : 'cannot be run'} (docker run exit ${code})`, notStarted: true };
      return code === 125 ? { code, signal, reason: 'docker run failed (exit 125)' } : { code, signal, ...ran };
    });
    let killed = false;
    return {
      stdin: child.stdin,
      stdout: child.stdout,
      stderr: child.stderr,
      exit,
      kill: (signal: NodeJS.Signals = 'SIGKILL') => {
        if (killed || child.exitCode !== null) return;
        killed = true;
        // Killing the CLI does not stop the container: ask the engine.
        void exec(this.docker, ['kill', '--signal', signal, name]).catch(() => undefined);
      },
    };
  }
}
