// Plumbing shared by the subcommands: argument parsing with --help, config loading, exit codes,
// and opening the services a command needs.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { ConfigError, loadConfig, type Config, type ConfigInput } from '../shared/config.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { connectBroker, openConfirmChannel } from '../shared/broker/connection.js';
import { topologyFor, type Topology } from '../shared/broker/topology.js';
import { createRedis } from '../shared/store/redis.js';
import { tlsFiles } from '../shared/tls.js';
import { createStore, type Store } from '../shared/store/index.js';

/** Exit codes a shell user can rely on. */
export const EXIT = {
  ok: 0,
  /** The thing asked for failed (a sync failed, a service unreachable). */
  failed: 1,
  /** Bad command line. */
  usage: 2,
  /** Not found (connection, run). */
  notFound: 3,
  /** Invalid configuration (sysexits EX_CONFIG). */
  config: 78,
} as const;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const stdio: Io = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
};

type Options = NonNullable<ParseArgsConfig['options']>;

export const CONFIG_OPTION = { config: { type: 'string', short: 'c' } } as const satisfies Options;

/** parseArgs that turns its errors into UsageError and always knows --help. */
export function parse<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function config(env: NodeJS.ProcessEnv, file: string | undefined, overrides: Partial<ConfigInput> = {}): Config {
  return loadConfig(env, file, overrides);
}

/** Logger for one-shot commands: warnings and errors only, on stderr, so stdout stays data. */
export function cliLogger(cfg: Pick<Config, 'logLevel'>): Logger {
  const level = cfg.logLevel === 'info' ? 'warn' : cfg.logLevel;
  return createLogger({ level, destination: 2 });
}

export interface Services {
  store: Store;
  close: () => Promise<void>;
}

export function openStore(cfg: Config, logger: Logger): Services {
  const redis = createRedis(cfg.redisUrl, logger, { tls: tlsFiles(cfg, 'redis') });
  const store = createStore(redis, cfg);
  return {
    store,
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

export interface BrokerServices {
  connection: ChannelModel;
  channel: ConfirmChannel;
  topology: Topology;
  close: () => Promise<void>;
}

export async function openBroker(cfg: Config, logger: Logger): Promise<BrokerServices> {
  const topology = topologyFor(cfg.prefix, cfg);
  const connection = await connectBroker({ url: cfg.amqpUrl, tls: tlsFiles(cfg, 'amqp'), logger, timeoutMs: 10_000, connectionName: 'tidepool-cli' });
  const channel = await openConfirmChannel(connection, topology, logger);
  return {
    connection,
    channel,
    topology,
    close: async () => {
      await channel.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}

/** Runs a command body, mapping errors to messages and exit codes. */
export async function run(io: Io, usage: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\n\n${usage}`);
      return EXIT.usage;
    }
    if (err instanceof ConfigError) {
      io.err(`error: ${err.message}`);
      return EXIT.config;
    }
    io.err(`error: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT.failed;
  }
}

/**
 * Control characters, and the Unicode ones that move or reorder text: C0 (CR, LF, ESC that starts
 * an ANSI sequence…), DEL and C1, the line and paragraph separators, bidi overrides.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;
const NAMED_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text for one line of a terminal: every control character shown as an escape (\n, \u001b).
 * Ids and reasons come from messages anyone can publish; raw, a \r\n or an ANSI sequence in a
 * sync id would forge rows of a table or repaint the operator's screen.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => NAMED_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Aligned columns, one row a line; every cell is made printable (printable()). */
export function table(rawRows: string[][]): string {
  if (rawRows.length === 0) return '';
  const rows = rawRows.map((r) => r.map(printable));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}
