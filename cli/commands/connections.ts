// `tidepool connections apply|list|show|check|history|rollback|pause|resume|delete`.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { ConnectionFileError, parseConnectionFile, type Connection } from '../../shared/connections.js';
import type { Config } from '../../shared/config.js';
import { idProblem } from '../../shared/ids.js';
import { redactSpecSecrets, specSecretValues } from '../../shared/connector-spec.js';
import type { Logger } from '../../shared/logger.js';
import { redactObject, redactText, secretValues } from '../../shared/redact.js';
import type { Store } from '../../shared/store/index.js';
import { checkConnector, definitionHash } from '../../runner/sync/check.js';
import { connectorFingerprint } from '../../runner/sync/spec.js';
import { allowListed } from '../../runner/launch/allow-list.js';
import { hostConnectorLauncher } from '../../runner/launch/launchers.js';
import { resolveSecretRefs } from '../../runner/secrets/resolve.js';
import { secretSourceFor } from '../../runner/secrets/sources.js';
import { CONFIG_OPTION, EXIT, UsageError, cliLogger, config, openStore, parse, run, stdio, table, type Io } from '../common.js';
import { reviewConnection } from '../connector-specs.js';

const USAGE = `usage: tidepool connections <command> [--config FILE]

  apply -f FILE [--json]   create or update the connections in FILE (YAML or JSON: one
                           connection, a list, or {connections: [...]}); "-" reads stdin.
                           Each config is checked against its connector's spec first (the
                           connector runs \`spec\` here when it can); any error applies nothing
                           (exit 78)
  list [--json]            every connection
  show <id> [--json]       one connection (secrets redacted), its committed state and last run
  check <id> [--json]      run \`check\` on both connectors now, here, and print the verdicts
                           (exit 0 when both succeed)
  history <id> [--json]    every version the connection has had (newest first): when it was
                           applied, and which connector programs and images it named
  rollback <id> [--to N]   bring back version N (default: the one before the current) as a
                           new version; image digests come back with it
  pause <id>               stop publishing the connection's scheduled syncs: its slots are
                           recorded as skipped (paused) until resume; kept across applies
  resume <id>              publish its scheduled syncs again from the next slot on
  delete <id> [--json]     remove the connection with its catalog, checks, history, committed
                           state and schedule; refused (exit 1) while a sync of it runs. Its
                           run records stay until they expire; a sync of it still queued is
                           dead-lettered (unknown connection)`;

