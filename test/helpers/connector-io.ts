// Driving a ConnectorProcess from a test: collect its output, feed its input.
import type { ConnectorExit, ConnectorProcess } from '../../shared/ports/connector-launcher.js';
import type { AirbyteMessage } from '../../shared/protocol.js';

export interface Collected {
  exit: ConnectorExit;
  messages: AirbyteMessage[];
  stdout: string;
  stderr: string;
}

export async function collect(proc: ConnectorProcess, input?: string): Promise<Collected> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  proc.stdout.on('data', (c: Buffer) => out.push(c));
  proc.stderr.on('data', (c: Buffer) => err.push(c));
  const stdoutDone = new Promise((r) => proc.stdout.once('close', r));
  const stderrDone = new Promise((r) => proc.stderr.once('close', r));
  if (input !== undefined) proc.stdin.end(input);
  else proc.stdin.end();
  const exit = await proc.exit;
  await Promise.all([stdoutDone, stderrDone]);
  const stdout = Buffer.concat(out).toString('utf8');
  const messages = stdout
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as AirbyteMessage);
  return { exit, messages, stdout, stderr: Buffer.concat(err).toString('utf8') };
}

export function record(stream: string, data: Record<string, unknown>): string {
  return JSON.stringify({ type: 'RECORD', record: { stream, data, emitted_at: Date.now() } });
}

export function streamState(stream: string, cursor: unknown): string {
  return JSON.stringify({ type: 'STATE', state: { type: 'STREAM', stream: { stream_descriptor: { name: stream }, stream_state: { cursor } } } });
}

/** A configured catalog for the faker's users stream. */
export function fakerUsersCatalog(syncMode: 'full_refresh' | 'incremental' = 'full_refresh', destinationSyncMode: 'overwrite' | 'append' | 'append_dedup' = 'overwrite') {
  return {
    streams: [
      {
        stream: {
          name: 'users',
          json_schema: { type: 'object', properties: { id: { type: 'integer' } } },
          supported_sync_modes: ['full_refresh', 'incremental'],
          source_defined_cursor: true,
          default_cursor_field: ['id'],
          source_defined_primary_key: [['id']],
        },
        sync_mode: syncMode,
        destination_sync_mode: destinationSyncMode,
        ...(syncMode === 'incremental' ? { cursor_field: ['id'] } : {}),
        primary_key: [['id']],
      },
    ],
  };
}
