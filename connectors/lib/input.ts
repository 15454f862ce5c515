import type { Readable } from 'node:stream';

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
