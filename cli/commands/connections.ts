// `tidepool connections apply|list|show`.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { connectionFileSchema, type Connection } from '../../shared/connections.js';
import { redactObject } from '../../shared/redact.js';
import { CONFIG_OPTION, EXIT, UsageError, cliLogger, config, openStore, parse, run, stdio, table, type Io } from '../common.js';

const USAGE = `usage: tidepool connections <command> [--config FILE]

  apply -f FILE [--json]   create or update the connections in FILE (YAML or JSON: one
                           connection, a list, or {connections: [...]}); "-" reads stdin
  list [--json]            every connection
  show <id> [--json]       one connection (secrets redacted), its committed state and last run`;

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
  const parsed = connectionFileSchema.safeParse(doc);
  if (!parsed.success) throw new UsageError(`${path} is not a valid connection file:\n${z.prettifyError(parsed.error)}`);
  const ids = parsed.data.map((c) => c.id);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw new UsageError(`${path}: connection "${dup}" is defined twice`);
  return parsed.data;
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
    const { values, positionals } = parse(argv, { ...CONFIG_OPTION, file: { type: 'string', short: 'f' }, json: { type: 'boolean' } }, true);
    const [command, ...rest] = positionals;
    if (values.help || command === undefined) {
      io.out(USAGE);
      return values.help ? 0 : EXIT.usage;
    }
    if (!['apply', 'list', 'show'].includes(command)) throw new UsageError(`unknown command "${command}"`);
    let toApply: Connection[] = [];
    if (command === 'apply') {
      if (!values.file) throw new UsageError('apply needs -f FILE');
      toApply = await readConnectionsFile(values.file);
    }
    if (command === 'show' && rest.length !== 1) throw new UsageError('show needs one connection id');
    const cfg = config(env, values.config);
    const { store, close } = openStore(cfg, cliLogger(cfg));
    try {
      if (command === 'apply') {
        const results = [];
        for (const c of toApply) results.push({ id: c.id, result: await store.connections.apply(c) });
        io.out(values.json ? JSON.stringify(results) : results.map((r) => `connection ${r.id} ${r.result}`).join('\n'));
        return 0;
      }
      if (command === 'list') {
        const list = await store.connections.list();
        if (values.json) {
          io.out(JSON.stringify(list.map((c) => redactObject(c))));
        } else if (list.length === 0) {
          io.out('no connections (add some with: tidepool connections apply -f FILE)');
        } else {
          io.out(table([['ID', 'SOURCE', 'DESTINATION', 'STREAMS'], ...list.map((c) => [c.id, describeConnector(c.source), describeConnector(c.destination), c.streams ? c.streams.map((s) => s.name).join(',') : '(all)'])]));
        }
        return 0;
      }
      const id = rest[0]!;
      const connection = await store.connections.get(id);
      if (!connection) {
        io.err(`error: unknown connection "${id}"`);
        return EXIT.notFound;
      }
      const [state, lastRun] = await Promise.all([store.state.get(id), store.runs.list({ connectionId: id, limit: 1 })]);
      const shown = { connection: redactObject(connection), state: state ?? null, lastRun: lastRun[0] ?? null };
      if (values.json) {
        io.out(JSON.stringify(shown));
      } else {
        io.out(
          [
            `connection ${id}${connection.description ? ` — ${connection.description}` : ''}`,
            `  source:      ${describeConnector(connection.source)}`,
            `  destination: ${describeConnector(connection.destination)}`,
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
