import type { ConfiguredAirbyteStream, StreamDescriptor } from '../../shared/protocol.js';
import { descriptorOf, indexStreams } from '../lib/catalog.js';
import type { ReadContext } from '../lib/cli.js';
import { ConfigError } from '../lib/errors.js';
import type { Output } from '../lib/output.js';
import { streamStateLine, type StreamStates } from '../lib/state.js';
import { hashString, Random, recordSeed } from './random.js';
import { FAKE_STREAMS, type FakeStream, type FakerConfig } from './streams.js';

// emitted_at is refreshed this often rather than per record: Date.now() and rebuilding the
// line prefix per record cost a measurable share of a 300k records/s budget.
const CLOCK_EVERY = 1024;

export async function readFake({ config, catalog, state, out }: ReadContext<FakerConfig>): Promise<void> {
  indexStreams(catalog);
  const plan = catalog.streams.map((configured) => {
    const stream = FAKE_STREAMS.get(configured.stream.name);
    if (!stream) {
      throw new ConfigError(
        `stream "${configured.stream.name}" does not exist; source-faker has ${[...FAKE_STREAMS.keys()].join(', ')}`,
      );
    }
    return { configured, stream };
  });
  for (const { configured, stream } of plan) await readStream(configured, stream, config, state, out);
}

async function readStream(
  configured: ConfiguredAirbyteStream,
  stream: FakeStream,
  config: FakerConfig,
  states: StreamStates,
  out: Output,
): Promise<void> {
  const descriptor = descriptorOf(configured);
  const start = configured.sync_mode === 'incremental' ? committedCursor(descriptor, states) : 0;
  const size = stream.size(config);
  const random = new Random();
  const streamSeed = hashString(`${config.seed}:${descriptor.name}`);
  const head = `{"type":"RECORD","record":{"stream":${JSON.stringify(descriptor.name)},"emitted_at":`;
  let prefix = `${head}${Date.now()},"data":`;
  let sinceState = 0;
  let cursor = start;

  for (let id = start + 1; id <= size; id += 1) {
    random.reset(recordSeed(streamSeed, id));
    const wait = out.line(`${prefix}${stream.recordJson(random, id, config)}}}`);
    if (wait) await wait;
    cursor = id;
    sinceState += 1;
    if (sinceState === config.stateEvery) {
      sinceState = 0;
      const stateWait = out.line(streamStateLine(descriptor, { cursor }));
      if (stateWait) await stateWait;
    }
    if (id % CLOCK_EVERY === 0) prefix = `${head}${Date.now()},"data":`;
  }
  // The closing state, unless the loop just emitted this very one; with no new records it
  // carries the committed cursor forward.
  if (sinceState > 0 || cursor === start) {
    const wait = out.line(streamStateLine(descriptor, { cursor }));
    if (wait) await wait;
  }
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
