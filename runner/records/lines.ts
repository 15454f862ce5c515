// Splitting a byte stream into lines with a bounded buffer: a connector that writes one
// enormous line (or never a newline) fails with a clear error, or has the line cut short,
// instead of growing the runner's memory without limit.
import type { Readable } from 'node:stream';
import { ProtocolError } from '../../shared/errors.js';
import { quote } from '../../shared/redact.js';

/** A connector wrote a line over maxLineBytes: a protocol error of the connector that wrote it. */
export class LineTooLongError extends ProtocolError {
  override readonly name = 'LineTooLongError';
  constructor(
    origin: 'source' | 'destination',
    readonly limit: number,
    /** 1-based number of the line, when the reader counts them. */
    readonly lineNumber?: number,
    /** The line's start, for the message (cut short). */
    readonly sample?: string,
  ) {
    super(`${origin} ${lineNumber === undefined ? 'a line is' : `line ${lineNumber} is`} longer than maxLineBytes (${describeBytes(limit)})${sample === undefined ? '' : `: ${sample}`}`, origin);
  }
}

/** 67108864 → "64 MiB", 1536 → "1.5 KiB (1536 bytes)", 1000 → "1000 bytes". */
export function describeBytes(n: number): string {
  const units: [number, string][] = [[1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']];
  for (const [size, unit] of units) {
    if (n >= size) return n % size === 0 ? `${n / size} ${unit}` : `${(n / size).toFixed(1)} ${unit} (${n} bytes)`;
  }
  return `${n} bytes`;
}

/** Characters of connector output quoted in an error message. */
export const SAMPLE_CHARS = 120;
/**
 * Bytes of a long line's start the line scanner keeps for its sample (line-scanner.ts): a secret
 * cut at their end is dropped from the sample (shared/redact.ts redactCut).
 */
export const SAMPLE_BYTES = 120;
/** Bytes of a line decoded to make its sample: secrets are redacted in these, then the text is cut to SAMPLE_CHARS. */
export const SAMPLE_WINDOW_BYTES = 4096;

/**
 * The start of buf[start, end) as text, quoted in an error: its first SAMPLE_WINDOW_BYTES
 * redacted, then cut to SAMPLE_CHARS (120) characters, with "…" when cut (or when `more`: the
 * line goes on beyond buf). Redacting before cutting is what keeps half a secret out of it; only
 * failures build samples, so the record path pays nothing for it.
 */
export function sampleOf(buf: Uint8Array, start: number, end: number, secrets: ReadonlySet<string>, more = false): string {
  const length = Math.min(end - start, SAMPLE_WINDOW_BYTES);
  const text = Buffer.from(buf.buffer, buf.byteOffset + start, length).toString('utf8');
  return quote(text, secrets, SAMPLE_CHARS, more || end - start > length);
}

export type ReadLinesOptions = {
  /** Called with the size of each chunk read: the stream's activity (runner/sync/watchdog.ts). */
  onChunk?: (bytes: number) => void;
} & (
  | {
      /** Whose output this is: a line over the limit is that connector's protocol error. */
      origin: 'source' | 'destination';
      truncate?: false;
    }
  | {
      /**
       * Cut a longer line to maxLineBytes and drop the rest of it, instead of throwing
       * LineTooLongError: for stderr, where a line is only ever shown, never parsed.
       */
      truncate: true;
    }
);

/**
 * Lines (without the newline) as Buffers, each a slice of what was read when it fits in one
 * chunk. For low-volume streams; the record path uses pipe.ts. At most maxLineBytes of a line
 * are held.
 */
export async function* readLines(stream: Readable, maxLineBytes: number, options: ReadLinesOptions): AsyncGenerator<Buffer> {
  const { onChunk } = options;
  // Set unless lines are truncated: then a line over the limit is its connector's error.
  const origin = options.truncate === true ? undefined : options.origin;
  // The start of a line whose end has not arrived yet.
  let parts: Buffer[] = [];
  let partsLength = 0;
  let lineNumber = 1;
  /** Adds buf[s, e) to the line being carried; beyond maxLineBytes it throws or drops. */
  const carry = (buf: Buffer, s: number, e: number): void => {
    const room = maxLineBytes - partsLength;
    if (e - s > room) {
      if (origin) throw new LineTooLongError(origin, maxLineBytes, lineNumber);
      e = s + room;
    }
    if (e > s) {
      parts.push(buf.subarray(s, e));
      partsLength += e - s;
    }
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    onChunk?.(chunk.length);
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      if (parts.length === 0) {
        if (nl - start > maxLineBytes) {
          if (origin) throw new LineTooLongError(origin, maxLineBytes, lineNumber);
          yield chunk.subarray(start, start + maxLineBytes);
        } else {
          yield chunk.subarray(start, nl);
        }
      } else {
        carry(chunk, start, nl);
        yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, partsLength);
        parts = [];
        partsLength = 0;
      }
      lineNumber++;
      start = nl + 1;
    }
    if (start < chunk.length) carry(chunk, start, chunk.length);
  }
  if (partsLength > 0) yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, partsLength);
}

/**
 * Keeps the last `size` lines of a stream (a connector's stderr) as they came, and gives them
 * redacted, each cut to `maxLength` characters after redaction. The lines are kept raw because
 * the secrets may not all be known yet when they arrive (a spec still on its way); each is held
 * to 4 × maxLength characters, a cut that redactCut accounts for.
 */
export class TailBuffer {
  private readonly lines: { text: string; cut: boolean }[] = [];
  constructor(private readonly size: number, private readonly maxLength = 1000) {}

  /** `cut`: the line was already cut short upstream (a byte bound). */
  push(line: string, cut = false): void {
    const hold = 4 * this.maxLength;
    this.lines.push(line.length > hold ? { text: line.slice(0, hold), cut: true } : { text: line, cut });
    if (this.lines.length > this.size) this.lines.shift();
  }

  get(secrets: ReadonlySet<string>): string[] {
    return this.lines.map((l) => quote(l.text, secrets, this.maxLength, l.cut));
  }
}
