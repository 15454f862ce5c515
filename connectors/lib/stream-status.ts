// When a destination's input is complete. EOF alone cannot say: a runner killed mid-sync (or a
// Kubernetes stdin sidecar whose runner went away) also ends the input with EOF. So, as in
// Airbyte's destinations, an orchestrator that speaks TRACE STREAM_STATUS announces every
// stream with STARTED before its records and sends COMPLETE only once the source succeeded; a
// stream whose last status is not COMPLETE at EOF means the input was cut short, and the
// destination rolls back to its last echoed STATE and finalizes nothing (no overwrite).
//
// An input with no STREAM_STATUS at all (an orchestrator that does not send them: a plain
// `source | destination` shell pipe, raw test input, bench/throughput.ts's direct mode) keeps
// the older rule: EOF means complete.
import type { AirbyteStreamStatus, StreamDescriptor } from '../../shared/protocol.js';
import { describeStream, streamKey } from './catalog.js';
import { ConnectorError } from './errors.js';
import type { InputStreamStatus } from './input.js';

/** EOF came before every announced stream was COMPLETE: the orchestrator stopped mid-sync. */
export class IncompleteInputError extends ConnectorError {
  override name = 'IncompleteInputError';
  readonly streams: readonly StreamDescriptor[];

  constructor(streams: readonly StreamDescriptor[]) {
    const names = streams.map(describeStream).join(', ');
    super(
      streams.length === 1
        ? `input ended before stream ${names} was complete: the orchestrator stopped mid-sync`
        : `input ended before streams ${names} were complete: the orchestrator stopped mid-sync`,
      'system_error',
    );
    this.streams = streams;
  }
}

/** The last status each stream got on stdin. */
export class StreamStatuses {
  readonly #last = new Map<string, { stream: StreamDescriptor; status: AirbyteStreamStatus }>();
  readonly #complete = new Set<string>();

  observe({ stream, status }: InputStreamStatus): void {
    const key = streamKey(stream.name, stream.namespace);
    this.#last.set(key, { stream, status });
    if (status === 'COMPLETE') this.#complete.add(key);
    else this.#complete.delete(key);
  }

  /** Whether the input carried any STREAM_STATUS at all. */
  get announced(): boolean {
    return this.#last.size > 0;
  }

  /** Whether a stream was declared COMPLETE: a RECORD for it after that breaks the protocol. */
  isComplete(name: string, namespace: string | undefined): boolean {
    return this.#complete.size > 0 && this.#complete.has(streamKey(name, namespace));
  }

  /** At EOF: the streams that got a status but not COMPLETE as their last. */
  incomplete(): StreamDescriptor[] {
    return [...this.#last.values()].filter((entry) => entry.status !== 'COMPLETE').map((entry) => entry.stream);
  }

  /** At EOF: throws IncompleteInputError unless every announced stream is COMPLETE. */
  assertComplete(): void {
    const incomplete = this.incomplete();
    if (incomplete.length > 0) throw new IncompleteInputError(incomplete);
  }
}
