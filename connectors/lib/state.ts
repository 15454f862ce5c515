import type { AirbyteStateMessage, AirbyteStreamState, StreamDescriptor } from '../../shared/protocol.js';
import { streamKey } from './catalog.js';
import { ConfigError } from './errors.js';

type StreamState = Record<string, unknown>;

/**
 * The per-stream state a source resumes from. `--state` holds an array of STATE messages
 * (Airbyte's per-stream form, with or without the `{"type":"STATE","state":...}` envelope;
 * a GLOBAL message contributes its stream_states), or a legacy object keyed by stream name,
 * of which `{}` — "no state" — is by far the most common.
 */
export class StreamStates {
  readonly #byKey = new Map<string, StreamState>();

  static parse(raw: unknown): StreamStates {
    const states = new StreamStates();
    if (raw === undefined || raw === null) return states;
    if (Array.isArray(raw)) {
      raw.forEach((item, index) => states.#addMessage(unwrap(item, index)));
    } else if (isObject(raw) && typeof raw['type'] === 'string') {
      states.#addMessage(unwrap(raw, 0));
    } else if (isObject(raw)) {
      states.#addLegacy(raw);
    } else {
      throw new ConfigError('invalid state: expected an array of STATE messages or a legacy state object');
    }
    return states;
  }

  get(descriptor: StreamDescriptor): StreamState | undefined {
    return this.#byKey.get(streamKey(descriptor.name, descriptor.namespace));
  }

  #addMessage(message: AirbyteStateMessage): void {
    switch (message.type) {
      case 'STREAM':
        if (message.stream) this.#addStream(message.stream);
        return;
      case 'GLOBAL':
        for (const stream of message.global?.stream_states ?? []) this.#addStream(stream);
        return;
      default:
        if (isObject(message.data)) this.#addLegacy(message.data);
    }
  }

  #addStream(stream: AirbyteStreamState): void {
    const descriptor = stream.stream_descriptor;
    if (!isObject(descriptor) || typeof descriptor.name !== 'string') {
      throw new ConfigError('invalid state: a STREAM state has no stream_descriptor.name');
    }
    if (isObject(stream.stream_state)) {
      this.#byKey.set(streamKey(descriptor.name, descriptor.namespace), stream.stream_state);
    }
  }

  #addLegacy(data: Record<string, unknown>): void {
    for (const [name, value] of Object.entries(data)) {
      if (isObject(value)) this.#byKey.set(streamKey(name), value);
    }
  }
}

/** One STATE line for a stream, as sources emit it. */
export function streamStateLine(descriptor: StreamDescriptor, streamState: StreamState): string {
  return JSON.stringify({
    type: 'STATE',
    state: { type: 'STREAM', stream: { stream_descriptor: descriptor, stream_state: streamState } },
  });
}

function unwrap(item: unknown, index: number): AirbyteStateMessage {
  if (!isObject(item)) throw new ConfigError(`invalid state: entry ${index} is not an object`);
  if (item['type'] === 'STATE') {
    const inner = item['state'];
    if (!isObject(inner)) throw new ConfigError(`invalid state: entry ${index} has no state`);
    return inner;
  }
  return item;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
