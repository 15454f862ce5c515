// The stream statuses the runner itself writes into the destination's input (Airbyte's
// TRACE STREAM_STATUS): STARTED for every configured stream before the first record, COMPLETE
// for every one once the source exited 0 and all its output was forwarded.
//
// Why the runner and not the source: EOF on the destination's stdin is also what a dead runner
// leaves behind (the kernel closes its pipes; in Kubernetes the stdin sidecar turns the closed
// connection into EOF), and a destination that took it for "the source finished" committed a
// partial read and, for overwrite streams, dropped the previous complete rows. Only the runner
// knows the source finished cleanly, so only it says COMPLETE; a destination that saw STARTED
// and no COMPLETE rolls back instead. Source-emitted TRACEs are not forwarded (runner/records/pipe.ts).
import type { AirbyteMessage, AirbyteStreamStatus, ConfiguredAirbyteCatalog } from '../../shared/protocol.js';

/** One TRACE STREAM_STATUS line per configured stream, as the bytes to write. */
export function streamStatusLines(catalog: ConfiguredAirbyteCatalog, status: AirbyteStreamStatus, now = Date.now()): Buffer {
  let text = '';
  for (const { stream } of catalog.streams) {
    const message: AirbyteMessage = {
      type: 'TRACE',
      trace: {
        type: 'STREAM_STATUS',
        emitted_at: now,
        stream_status: {
          // A discovered catalog may say `namespace: null`; the descriptor then has none.
          stream_descriptor: typeof stream.namespace === 'string' ? { name: stream.name, namespace: stream.namespace } : { name: stream.name },
          status,
        },
      },
    };
    text += `${JSON.stringify(message)}\n`;
  }
  return Buffer.from(text);
}
