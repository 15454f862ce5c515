// `tidepool connectors list|spec`: the reference connectors, and what any connector takes.
import { BUILTIN_CONNECTORS, BUILTIN_CONNECTOR_SUMMARIES, type ConnectorDefinition } from '../../shared/connections.js';
import { destinationSyncModes } from '../../shared/connector-spec.js';
import type { ConnectorSpecification } from '../../shared/protocol.js';
import { CONFIG_OPTION, EXIT, UsageError, cliLogger, config, openStore, parse, run, stdio, table, type Io } from '../common.js';
import { lookUpSpec, specOfImage } from '../connector-specs.js';

const USAGE = `usage: tidepool connectors <command> [--json] [--config FILE]

  list                    the reference connectors shipped with tidepool
  spec <connector>        the settings a connector takes, from its own spec: a reference
                          connector by name, or any program by path (e.g.
                          /opt/venvs/source-faker/bin/source-faker); --json prints the SPEC
  spec --image IMAGE      the same for a connector image, run here with docker`;

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: Io = stdio): Promise<number> {
  return run(io, USAGE, async () => {
    const { values, positionals } = parse(argv, { ...CONFIG_OPTION, json: { type: 'boolean' }, image: { type: 'string' } }, true);
    const [command, ...rest] = positionals;
    if (values.help || command === undefined) {
      io.out(USAGE);
      return values.help ? 0 : EXIT.usage;
    }
    if (command === 'list') {
      if (rest.length > 0) throw new UsageError('list takes no arguments');
      const rows = BUILTIN_CONNECTORS.map((name) => ({ name, role: name.startsWith('source-') ? 'source' : 'destination', summary: BUILTIN_CONNECTOR_SUMMARIES[name] }));
      io.out(values.json ? JSON.stringify(rows) : table([['NAME', 'ROLE', 'WHAT IT DOES'], ...rows.map((r) => [r.name, r.role, r.summary])]));
      return 0;
    }
    if (command !== 'spec') throw new UsageError(`unknown command "${command}"`);
    if (rest.length !== (values.image === undefined ? 1 : 0)) throw new UsageError('spec needs one connector: a reference connector name, a program path, or --image IMAGE');
    const name = values.image ?? rest[0]!;
    const builtin = (BUILTIN_CONNECTORS as readonly string[]).includes(name);
    if (values.image === undefined && !builtin && !name.includes('/')) {
      throw new UsageError(`"${name}" is not a reference connector (${BUILTIN_CONNECTORS.join(', ')}); give a program by its path, e.g. ./${name}, or an image with --image`);
    }
    const definition: ConnectorDefinition = values.image !== undefined ? { image: name, config: {} } : builtin ? { connector: name, config: {} } : { command: [name], config: {} };
    const role = name.includes('destination') ? 'destination' : 'source';
    const cfg = config(env, values.config);
    const logger = cliLogger(cfg);
    const { store, close } = openStore(cfg, logger);
    try {
      // An image asked for by name is run here (lookUpSpec only reads the cache for images:
      // apply must not pull what a cluster will run).
      const { spec, note } = values.image !== undefined ? await specOfImage(definition, role, store, cfg, logger) : await lookUpSpec(definition, role, store, cfg, logger);
      if (!spec) {
        io.err(`error: ${note ?? 'no spec'}`);
        return EXIT.failed;
      }
      io.out(values.json ? JSON.stringify(spec) : describeSpec(name, spec));
      return 0;
    } finally {
      await close();
    }
  });
}

/** One row per setting (nested objects as dotted names), then the sync modes of a destination. */
export function describeSpec(name: string, spec: ConnectorSpecification): string {
  const rows = settingRows(spec.connectionSpecification, '');
  const lines = [`${name}${spec.documentationUrl ? ` — ${spec.documentationUrl}` : ''}`, ''];
  lines.push(rows.length > 0 ? table([['SETTING', 'TYPE', 'REQUIRED', 'DEFAULT', 'DESCRIPTION'], ...rows]) : '(no settings)');
  if (spec.supported_destination_sync_modes !== undefined || spec.supportsIncremental !== undefined || name.includes('destination')) {
    lines.push('', `destination sync modes: ${destinationSyncModes(spec).join(', ')}`);
  }
  return lines.join('\n');
}

/** Rows of settings; descriptions are cut at `maxDescription` characters (a terminal's line). */
export function settingRows(schema: unknown, prefix: string, depth = 0, maxDescription = 100): string[][] {
  if (!schema || typeof schema !== 'object' || depth > 4) return [];
  const s = schema as { properties?: Record<string, unknown>; required?: string[] };
  const required = new Set(Array.isArray(s.required) ? s.required : []);
  return Object.entries(s.properties ?? {}).flatMap(([key, value]) => {
    const p = (value ?? {}) as Record<string, unknown>;
    const type = [Array.isArray(p.type) ? p.type.join('|') : typeof p.type === 'string' ? p.type : p.enum ? 'enum' : p.oneOf ? 'one of' : '', p.airbyte_secret === true ? 'secret' : '']
      .filter(Boolean)
      .join(', ');
    const description = [
      typeof p.description === 'string' ? p.description.replace(/\s+/g, ' ').trim() : typeof p.title === 'string' ? p.title : '',
      Array.isArray(p.enum) ? `(${p.enum.map((v) => JSON.stringify(v)).join(', ')})` : '',
    ]
      .filter(Boolean)
      .join(' ');
    const row = [`${prefix}${key}`, type || '-', required.has(key) ? 'yes' : '', p.default === undefined ? '' : JSON.stringify(p.default), description.length > maxDescription ? `${description.slice(0, maxDescription - 3)}...` : description];
    return [row, ...(p.properties ? settingRows(p, `${prefix}${key}.`, depth + 1, maxDescription) : [])];
  });
}
