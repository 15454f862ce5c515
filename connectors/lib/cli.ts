import { readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import type {
  AirbyteCatalog,
  AirbyteConnectionStatus,
  ConfiguredAirbyteCatalog,
  ConnectorSpecification,
} from '../../shared/protocol.js';
import { parseCatalog } from './catalog.js';
import { connectionSpecification, parseConfig } from './config.js';
import { ConfigError, errorMessage } from './errors.js';
import { Output } from './output.js';
import { StreamStates } from './state.js';
import { errorTrace } from './trace.js';

export type Command = 'spec' | 'check' | 'discover' | 'read' | 'write';

export interface Invocation {
  command: Command;
  config?: unknown;
  catalog?: unknown;
  state?: unknown;
}

export interface ReadContext<Config> {
  config: Config;
  catalog: ConfiguredAirbyteCatalog;
  state: StreamStates;
  out: Output;
}

export interface WriteContext<Config> {
  config: Config;
  catalog: ConfiguredAirbyteCatalog;
  input: Readable;
  out: Output;
}

/** What a connector implements; `runConnector` does argv, files, validation, output and errors. */
export interface Connector<Schema extends z.ZodType> {
  name: string;
  configSchema: Schema;
  spec?: Omit<ConnectorSpecification, 'connectionSpecification'>;
  /** Resolves FAILED for a config that validates but does not work (wrong password, no such host). */
  check(config: z.output<Schema>): Promise<AirbyteConnectionStatus>;
  discover?(config: z.output<Schema>): Promise<AirbyteCatalog>;
  read?(context: ReadContext<z.output<Schema>>): Promise<void>;
  write?(context: WriteContext<z.output<Schema>>): Promise<void>;
}

export interface ConnectorIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

const FILE_OPTIONS = ['config', 'catalog', 'state'] as const;
type FileOption = (typeof FILE_OPTIONS)[number];

const REQUIRED: Record<Command, readonly FileOption[]> = {
  spec: [],
  check: ['config'],
  discover: ['config'],
  read: ['config', 'catalog'],
  write: ['config', 'catalog'],
};

/**
 * Runs one connector command and resolves the exit code. Every failure, including a bad
 * command line, ends as a TRACE ERROR message on stdout (what the platform reads) plus one
 * line on stderr (what a person reads), and exit code 1.
 */
export function runConnector<Schema extends z.ZodType>(
  connector: Connector<Schema>,
  argv: readonly string[] = process.argv.slice(2),
  io: ConnectorIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  return reportingFailures(connector, io, async (out) => {
    const invocation = await parseInvocation(argv, supportedCommands(connector));
    await dispatch(connector, invocation, out, io);
  });
}

/**
 * runConnector for a command whose files are already parsed: what runs a connector inside a
 * test process, with streams for its io and no files to write. Checked like a command line
 * (a command it does not support, a file it needs), and failing the same way.
 */
export function runInvocation<Schema extends z.ZodType>(connector: Connector<Schema>, invocation: Invocation, io: ConnectorIo): Promise<number> {
  return reportingFailures(connector, io, async (out) => {
    checkInvocation(invocation, supportedCommands(connector));
    await dispatch(connector, invocation, out, io);
  });
}

async function reportingFailures<Schema extends z.ZodType>(
  connector: Connector<Schema>,
  io: ConnectorIo,
  work: (out: Output) => Promise<void>,
): Promise<number> {
  const out = new Output(io.stdout);
  try {
    await work(out);
    await out.flush();
    return 0;
  } catch (err) {
    io.stderr.write(`${connector.name}: ${errorMessage(err)}\n`);
    try {
      // Whatever was emitted before the failure (records, states) goes out first, in order.
      void out.message(errorTrace(err));
      await out.flush();
    } catch {
      // stdout itself is gone: stderr and the exit code are all that is left.
    }
    return 1;
  }
}

/**
 * The entry point of a connector program. Sets the exit code rather than calling
 * process.exit, so stdout is never cut off; a watchdog then ends the process if something
 * (a forgotten socket) would keep it alive after the work is done.
 */
export async function startConnector<Schema extends z.ZodType>(connector: Connector<Schema>): Promise<void> {
  const code = await runConnector(connector);
  process.exitCode = code;
  setTimeout(() => {
    process.stderr.write(`${connector.name}: still running 10 s after finishing; exiting\n`);
    process.exit(code);
  }, 10_000).unref();
}

export async function parseInvocation(argv: readonly string[], supported: readonly Command[]): Promise<Invocation> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: { config: { type: 'string' }, catalog: { type: 'string' }, state: { type: 'string' } },
    });
  } catch (err) {
    throw new ConfigError(`${errorMessage(err)}\n${usage(supported)}`, { cause: err });
  }
  const [command, ...extra] = parsed.positionals;
  if (command === undefined) throw new ConfigError(`no command given\n${usage(supported)}`);
  if (!isCommand(command, supported)) throw unknownCommand(command, supported);
  if (extra.length > 0) throw new ConfigError(`unexpected arguments: ${extra.join(' ')}\n${usage(supported)}`);

  const invocation: Invocation = { command };
  for (const option of FILE_OPTIONS) {
    const path = parsed.values[option];
    if (path === undefined) {
      if (REQUIRED[command].includes(option)) {
        throw missingFile(command, option, supported);
      }
      continue;
    }
    invocation[option] = await readJsonFile(option, path);
  }
  return invocation;
}