export async function readConnectionsFile(path: string): Promise<Connection[]> {
  let text: string;
  try {
    text = path === '-' ? await readStdin() : await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new UsageError(`${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  try {
    return parseConnectionFile(doc);
  } catch (err) {
    if (err instanceof ConnectionFileError) throw new UsageError(`${path} is not a valid connection file:\n${err.issues.map((i) => `  ${i}`).join('\n')}`);
    throw err;
  }
}

async function deleteConnection(id: string, store: Store, io: Io, json: boolean): Promise<number> {
  const result = await store.connections.delete(id);
  if (json) io.out(JSON.stringify({ id, result }));
  if (result === 'not-found') {
    if (!json) io.err(`error: unknown connection "${id}"`);
    return EXIT.notFound;
  }
  if (result === 'running') {
    const [last] = await store.runs.list({ connectionId: id, limit: 1 });
    const running = last && last.status === 'running' ? ` (sync ${last.syncId})` : '';
    if (!json) io.err(`error: a sync of connection "${id}" is running${running}: nothing deleted; cancel it (tidepool cancel) or wait, then delete again`);
    return EXIT.failed;
  }
  if (!json) io.out(`connection ${id} deleted`);
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function describeConnector(c: Connection['source']): string {
  return c.connector ?? c.image ?? c.command?.join(' ') ?? '?';
}

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values, positionals } = parse(argv, { ...CONFIG_OPTION, file: { type: 'string', short: 'f' }, json: { type: 'boolean' }, to: { type: 'string' } }, true);
    const [command, ...rest] = positionals;
    if (values.help || command === undefined) {
      io.out(USAGE);
      return values.help ? 0 : EXIT.usage;
    }
    if (!['apply', 'list', 'show', 'check', 'history', 'rollback', 'pause', 'resume', 'delete'].includes(command)) throw new UsageError(`unknown command "${command}"`);
    let toApply: Connection[] = [];
    if (command === 'apply') {
      if (!values.file) throw new UsageError('apply needs -f FILE');
      toApply = await readConnectionsFile(values.file);
    }
    if (['show', 'check', 'history', 'rollback', 'pause', 'resume', 'delete'].includes(command) && rest.length !== 1) throw new UsageError(`${command} needs one connection id`);
    const to = values.to === undefined ? undefined : Number(values.to);
    if (to !== undefined && (!Number.isInteger(to) || to < 1)) throw new UsageError(`--to: not a version number: ${values.to ?? ''}`);
    if (to !== undefined && command !== 'rollback') throw new UsageError('--to goes with rollback');
    const cfg = config(env, values.config);
    const logger = cliLogger(cfg);
    const { store, close } = openStore(cfg, logger);
    try {
      if (command === 'apply') {
        // All reviewed before any is stored: a file with one bad connection changes nothing.
        const reviews = await Promise.all(toApply.map(async (c) => ({ id: c.id, ...(await reviewConnection(c, store, cfg, logger)) })));
        for (const r of reviews) for (const w of r.warnings) io.err(`warning: connection "${r.id}": ${w}`);
        const bad = reviews.filter((r) => r.errors.length > 0);
        if (bad.length > 0) {
          io.err(bad.flatMap((r) => r.errors.map((e) => `error: connection "${r.id}": ${e}`)).join('\n'));
          io.err(`nothing applied: ${bad.length} of ${reviews.length} connection(s) invalid`);
          return EXIT.config;
        }
        const results = [];
        for (const r of reviews) results.push({ id: r.id, ...(await store.connections.applyVersioned(r.connection)), warnings: r.warnings });
        io.out(values.json ? JSON.stringify(results) : results.map((r) => `connection ${r.id} ${r.result}${r.version > 0 ? ` (version ${r.version})` : ''}`).join('\n'));
        return 0;
      }
      if (command === 'history') return await showHistory(rest[0]!, store, io, values.json ?? false);
      if (command === 'rollback') return await rollback(rest[0]!, to, store, io, values.json ?? false);
      if (command === 'pause' || command === 'resume') return await setPaused(rest[0]!, command === 'pause', store, io, values.json ?? false);
      if (command === 'delete') return await deleteConnection(rest[0]!, store, io, values.json ?? false);
      if (command === 'check') return await checkNow(rest[0]!, store, cfg, logger, io, values.json ?? false);
      if (command === 'list') {
        const list = await store.connections.list();
        if (values.json) {
          io.out(JSON.stringify(await Promise.all(list.map((c) => redactConnection(c, store)))));
        } else if (list.length === 0) {
          io.out('no connections (add some with: tidepool connections apply -f FILE)');
        } else {
          io.out(table([['ID', 'SOURCE', 'DESTINATION', 'STREAMS'], ...list.map((c) => redactObject(c)).map((c) => [c.id, describeConnector(c.source), describeConnector(c.destination), c.streams ? c.streams.map((s) => s.name).join(',') : '(all)'])]));
        }
        return 0;
      }
      const id = rest[0]!;
      const connection = await store.connections.get(id);
      if (!connection) {
        io.err(`error: unknown connection "${id}"`);
        return EXIT.notFound;
      }
      const [state, lastRun, version] = await Promise.all([store.state.get(id), store.runs.list({ connectionId: id, limit: 1 }), store.connections.version(id)]);
      const shown = { connection: await redactConnection(connection, store), version, state: state ?? null, lastRun: lastRun[0] ?? null };
      // What the plain form prints comes from the redacted connection too (a command's arguments may hold a password).
      const { source, destination } = shown.connection;
      if (values.json) {
        io.out(JSON.stringify(shown));
      } else {
        io.out(
          [
            `connection ${id}${connection.description ? ` — ${connection.description}` : ''}${version > 0 ? ` (version ${version})` : ''}`,
            `  source:      ${describeConnector(source)}`,
            `  destination: ${describeConnector(destination)}`,
            `  state:       ${state ? `v${state.version} from sync ${state.syncId} at ${state.updatedAt}: ${JSON.stringify(state.state)}` : 'none'}`,
            `  last run:    ${lastRun[0] ? `${lastRun[0].status} (${lastRun[0].syncId}, ${lastRun[0].records} records)` : 'none'}`,
          ].join('\n'),
        );
      }
      return 0;
    } finally {
      await close();
    }
  });
}

/** Secrets out: by their names, and by the connectors' specs (`airbyte_secret`) where cached. */
async function redactConnection(connection: Connection, store: Store): Promise<Connection> {
  const roles = ['source', 'destination'] as const;
  const specs = await Promise.all(roles.map(async (role) => (await store.specs.get(await connectorFingerprint(connection[role])))?.spec ?? undefined));
  // The specs' secrets join the names' before anything is shown: a spec secret repeated under
  // another name (inside a DSN, say) goes too.
  const secrets = secretValues(connection);
  roles.forEach((role, i) => specSecretValues(connection[role].config, specs[i], secrets));
  const shown = redactObject(connection, secrets);
  roles.forEach((role, i) => (shown[role] = { ...shown[role], config: redactSpecSecrets(shown[role].config, specs[i]) }));
  return shown;
}

/** `connections check`: both checks at once, on this host; a success is remembered as the runner's own would be. */
async function checkNow(id: string, store: Store, cfg: Config, logger: Logger, io: Io, json: boolean): Promise<number> {
  const connection = await store.connections.get(id);
  if (!connection) {
    io.err(`error: unknown connection "${id}"`);
    return EXIT.notFound;
  }
  // The definitions come from the store: checked against the allow-list as a runner's are.
  const deps = { launcher: allowListed(hostConnectorLauncher(cfg), cfg), logger, maxLineBytes: cfg.maxLineBytes, tailLines: cfg.stderrTailLines };
  const secrets = secretValues(connection);
  // References resolved as a runner would (this host's secretsDir, or the cluster's Secrets).
  const resolved = await resolveSecretRefs(connection, secretSourceFor(cfg), secrets).catch((err: unknown) => err as Error);
  const verdicts = await Promise.all(
    (['source', 'destination'] as const).map(async (role) => {
      const definition = connection[role];
      try {
        if (resolved instanceof Error) throw resolved;
        const cached = await store.specs.get(await connectorFingerprint(definition));
        specSecretValues(definition.config, cached?.spec ?? undefined, secrets);
        // The runner's own reading of a check, so that this says what a sync would conclude.
        const v = await checkConnector(resolved[role], role, `cli-${process.pid}`, secrets, deps);
        if (v.verdict === 'succeeded') {
          await store.connections.putChecked(connection.id, role, definitionHash(definition));
          return { role, status: 'SUCCEEDED', message: '' };
        }
        return v.verdict === 'failed' ? { role, status: 'FAILED', message: v.message } : { role, status: 'NO VERDICT', message: redactText(v.why, secrets) };
      } catch (err) {
        return { role, status: 'FAILED', message: redactText((err as Error).message, secrets) };
      }
    }),
  );
  if (json) io.out(JSON.stringify(verdicts));
  else io.out(table([['CONNECTOR', 'VERDICT', 'MESSAGE'], ...verdicts.map((v) => [v.role, v.status, v.message])]));
  return verdicts.every((v) => v.status === 'SUCCEEDED') ? 0 : EXIT.failed;
}

function describeDefinition(d: Connection['source']): string {
  const what = describeConnector(d);
  return d.version !== undefined ? `${what} (version ${d.version})` : what;
}

/** `connections pause|resume`: the pause lives beside the definition, so an apply keeps it. */
async function setPaused(id: string, paused: boolean, store: Store, io: Io, json: boolean): Promise<number> {
  const problem = idProblem('connection id', id);
  if (problem !== undefined) throw new UsageError(problem);
  const connection = await store.connections.get(id);
  if (!connection) {
    io.err(`error: unknown connection "${id}"`);
    return EXIT.notFound;
  }
  await store.schedules.setPaused(id, paused);
  const note = connection.schedule ? '' : ' (it has no schedule: this takes effect once it has one)';
  io.out(json ? JSON.stringify({ id, paused, scheduled: connection.schedule !== undefined }) : `connection ${id} ${paused ? 'paused' : 'resumed'}${note}`);
  return 0;
}

async function showHistory(id: string, store: Store, io: Io, json: boolean): Promise<number> {
  const versions = await store.connections.history(id);
  if (versions.length === 0) {
    io.err(`error: no history for connection "${id}" (unknown, or not applied since versions were kept)`);
    return EXIT.notFound;
  }
  if (json) {
    io.out(JSON.stringify(await Promise.all(versions.map(async (v) => ({ ...v, connection: await redactConnection(v.connection, store) })))));
    return 0;
  }
  const current = versions[0]!.version;
  io.out(
    table([
      ['VERSION', 'APPLIED', 'SOURCE', 'DESTINATION'],
      ...versions.map((v) => [`${v.version}${v.version === current ? ' (current)' : ''}`, v.appliedAt ?? 'before history', describeDefinition(v.connection.source), describeDefinition(v.connection.destination)]),
    ]),
  );
  return 0;
}

async function rollback(id: string, to: number | undefined, store: Store, io: Io, json: boolean): Promise<number> {
  const versions = await store.connections.history(id);
  if (versions.length === 0) {
    io.err(`error: no history for connection "${id}"`);
    return EXIT.notFound;
  }
  const current = versions[0]!;
  const target = to === undefined ? versions[1] : versions.find((v) => v.version === to);
  if (!target) {
    io.err(to === undefined ? `error: connection "${id}" has only one version` : `error: connection "${id}" has no version ${to} (kept: ${versions.map((v) => v.version).join(', ')})`);
    return EXIT.notFound;
  }
  const { result, version } = await store.connections.applyVersioned(target.connection);
  const summary = { id, from: current.version, to: target.version, result, version };
  io.out(
    json
      ? JSON.stringify(summary)
      : result === 'unchanged'
        ? `connection ${id} is already as version ${target.version} had it (version ${version})`
        : `connection ${id} rolled back to version ${target.version}'s definition, now version ${version}`,
  );
  return 0;
}
