// A source connector for crash and outage tests, written as a script into a test's directory:
// one keyless stream, so no primary key (no upsert) can hide a row delivered twice.
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Stream `events` (no primary key): ids 1..config.records, a cursor on id (incremental reads
 * continue after the committed cursor), a STATE every config.stateEvery records and a closing
 * one after the last records if they had none, config.delayMs before each record (so a sync
 * takes a while). A read with nothing new emits no STATE at all, so the checkpoints of a
 * connection are its cursor's steps, each committed exactly once: its state version says
 * whether one was committed twice.
 */
const KEYLESS_SOURCE = `#!/usr/bin/env node
import { readFileSync } from 'node:fs';
const args = process.argv.slice(2);
const flag = (name) => { const i = args.indexOf('--' + name); return i >= 0 ? args[i + 1] : undefined; };
const config = JSON.parse(readFileSync(flag('config'), 'utf8'));
const stream = { name: 'events', json_schema: { type: 'object', properties: { id: { type: 'integer' } } }, supported_sync_modes: ['full_refresh', 'incremental'], source_defined_cursor: true, default_cursor_field: ['id'] };
process.stdout.on('error', () => process.exit(1));
const write = (m) => new Promise((resolve) => (process.stdout.write(JSON.stringify(m) + '\\n') ? resolve() : process.stdout.once('drain', resolve)));
const state = (cursor) => ({ type: 'STATE', state: { type: 'STREAM', stream: { stream_descriptor: { name: 'events' }, stream_state: { cursor } } } });
if (args[0] === 'discover') {
  await write({ type: 'CATALOG', catalog: { streams: [stream] } });
} else if (args[0] === 'read') {
  const catalog = JSON.parse(readFileSync(flag('catalog'), 'utf8'));
  let cursor = 0;
  if (catalog.streams[0].sync_mode === 'incremental' && flag('state')) {
    for (const s of JSON.parse(readFileSync(flag('state'), 'utf8'))) if (s.stream?.stream_descriptor?.name === 'events') cursor = Number(s.stream.stream_state.cursor);
  }
  let since = 0;
  for (let id = cursor + 1; id <= config.records; id++) {
    if (config.delayMs) await new Promise((r) => setTimeout(r, config.delayMs));
    await write({ type: 'RECORD', record: { stream: 'events', data: { id }, emitted_at: Date.now() } });
    if (++since === config.stateEvery) { since = 0; await write(state(id)); }
  }
  if (since > 0) await write(state(config.records));
} else {
  process.exit(1);
}
`;

/** Writes the source into `dir`; returns its path (a connection's `source.command`). */
export async function writeKeylessSource(dir: string): Promise<string> {
  const path = join(dir, 'keyless-source.mjs');
  await writeFile(path, KEYLESS_SOURCE);
  await chmod(path, 0o755);
  return path;
}