function checkInvocation(invocation: Invocation, supported: readonly Command[]): void {
  if (!isCommand(invocation.command, supported)) throw unknownCommand(invocation.command, supported);
  const missing = REQUIRED[invocation.command].find((option) => invocation[option] === undefined);
  if (missing !== undefined) throw missingFile(invocation.command, missing, supported);
}

function unknownCommand(command: string, supported: readonly Command[]): ConfigError {
  return new ConfigError(`unknown command "${command}"\n${usage(supported)}`);
}

function missingFile(command: Command, option: FileOption, supported: readonly Command[]): ConfigError {
  return new ConfigError(`${command} needs --${option} <file>\n${usage(supported)}`);
}

async function dispatch<Schema extends z.ZodType>(
  connector: Connector<Schema>,
  invocation: Invocation,
  out: Output,
  io: ConnectorIo,
): Promise<void> {
  if (invocation.command === 'spec') {
    void out.message({
      type: 'SPEC',
      spec: { ...connector.spec, connectionSpecification: connectionSpecification(connector.configSchema) },
    });
    return;
  }
  const config = parseConfig(connector.configSchema, invocation.config);
  switch (invocation.command) {
    case 'check':
      void out.message({ type: 'CONNECTION_STATUS', connectionStatus: await connector.check(config) });
      return;
    case 'discover':
      if (connector.discover) void out.message({ type: 'CATALOG', catalog: await connector.discover(config) });
      return;
    case 'read':
      await connector.read?.({
        config,
        catalog: parseCatalog(invocation.catalog),
        state: StreamStates.parse(invocation.state),
        out,
      });
      return;
    case 'write':
      await connector.write?.({ config, catalog: parseCatalog(invocation.catalog), input: io.stdin, out });
      return;
  }
}

async function readJsonFile(option: FileOption, path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read --${option} file ${path}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(`--${option} file ${path} is not valid JSON: ${errorMessage(err)}`, { cause: err });
  }
}

function supportedCommands(connector: Connector<z.ZodType>): Command[] {
  const commands: Command[] = ['spec', 'check'];
  if (connector.discover) commands.push('discover');
  if (connector.read) commands.push('read');
  if (connector.write) commands.push('write');
  return commands;
}

function isCommand(value: string, supported: readonly Command[]): value is Command {
  return (supported as readonly string[]).includes(value);
}

function usage(supported: readonly Command[]): string {
  const forms: Record<Command, string> = {
    spec: 'spec',
    check: 'check --config <config.json>',
    discover: 'discover --config <config.json>',
    read: 'read --config <config.json> --catalog <catalog.json> [--state <state.json>]',
    write: 'write --config <config.json> --catalog <catalog.json>',
  };
  return `usage:\n${supported.map((command) => `  ${forms[command]}`).join('\n')}`;
}
