// `tidepool dlq list|show|replay|purge`: the dead-letter queue for operators. The work is done by
// shared/broker/dead-letters.ts (which the dashboard uses too); this file parses, prints and maps
// outcomes to exit codes.
import { createInterface } from 'node:readline/promises';
import type { ChannelModel } from 'amqplib';
import { connectBroker } from '../../shared/broker/connection.js';
import { tlsFiles } from '../../shared/tls.js';
import {
  DeadQueueMissingError,
  deadQueueWarnings,
  getDeadLetter,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
  type DeadLetterDetail,
  type DeadLetterFilter,
} from '../../shared/broker/dead-letters.js';
import { isStderrHeader } from '../../shared/broker/envelope.js';
import { idProblem } from '../../shared/ids.js';
import { topologyFor, type Topology } from '../../shared/broker/topology.js';
import { parseDuration } from '../../shared/units.js';
import { CONFIG_OPTION, EXIT, UsageError, cliLogger, config, parse, printable, run, stdio, table, type Io } from '../common.js';

const USAGE = `usage: tidepool dlq <command> [options] [--config FILE]

The dead-letter queue (<prefix>.dead-letters): syncs that failed for good, or that the broker gave up on.

  list [--connection ID] [--limit N] [--json]
        dead letters, newest failure first (default limit 100): sync id, connection, reason,
        origin/type, attempts, first and last failure, runner, times replayed
  show <syncId> [--json]
        one letter in full: body, every header, the connectors' stderr tails (exit 3: not there)
  replay <syncId>... [--json]
  replay --all [--connection ID] [--json]
        republish to the syncs queue with the attempt reset to 1 and the failure headers removed;
        x-tidepool-replayed counts replays. Each letter is removed only once the broker confirmed
        its republish. Letters whose body is not a sync request are left (exit 1).
  purge [--older-than D] [--connection ID] [--yes] [--json]
        remove letters (all, or those whose last failure is older than D, e.g. 7d, 12h). Asks on
        the terminal first; without a terminal, --yes is required.

Reading never removes a letter, and commands work while runners run: letters are held unacked on
their own channel and given back (a crash gives them back too). Two dlq commands at once lose
nothing, but one may see fewer letters while the other holds them.`;

/** Io plus a way to ask the operator a question; without `ask` there is no one to ask. */
export interface DlqIo extends Io {
  ask?: (question: string) => Promise<string>;
}

