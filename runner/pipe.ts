// The record path: source stdout → checks and counts → destination stdin, as bytes.
//
// Each chunk from the source is split on newlines; every line is checked by scanMessage (no
// objects built); runs of consecutive RECORD/STATE lines are forwarded to the destination as one
// slice of the original chunk, so in the common case a 64 KiB chunk costs one scan and one
// write. Other messages (LOG, TRACE, CONTROL) are handed to `onMessage` and not forwarded.
// Backpressure: when the destination's stdin is full we wait for 'drain' before reading more,
// so a slow destination slows the source instead of growing the runner's memory.
import type { Readable, Writable } from 'node:stream';
import { LineError, scanMessage } from './line-scanner.js';
import { LineTooLongError } from './lines.js';
import type { StreamStats } from '../shared/store/runs.js';

export interface PumpHandlers {
  /** A STATE line from the source, forwarded; called before the line is written. */
  onState(line: Buffer): void;
  /** A line not forwarded (LOG, TRACE, CONTROL, ...), with its type. */
  onMessage(type: string, line: Buffer): void;
  /** The first RECORD line was seen. */
  onFirstRecord?(): void;
}

export interface PumpOptions {
  maxLineBytes: number;
  /** Bytes allowed in the destination's write buffer before waiting for 'drain' (default 1 MiB). */
  maxBufferedBytes?: number;
  signal?: AbortSignal;
}

export class SourceProtocolError extends Error {
  override readonly name = 'SourceProtocolError';
}

export class PumpStats {
  records = 0;
  bytes = 0;
  readonly streams = new Map<string, StreamStats>();
  // The stream of the previous record, as bytes, to avoid decoding a name per record.
  private lastName: Buffer | undefined;
  private lastStats: StreamStats | undefined;

  count(buf: Buffer, s: number, e: number, ns: number, ne: number, lineBytes: number): void {
    this.records++;
    this.bytes += lineBytes;
    let stats = this.lastStats;
    if (ns >= 0 || !stats || !this.lastName || !sameBytes(this.lastName, buf, s, e)) {
      const name = buf.toString('utf8', s, e);
      const key = ns >= 0 ? `${buf.toString('utf8', ns, ne)}.${name}` : name;
      stats = this.streams.get(key);
      if (!stats) {
        stats = { records: 0, bytes: 0 };
        this.streams.set(key, stats);
      }
      this.lastName = ns >= 0 ? undefined : Buffer.from(buf.subarray(s, e));
      this.lastStats = stats;
    }
    stats.records++;
    stats.bytes += lineBytes;
  }

  toJSON(): Record<string, StreamStats> {
    return Object.fromEntries(this.streams);
  }
}

const NEWLINE = Buffer.from('\n');

/** a equals buf[s, e)? An inline loop: Buffer.compare's argument checks cost 5-7% per record. */
function sameBytes(a: Buffer, buf: Buffer, s: number, e: number): boolean {
  if (a.length !== e - s) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== buf[s + i]) return false;
  return true;
}

/**
 * How much may sit in the destination's stdin buffer before the pump waits for 'drain'.
 * Waiting at every false from write() (16 KiB) meant ~1,250 waits per million records; 1 MiB
 * keeps memory bounded and cut that to ~270 (measured with bench/throughput.ts).
 */
const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * Pumps until the source's stdout ends. The caller then ends the destination's stdin (EOF
 * travels on: the destination flushes, echoes its last STATE and exits) — or, after a failure,
 * does not. Throws SourceProtocolError for a line that breaks the protocol.
 */
