import type { Readable } from 'node:stream';
import type { AirbyteStreamStatus, StreamDescriptor } from '../../shared/protocol.js';
import { ProtocolError } from './errors.js';

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * Splits a byte stream into lines, one array per chunk read, so a consumer handling a million
 * lines awaits once per chunk rather than once per line. Splitting happens on bytes, before
 * decoding, so a multi-byte character cut by a chunk boundary is decoded whole. A final line
 * without a trailing newline is still yielded; a trailing "\r" is dropped.
 */
export async function* readLineBatches(stream: Readable = process.stdin): AsyncGenerator<string[]> {
  // The start of a line whose end has not arrived yet; kept as parts so a very long line is
  // concatenated once, not once per chunk.
  let pending: Buffer[] = [];
  for await (const piece of stream as AsyncIterable<Buffer | string>) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece) : piece;
    let newline = chunk.indexOf(NEWLINE);
    if (newline === -1) {
      pending.push(chunk);
      continue;
    }
    const lines: string[] = [];
    let start = 0;
    if (pending.length > 0) {
      pending.push(chunk.subarray(0, newline));
      lines.push(decodeLine(Buffer.concat(pending), 0, undefined));
      pending = [];
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    while (newline !== -1) {
      lines.push(decodeLine(chunk, start, newline));
      start = newline + 1;
      newline = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
    yield lines;
  }
  if (pending.length > 0) yield [decodeLine(Buffer.concat(pending), 0, undefined)];
}

/** Line by line; simpler to use where the line count is small. */
export async function* readLines(stream: Readable = process.stdin): AsyncGenerator<string> {
  for await (const lines of readLineBatches(stream)) yield* lines;
}

function decodeLine(buffer: Buffer, start: number, end: number | undefined): string {
  let stop = end ?? buffer.length;
  if (stop > start && buffer[stop - 1] === CARRIAGE_RETURN) stop -= 1;
  return buffer.toString('utf8', start, stop);
}

export interface InputRecord {
  stream: string;
  namespace?: string;
  data: Record<string, unknown>;
  emitted_at: number;
}

/** A TRACE STREAM_STATUS on a destination's stdin: see stream-status.ts. */
export interface InputStreamStatus {
  stream: StreamDescriptor;
  status: AirbyteStreamStatus;
}

/** What a destination needs to know of a line on its stdin. */
export type InputMessage =
  | { type: 'RECORD'; record: InputRecord }
  | { type: 'STATE' }
  | { type: 'TRACE'; error: boolean; streamStatus?: InputStreamStatus }
  | { type: 'OTHER' };

/**
 * Parses one stdin line of a destination; undefined for a blank line. A line that is not a
 * JSON object, or a RECORD without a stream and a data object, is a ProtocolError naming the
 * line: destinations fail rather than skip data.
 */
export function parseInputMessage(line: string, lineNumber: number): InputMessage | undefined {
  if (line.trim().length === 0) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new ProtocolError(`line ${lineNumber} of stdin is not JSON: ${line.slice(0, 200)}`);
  }
  if (typeof value !== 'object' || value === null) {
    throw new ProtocolError(`line ${lineNumber} of stdin is not a message object: ${line.slice(0, 200)}`);
  }
  const message = value as { type?: unknown; record?: unknown; trace?: unknown };
  switch (message.type) {
    case 'STATE':
      return { type: 'STATE' };
    case 'TRACE': {
      const trace = message.trace as { type?: unknown; stream_status?: unknown } | null | undefined;
      if (typeof trace !== 'object' || trace === null) return { type: 'TRACE', error: false };
      if (trace.type === 'STREAM_STATUS') return { type: 'TRACE', error: false, streamStatus: streamStatusOf(trace.stream_status, lineNumber) };
      return { type: 'TRACE', error: trace.type === 'ERROR' };
    }
    case 'RECORD':
      return { type: 'RECORD', record: recordOf(message.record, lineNumber) };
    default:
      return { type: 'OTHER' };
  }
}

const STREAM_STATUSES: ReadonlySet<string> = new Set<AirbyteStreamStatus>(['STARTED', 'RUNNING', 'COMPLETE', 'INCOMPLETE']);

// Malformed, it is refused like a malformed RECORD: skipping it could turn an incomplete
// input into one that looks complete.
function streamStatusOf(value: unknown, lineNumber: number): InputStreamStatus {
  const status = value as { stream_descriptor?: { name?: unknown; namespace?: unknown } | null; status?: unknown } | null | undefined;
  const descriptor = typeof status === 'object' && status !== null ? status.stream_descriptor : undefined;
  if (
    typeof descriptor !== 'object' ||
    descriptor === null ||
    typeof descriptor.name !== 'string' ||
    (descriptor.namespace !== undefined && descriptor.namespace !== null && typeof descriptor.namespace !== 'string') ||
    typeof status?.status !== 'string' ||
    !STREAM_STATUSES.has(status.status)
  ) {
    throw new ProtocolError(`line ${lineNumber}: TRACE STREAM_STATUS without a stream_descriptor name and a known status`);
  }
  return {
    stream: typeof descriptor.namespace === 'string' ? { name: descriptor.name, namespace: descriptor.namespace } : { name: descriptor.name },
    status: status.status as AirbyteStreamStatus,
  };
}

function recordOf(value: unknown, lineNumber: number): InputRecord {
  const record = value as Partial<Record<keyof InputRecord, unknown>> | null | undefined;
  if (
    typeof record !== 'object' ||
    record === null ||
    typeof record.stream !== 'string' ||
    (record.namespace !== undefined && record.namespace !== null && typeof record.namespace !== 'string') ||
    typeof record.data !== 'object' ||
    record.data === null ||
    Array.isArray(record.data)
  ) {
    throw new ProtocolError(`line ${lineNumber}: RECORD without stream and data object`);
  }
  return {
    stream: record.stream,
    ...(typeof record.namespace === 'string' ? { namespace: record.namespace } : {}),
    data: record.data as Record<string, unknown>,
    emitted_at: typeof record.emitted_at === 'number' ? record.emitted_at : Date.now(),
  };
}