function defaultIo(): DlqIo {
  if (!process.stdin.isTTY) return stdio;
  return {
    ...stdio,
    ask: async (question) => {
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
  };
}

const OPTIONS = {
  ...CONFIG_OPTION,
  connection: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  all: { type: 'boolean' },
  'older-than': { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
} as const;

const ALLOWED: Record<string, readonly string[]> = {
  list: ['connection', 'limit', 'json'],
  show: ['json'],
  replay: ['all', 'connection', 'json'],
  purge: ['older-than', 'connection', 'yes', 'json'],
};

export async function main(argv: string[], env: NodeJS.ProcessEnv, io: DlqIo = defaultIo()): Promise<number> {
  return run(io, USAGE, async () => {
    const { values, positionals } = parse(argv, OPTIONS, true);
    const [command, ...rest] = positionals;
    if (values.help || command === undefined) {
      io.out(USAGE);
      return values.help ? 0 : EXIT.usage;
    }
    const allowed = ALLOWED[command];
    if (!allowed) throw new UsageError(`unknown command "${command}"`);
    for (const name of Object.keys(values)) {
      if (name !== 'config' && name !== 'help' && !allowed.includes(name)) throw new UsageError(`--${name} does not apply to dlq ${command}`);
    }

    let limit = 100;
    if (values.limit !== undefined) {
      limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new UsageError('--limit must be an integer from 1 to 100000');
    }
    let olderThanMs: number | undefined;
    if (values['older-than'] !== undefined) {
      olderThanMs = parseDuration(values['older-than']);
      if (olderThanMs === undefined) throw new UsageError(`--older-than: not a duration: ${values['older-than']} (e.g. 30m, 12h, 7d)`);
    }
    // Letter ids are not checked: a malformed message is listed under whatever its body says.
    const idError = values.connection === undefined ? undefined : idProblem('--connection', values.connection);
    if (idError !== undefined) throw new UsageError(idError);
    if (command === 'list' && rest.length > 0) throw new UsageError('list takes no arguments');
    if (command === 'purge' && rest.length > 0) throw new UsageError('purge takes no arguments (filter with --older-than and --connection)');
    if (command === 'show' && rest.length !== 1) throw new UsageError('show needs one sync id');
    if (command === 'replay') {
      if (values.all && rest.length > 0) throw new UsageError('replay takes sync ids or --all, not both');
      if (!values.all && rest.length === 0) throw new UsageError('replay needs sync ids, or --all');
      if (values.connection !== undefined && !values.all) throw new UsageError('--connection goes with replay --all');
    }
    // Decided before anything is opened: a purge nobody can confirm is refused, not guessed.
    if (command === 'purge' && !values.yes && !io.ask) {
      throw new UsageError('purge removes dead letters for good and there is no terminal to confirm on: pass --yes');
    }

    const cfg = config(env, values.config);
    const logger = cliLogger(cfg);
    const topology = topologyFor(cfg.prefix, cfg);
    const connection = await connectBroker({ url: cfg.amqpUrl, tls: tlsFiles(cfg, 'amqp'), logger, timeoutMs: 10_000, connectionName: `tidepool-dlq-${command}` });
    try {
      const filter: DeadLetterFilter = {
        ...(values.connection !== undefined ? { connectionId: values.connection } : {}),
        ...(olderThanMs !== undefined ? { olderThanMs } : {}),
      };
      switch (command) {
        case 'list':
          return await list(io, connection, topology, filter, limit, values.json ?? false);
        case 'show':
          return await show(io, connection, topology, rest[0]!, values.json ?? false);
        case 'replay':
          return await replay(io, connection, topology, values.all ? { all: true, ...filter } : { ids: rest }, values.json ?? false);
        default:
          return await purge(io, connection, topology, filter, values['older-than'], values.yes ?? false, values.json ?? false);
      }
    } catch (err) {
      if (err instanceof DeadQueueMissingError) {
        io.err(`error: ${err.message}`);
        return EXIT.notFound;
      }
      throw err;
    } finally {
      await connection.close().catch(() => undefined);
    }
  });
}

async function list(io: Io, connection: ChannelModel, topology: Topology, filter: DeadLetterFilter, limit: number, json: boolean): Promise<number> {
  const listing = await listDeadLetters(connection, topology, { ...filter, limit });
  for (const w of listing.warnings) io.err(`warning: ${w}`);
  if (json) {
    io.out(JSON.stringify(listing.letters));
    return 0;
  }
  if (listing.letters.length === 0) {
    io.out(`no dead letters${filter.connectionId !== undefined ? ` for connection ${filter.connectionId}` : ''} in ${topology.deadQueue}`);
    return 0;
  }
  io.out(
    table([
      ['SYNC', 'CONNECTION', 'REASON', 'ORIGIN/TYPE', 'ATTEMPTS', 'FIRST FAILURE', 'LAST FAILURE', 'RUNNER', 'REPLAYED'],
      ...listing.letters.map((l) => [
        l.id,
        l.connectionId ?? '-',
        clip(l.reason, 60),
        `${l.origin ?? '-'}/${l.type ?? '-'}`,
        l.attempts === undefined ? '-' : String(l.attempts),
        when(l.firstFailureAt),
        when(l.lastFailureAt),
        l.runner ?? '-',
        String(l.replayed),
      ]),
    ]),
  );
  if (listing.matched > listing.letters.length) io.out(`(${listing.letters.length} of ${listing.matched}; --limit shows more)`);
  return 0;
}

async function show(io: Io, connection: ChannelModel, topology: Topology, id: string, json: boolean): Promise<number> {
  const letter = await getDeadLetter(connection, topology, id);
  if (!letter) {
    io.err(`error: no dead letter "${id}" in ${topology.deadQueue} (see: tidepool dlq list)`);
    return EXIT.notFound;
  }
  for (const w of await deadQueueWarnings(connection, topology)) io.err(`warning: ${w}`);
  io.out(json ? JSON.stringify(letter) : formatLetter(letter));
  return 0;
}

export function formatLetter(l: DeadLetterDetail): string {
  const idNote = {
    body: '',
    header: '  (id from the x-tidepool-sync-id header: the body has no sync id)',
    'message-id': '  (id from the message id: the body has no sync id)',
    'body-hash': '  (id is a hash of the body: no sync id, no message id)',
  }[l.idFrom];
  const out = [
    `dead letter ${l.id}${idNote}`,
    `  connection     ${l.connectionId ?? '-'}`,
    `  reason         ${l.reason}`,
    `  origin/type    ${l.origin ?? '-'}/${l.type ?? '-'}  (dead-lettered by ${l.deadLetteredBy})`,
    `  attempts       ${l.attempts ?? '-'}${l.retryable === true ? ' (retryable failure: out of attempts)' : l.retryable === false ? ' (permanent failure)' : ''}`,
    `  first failure  ${l.firstFailureAt ?? '-'}`,
    `  last failure   ${l.lastFailureAt ?? '-'}`,
    `  runner         ${l.runner ?? '-'}`,
    `  replayed       ${l.replayed} time(s)${l.replayedAt ? `, last at ${l.replayedAt}` : ''}`,
    `  replayable     ${l.replayable ? 'yes' : `no: ${l.problem ?? ''}`}`,
    `properties:`,
    ...Object.entries(l.properties).map(([k, v]) => `  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`),
    `headers:`,
  ];
  for (const [k, v] of Object.entries(l.headers)) {
    out.push(`  ${k}: ${isStderrHeader(k) ? '(below)' : typeof v === 'string' ? v : JSON.stringify(v)}`);
  }
  out.push(`body${l.bodyBase64 !== undefined ? ' (not UTF-8; base64)' : ''}:`);
  out.push(...indent(l.bodyBase64 ?? prettyBody(l.body)));
  for (const who of ['source', 'destination'] as const) {
    const tail = l.stderr[who];
    out.push(`${who} stderr (last ${tail.length} line${tail.length === 1 ? '' : 's'}):`);
    out.push(...(tail.length > 0 ? tail.map((line) => `  ${line}`) : ['  (none)']));
  }
  // Each line printable: a header, body or stderr line cannot add lines of its own.
  return out.map(printable).join('\n');
}

async function replay(
  io: Io,
  connection: ChannelModel,
  topology: Topology,
  selector: { ids: string[] } | { all: true; connectionId?: string },
  json: boolean,
): Promise<number> {
  const result = await replayDeadLetters(connection, topology, selector);
  if (json) {
    io.out(JSON.stringify(result));
  } else {
    for (const r of result.replayed) io.out(printable(`replayed ${r.id}${r.connectionId !== undefined ? ` (connection ${r.connectionId})` : ''} to ${topology.exchange}/${topology.syncRoutingKey}, replay #${r.replayed}`));
    for (const s of result.skipped) io.err(printable(`skipped ${s.id}: ${s.reason} (replaying it would dead-letter it again; purge it instead)`));
    for (const f of result.failed) io.err(printable(`error: replaying ${f.id} failed: ${f.error}`));
    for (const id of result.notFound) io.err(printable(`error: no dead letter "${id}" in ${topology.deadQueue} (see: tidepool dlq list)`));
    if ('all' in selector && result.replayed.length + result.skipped.length + result.failed.length === 0) io.out('nothing to replay');
  }
  if (result.failed.length > 0 || result.skipped.length > 0) return EXIT.failed;
  if (result.notFound.length > 0) return EXIT.notFound;
  return 0;
}

async function purge(
  io: DlqIo,
  connection: ChannelModel,
  topology: Topology,
  filter: DeadLetterFilter,
  olderThan: string | undefined,
  yes: boolean,
  json: boolean,
): Promise<number> {
  const described = describeFilter(filter.connectionId, olderThan);
  const ask = io.ask;
  const result = await purgeDeadLetters(
    connection,
    topology,
    filter,
    yes || !ask
      ? undefined
      : async (letters) => {
          const answer = await ask(`purge ${letters.length} dead letter${letters.length === 1 ? '' : 's'} from ${topology.deadQueue}${described}? This cannot be undone. [y/N] `);
          return /^y(es)?$/i.test(answer.trim());
        },
  );
  if (json) {
    io.out(JSON.stringify({ purged: result.purged.map((l) => l.id), matched: result.matched, confirmed: result.confirmed }));
  } else if (!result.confirmed) {
    io.out('nothing purged');
  } else {
    io.out(result.matched === 0 ? `no dead letters to purge${described}` : `purged ${result.purged.length} dead letter${result.purged.length === 1 ? '' : 's'}`);
  }
  return 0;
}

function describeFilter(connectionId: string | undefined, olderThan: string | undefined): string {
  const parts = [
    ...(connectionId !== undefined ? [`of connection ${connectionId}`] : []),
    ...(olderThan !== undefined ? [`whose last failure is older than ${olderThan}`] : []),
  ];
  return parts.length > 0 ? ` ${parts.join(' and ')}` : '';
}

function when(iso: string | undefined): string {
  return iso === undefined ? '-' : iso.replace(/\.\d{3}Z$/, 'Z');
}

function clip(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ');
  return one.length <= n ? one : `${one.slice(0, n - 1)}…`;
}

function prettyBody(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

function indent(text: string): string[] {
  return text.split('\n').map((l) => `  ${l}`);
}