export async function pumpRecords(
  source: Readable,
  destination: Writable,
  stats: PumpStats,
  handlers: PumpHandlers,
  options: PumpOptions,
): Promise<void> {
  const { maxLineBytes, signal } = options;
  const maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  let carry: Buffer[] = [];
  let carryLength = 0;
  let lineNo = 0;
  let firstRecordSeen = false;

  const write = async (data: Buffer): Promise<void> => {
    if (data.length === 0) return;
    if (!destination.write(data) && destination.writableLength > maxBuffered) {
      if (destination.destroyed || destination.writableEnded) throw new Error('destination stdin closed');
      await waitDrain(destination, signal);
    }
  };

  // Handles one complete line; returns true when it is to be forwarded.
  const handle = (buf: Buffer, start: number, end: number): boolean => {
    lineNo++;
    if (end > start && buf[end - 1] === 0x0d) end--; // tolerate CRLF
    if (end === start) return false;
    let m;
    try {
      m = scanMessage(buf, start, end);
    } catch (err) {
      if (err instanceof LineError) {
        const sample = buf.toString('utf8', start, Math.min(end, start + 120));
        throw new SourceProtocolError(`source line ${lineNo} is not an Airbyte message (${err.message}): ${sample}`);
      }
      throw err;
    }
    if (m.type === 'RECORD') {
      stats.count(buf, m.streamStart, m.streamEnd, m.namespaceStart, m.namespaceEnd, end - start);
      if (!firstRecordSeen) {
        firstRecordSeen = true;
        handlers.onFirstRecord?.();
      }
      return true;
    }
    if (m.type === 'STATE') {
      handlers.onState(buf.subarray(start, end));
      return true;
    }
    if (m.type !== 'LOG' && m.type !== 'TRACE' && m.type !== 'CONTROL') {
      throw new SourceProtocolError(`source line ${lineNo}: unexpected message type "${m.type}" during read`);
    }
    handlers.onMessage(m.type, buf.subarray(start, end));
    return false;
  };

  for await (const chunk of source as AsyncIterable<Buffer>) {
    if (signal?.aborted) return;
    let pos = 0;
    if (carryLength > 0) {
      // Finish the line carried over from the previous chunk.
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        carry.push(chunk);
        carryLength += chunk.length;
        if (carryLength > maxLineBytes) throw new LineTooLongError(maxLineBytes);
        continue;
      }
      if (carryLength + nl > maxLineBytes) throw new LineTooLongError(maxLineBytes);
      carry.push(chunk.subarray(0, nl + 1));
      const line = Buffer.concat(carry);
      carry = [];
      carryLength = 0;
      if (handle(line, 0, line.length - 1)) await write(line);
      pos = nl + 1;
    }
    // Forward [forwardFrom, lineStart) in one write; break the run at lines not forwarded.
    let forwardFrom = pos;
    let lineStart = pos;
    for (;;) {
      const nl = chunk.indexOf(10, lineStart);
      if (nl < 0) break;
      if (nl - lineStart > maxLineBytes) throw new LineTooLongError(maxLineBytes);
      if (!handle(chunk, lineStart, nl)) {
        if (lineStart > forwardFrom) await write(chunk.subarray(forwardFrom, lineStart));
        forwardFrom = nl + 1;
      }
      lineStart = nl + 1;
    }
    if (lineStart > forwardFrom) await write(chunk.subarray(forwardFrom, lineStart));
    if (lineStart < chunk.length) {
      carry.push(chunk.subarray(lineStart));
      carryLength += chunk.length - lineStart;
      if (carryLength > maxLineBytes) throw new LineTooLongError(maxLineBytes);
    }
  }
  if (carryLength > 0 && !signal?.aborted) {
    // A last line without a newline.
    const line = Buffer.concat(carry);
    if (handle(line, 0, line.length)) {
      await write(line);
      await write(NEWLINE);
    }
  }
}

function waitDrain(stream: Writable, signal: AbortSignal | undefined): Promise<void> {
  // Plain listeners removed by hand: cheaper than events.once with an AbortSignal, which
  // builds an AbortError each time it is cancelled.
  return new Promise<void>((resolve, reject) => {
    const cleanup = () => {
      stream.off('drain', onDrain);
      stream.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new Error('destination stdin closed'));
    };
    const onAbort = () => {
      cleanup();
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    stream.on('drain', onDrain);
    stream.on('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
