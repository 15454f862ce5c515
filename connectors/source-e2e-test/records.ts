import { setTimeout as sleep } from 'node:timers/promises';
import type { AirbyteStream, ConfiguredAirbyteCatalog, StreamDescriptor } from '../../shared/protocol.js';
import { descriptorOf, indexStreams } from '../lib/catalog.js';
import { ConfigError } from '../lib/errors.js';
import type { Output } from '../lib/output.js';
import { streamStateLine, type StreamStates } from '../lib/state.js';
import type { E2eSourceConfig } from './config.js';

export const ITEMS: AirbyteStream = {
  name: 'items',
  json_schema: {
    $schema: 'http://json-schema.org/draft-07/schema#',
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'integer' } },
  },
  supported_sync_modes: ['full_refresh', 'incremental'],
  source_defined_cursor: true,
  default_cursor_field: ['id'],
  source_defined_primary_key: [['id']],
};

/**
 * Emits records 1..config.records of `items` (after the committed cursor when incremental)
 * with a STATE every `stateEvery` records and a closing one, and resolves the last id, which
 * a huge_line ending continues from. A catalog without `items` emits nothing.
 */
export async function emitRecords(
  config: E2eSourceConfig,
  catalog: ConfiguredAirbyteCatalog,
  states: StreamStates,
  out: Output,
): Promise<number> {
  const [configured, ...others] = catalog.streams;
  indexStreams(catalog);
  if (others.length > 0 || (configured && configured.stream.name !== ITEMS.name)) {
    throw new ConfigError(`source-e2e-test has one stream, ${ITEMS.name}; the catalog lists ${catalog.streams.map((s) => s.stream.name).join(', ')}`);
  }
  if (!configured) return 0;
  const descriptor = descriptorOf(configured);
  const start = configured.sync_mode === 'incremental' ? committedCursor(descriptor, states) : 0;
  const head = `{"type":"RECORD","record":{"stream":${JSON.stringify(descriptor.name)},"emitted_at":`;
  let cursor = start;
  let sinceState = 0;
  for (let id = start + 1; id <= config.records; id += 1) {
    if (config.delayMs > 0) {
      await sleep(config.delayMs);
    }
    await emit(out, `${head}${Date.now()},"data":{"id":${id}}}}`, config.delayMs > 0);
    cursor = id;
    sinceState += 1;
    if (sinceState === config.stateEvery) {
      sinceState = 0;
      await emit(out, streamStateLine(descriptor, { cursor }), config.delayMs > 0);
    }
  }
  // As source-faker: the closing state unless the loop just emitted this very one; with no new
  // records it carries the committed cursor forward.
  if (sinceState > 0 || cursor === start) await emit(out, streamStateLine(descriptor, { cursor }), false);
  return cursor;
}

/** A slow source flushes each line: a reader must see its progress, not a 64 KiB buffer at the end. */
async function emit(out: Output, line: string, flush: boolean): Promise<void> {
  const wait = out.line(line);
  if (wait) await wait;
  if (flush) await out.flush();
}

function committedCursor(descriptor: StreamDescriptor, states: StreamStates): number {
  const value = states.get(descriptor)?.['cursor'];
  if (value === undefined || value === null) return 0;
  const cursor = typeof value === 'string' ? Number(value) : value;
  if (typeof cursor !== 'number' || !Number.isSafeInteger(cursor) || cursor < 0) {
    throw new ConfigError(`invalid state for stream ${descriptor.name}: cursor ${JSON.stringify(value)} is not an id`);
  }
  return cursor;
}
