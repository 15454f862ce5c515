// Reading what connectors say besides records: stderr tails, LOG and TRACE messages, and the
// short commands (discover, check, spec) whose whole output is a few messages.
import type { Readable } from 'node:stream';
import type { Logger } from '../../shared/logger.js';
import { ConnectorError } from '../../shared/errors.js';
import type { AirbyteMessage, AirbyteTraceMessage } from '../../shared/protocol.js';
import type { ConnectorLauncher, ConnectorRun } from '../../shared/ports/connector-launcher.js';
import { redactCut, redactText } from '../../shared/redact.js';
import { readLines, SAMPLE_WINDOW_BYTES, sampleOf, TailBuffer } from '../records/lines.js';

const STDERR_LINE_LIMIT = 64 * 1024;

/**
 * Drains a connector's stderr into a tail buffer (which redacts when read) and the debug log, as
 * fast as it comes: a connector blocked on a full stderr pipe would stall the sync.
 */
export async function collectStderr(stream: Readable, tail: TailBuffer, secrets: ReadonlySet<string> | 'deferred', logger: Logger): Promise<void> {
  try {
    // Lines are cut at STDERR_LINE_LIMIT as they are read: a connector writing megabytes without
    // a newline must not grow the runner (the tail keeps 1000 characters of a line anyway).
    for await (const line of readLines(stream, STDERR_LINE_LIMIT, { truncate: true })) {
      const text = line.toString('utf8');
      const cut = line.length >= STDERR_LINE_LIMIT;
      tail.push(text, cut);
      // Deferred: the secrets are not all known yet; the caller logs the tail, redacted, later.
      if (secrets !== 'deferred') logger.debug({ stderr: redactCut(text, secrets, cut) }, 'connector stderr');
    }
  } catch {
    // stderr is best effort: a broken pipe here must not fail the sync.
  }
}

const LOG_LEVELS: Record<string, 'error' | 'warn' | 'info' | 'debug' | 'trace'> = {
  FATAL: 'error',
  ERROR: 'error',
  WARN: 'warn',
  INFO: 'info',
  DEBUG: 'debug',
  TRACE: 'trace',
};

/** Logs a connector's LOG message at its level, redacted. */
export function logConnectorMessage(logger: Logger, message: { level?: string; message?: string }, secrets: ReadonlySet<string>): void {
  const level = LOG_LEVELS[message.level ?? 'INFO'] ?? 'info';
  logger[level]({ connectorLog: redactText(message.message ?? '', secrets) }, 'connector log');
}

/** Turns a connector's error TRACE into the error the sync fails with. */
export function traceFailure(trace: AirbyteTraceMessage, origin: 'source' | 'destination', secrets: ReadonlySet<string>): ConnectorError {
  const text = redactText(trace.error?.message ?? 'error without a message', secrets);
  return ConnectorError.of({ kind: 'trace', failureType: trace.error?.failure_type }, `${origin} reported: ${text}`, origin);
}

/** What running a short protocol command (spec, check, discover) needs. */
export interface CommandDeps {
  launcher: ConnectorLauncher;
  logger: Logger;
  maxLineBytes: number;
  tailLines: number;
  /** See runConnectorCommand: resolves once the secrets are all known. */
  secretsReady?: Promise<unknown>;
  /** Aborted when the sync is stopped (cancelled, the runner shutting down): the command is killed. */
  signal?: AbortSignal | undefined;
}

export interface CommandResult {
  messages: AirbyteMessage[];
  exitCode: number | null;
  /** What the platform said about the ending (pod deleted, OOMKilled...), if anything. */
  exitReason?: string;
  stderr: string[];
}

/** Runs a short protocol command (spec, check, discover) to completion and returns its messages. */
export async function runConnectorCommand(
  launcher: ConnectorLauncher,
  run: ConnectorRun,
  secrets: ReadonlySet<string>,
  logger: Logger,
  options: {
    timeoutMs: number;
    maxLineBytes: number;
    tailLines: number;
    /**
     * Resolves once `secrets` is complete (the connector's spec, naming its secret fields, may
     * still be on its way): nothing the command printed is logged or put in an error before.
     */
    secretsReady?: Promise<unknown> | undefined;
    /** Kills the command when aborted; what it then reports is the caller's to disregard. */
    signal?: AbortSignal | undefined;
  },
): Promise<CommandResult> {
  const proc = await launcher.start(run);
  proc.stdin.end();
  const tail = new TailBuffer(options.tailLines);
  const kill = () => proc.kill('SIGKILL');
  const timer = setTimeout(kill, options.timeoutMs);
  options.signal?.addEventListener('abort', kill, { once: true });
  if (options.signal?.aborted) kill();
  const messages: AirbyteMessage[] = [];
  // The first thing wrong with the output. A line that is not JSON is kept (its start, bounded)
  // rather than quoted at once: it is quoted once the secrets are complete, redacted before cut.
  let protocolError: Error | { notJson: Buffer; more: boolean } | undefined;
  const deferred = options.secretsReady !== undefined;
  try {
    const stderr = collectStderr(proc.stderr, tail, deferred ? 'deferred' : secrets, logger);
    try {
      for await (const line of readLines(proc.stdout, options.maxLineBytes, { origin: run.role })) {
        if (line.length === 0) continue;
        try {
          messages.push(JSON.parse(line.toString('utf8')) as AirbyteMessage);
        } catch {
          protocolError ??= { notJson: Buffer.from(line.subarray(0, SAMPLE_WINDOW_BYTES)), more: line.length > SAMPLE_WINDOW_BYTES };
        }
      }
    } catch (err) {
      protocolError ??= err as Error;
      proc.kill('SIGKILL');
    }
    await stderr;
    const exit = await proc.exit;
    if (deferred) await options.secretsReady;
    const stderrTail = tail.get(secrets);
    if (deferred) for (const line of stderrTail) logger.debug({ stderr: line }, 'connector stderr');
    if (exit.notStarted) {
      throw ConnectorError.of({ kind: 'not_started' }, redactText(`${run.role} could not start: ${exit.reason ?? 'no reason given'}`, secrets), run.role);
    }
    if (protocolError) {
      const what = protocolError instanceof Error ? protocolError.message : `not a JSON message: ${sampleOf(protocolError.notJson, 0, protocolError.notJson.length, secrets, protocolError.more)}`;
      throw ConnectorError.of({ kind: 'protocol' }, redactText(`${run.role} ${run.command}: ${what}`, secrets), run.role);
    }
    for (const m of messages) if (m.type === 'LOG') logConnectorMessage(logger, m.log, secrets);
    return { messages, exitCode: exit.code, ...(exit.reason ? { exitReason: exit.reason } : {}), stderr: stderrTail };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', kill);
  }
}
