// The connector allow-list (TIDEPOOL_ALLOWED_CONNECTORS): a connection in the store names what the
// runner executes, and the store is not a trust boundary (anyone who can write Redis can write a
// connection). So a launch runs only a reference connector, a program the operator allowed by
// path or directory, or an image the operator allowed by repository or digest. AllowListLauncher
// wraps every launcher the runner has (launchers.ts), so that no launch skips the check.
import { realpath } from 'node:fs/promises';
import { resolve, sep } from 'node:path';
import { IMAGE_REFERENCE, parseAllowedConnectors, type AllowedConnector, type Config } from '../../shared/config.js';
import { plainEnv, type ConnectorDefinition } from '../../shared/connections.js';
import { ConnectorError } from '../../shared/errors.js';
import type { ConnectorLauncher, ConnectorProcess, ConnectorRun } from '../../shared/ports/connector-launcher.js';
import { resolveProgram } from './program.js';

/**
 * What the allow-list says of a definition. `program`: the absolute path the command resolved to,
 * to launch exactly what was judged. `missing`: the program is not there (why), and its path is
 * not refused by itself.
 */
export type Judgement = { allowed: true; program?: string } | { allowed: false; refusal: string } | { allowed: false; missing: string };

export class ConnectorAllowList {
  private readonly entries: AllowedConnector[];

  constructor(setting: string) {
    this.entries = parseAllowedConnectors(setting);
  }

  static of(config: Pick<Config, 'allowedConnectors'>): ConnectorAllowList {
    return new ConnectorAllowList(config.allowedConnectors);
  }

  async judge(definition: ConnectorDefinition, role: 'source' | 'destination'): Promise<Judgement> {
    // The project's own programs and images, chosen by name from a fixed list.
    if (definition.connector !== undefined) return { allowed: true };
    if (definition.image !== undefined) {
      return this.imageAllowed(definition.image) ? { allowed: true } : { allowed: false, refusal: refusal(role, `image ${definition.image}`) };
    }
    const file = definition.command?.[0];
    if (file === undefined) return { allowed: false, refusal: refusal(role, 'a definition with no connector, command or image') };
    // Resolved as the local launcher resolves it (the connector's PATH, the runner's working
    // directory), so that what is judged is what would run: a bare name found in PATH, a
    // relative path made absolute, `..` and symlinks resolved.
    const resolved = await resolveProgram(file, plainEnv(definition).PATH ?? process.env.PATH ?? '/usr/bin:/bin');
    if (resolved.ok) {
      return (await this.programAllowed(resolved.real)) ? { allowed: true, program: resolved.path } : { allowed: false, refusal: refusal(role, `command ${file}${resolved.real !== file ? ` (${resolved.real})` : ''}`) };
    }
    // Not there: a path still has to be one the list allows, or a file put there later would
    // be run; a bare name not found in PATH names nothing to judge.
    if (file.includes('/') && !(await this.programAllowed(resolve(file)))) return { allowed: false, refusal: refusal(role, `command ${file}`) };
    return { allowed: false, missing: resolved.problem };
  }

  private imageAllowed(image: string): boolean {
    const ref = IMAGE_REFERENCE.exec(image);
    if (!ref) return false;
    const repository = imageRepository(ref[1]!);
    return this.entries.some(
      (e) => (e.kind === 'repository' && imageRepository(e.repository) === repository) || (e.kind === 'digest' && imageRepository(e.repository) === repository && e.digest === ref[3]),
    );
  }

  /** `real`: the program's path with symlinks resolved; compared with the entries' own real paths. */
  private async programAllowed(real: string): Promise<boolean> {
    for (const e of this.entries) {
      if (e.kind !== 'program' && e.kind !== 'directory') continue;
      for (const path of await entryPaths(e.path)) {
        if (e.kind === 'program' ? real === path : real.startsWith(path.endsWith(sep) ? path : path + sep)) return true;
      }
    }
    return false;
  }
}

/** An entry as written (normalized) and, when it exists, with its symlinks resolved (/bin → /usr/bin). */
async function entryPaths(path: string): Promise<string[]> {
  const given = resolve(path);
  const real = await realpath(given).catch(() => given);
  return real === given ? [given] : [given, real];
}

function refusal(role: 'source' | 'destination', what: string): string {
  return `connector not allowed: ${role} ${what} is not in TIDEPOOL_ALLOWED_CONNECTORS (only the reference connectors and what it lists may run)`;
}

/** `registry:5000/team/app:1.2@sha256:…` → `registry:5000/team/app`; Docker Hub's implicit names made explicit (`app` → `docker.io/library/app`). */
export function imageRepository(image: string): string {
  let name = image.split('@')[0]!;
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > lastSlash) name = name.slice(0, colon);
  const first = name.split('/')[0]!;
  const hasRegistry = name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry) name = `docker.io/${name.includes('/') ? name : `library/${name}`}`;
  return name;
}

/**
 * A launcher that starts only what the allow-list allows. A refusal is permanent (not_started,
 * a config_error): the sync is dead-lettered at once, and nothing ran. A command is handed on as
 * the path it resolved to, so the launcher cannot find another program by the same name.
 */
export class AllowListLauncher implements ConnectorLauncher {
  constructor(
    private readonly inner: ConnectorLauncher,
    private readonly allowList: ConnectorAllowList,
  ) {}

  get kind(): string {
    return this.inner.kind;
  }

  async start(run: ConnectorRun): Promise<ConnectorProcess> {
    const judged = await this.allowList.judge(run.connector, run.role);
    if ('refusal' in judged) throw ConnectorError.of({ kind: 'not_started' }, judged.refusal, run.role);
    // The local launcher's own words for a program that is not there.
    if ('missing' in judged) throw ConnectorError.of({ kind: 'not_started' }, `${run.role} could not start: ${judged.missing}`, run.role);
    const command = run.connector.command;
    if (judged.program === undefined || command === undefined) return this.inner.start(run);
    return this.inner.start({ ...run, connector: { ...run.connector, command: [judged.program, ...command.slice(1)] } });
  }
}

/** `launcher`, checked against the configured allow-list before each start. */
export function allowListed(launcher: ConnectorLauncher, config: Pick<Config, 'allowedConnectors'>): ConnectorLauncher {
  return new AllowListLauncher(launcher, ConnectorAllowList.of(config));
}
