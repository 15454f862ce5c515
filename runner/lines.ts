// Splitting a byte stream into lines with a bounded buffer: a connector that writes one
// enormous line (or never a newline) fails with a clear error instead of growing the runner's
// memory without limit.
import type { Readable } from 'node:stream';

export class LineTooLongError extends Error {
  override readonly name = 'LineTooLongError';
  constructor(readonly limit: number) {
    super(`a line longer than ${limit} bytes (the runner's maxLineBytes)`);
  }
}

/** Lines (without the newline) as Buffers. For low-volume streams; the record path uses pipe.ts. */
export async function* readLines(stream: Readable, maxLineBytes: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let partsLength = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      if (partsLength > 0) {
        parts.push(chunk.subarray(start, nl));
        if (partsLength + nl - start > maxLineBytes) throw new LineTooLongError(maxLineBytes);
        yield Buffer.concat(parts);
        parts = [];
        partsLength = 0;
      } else {
        if (nl - start > maxLineBytes) throw new LineTooLongError(maxLineBytes);
        yield chunk.subarray(start, nl);
      }
      start = nl + 1;
    }
    if (start < chunk.length) {
      parts.push(chunk.subarray(start));
      partsLength += chunk.length - start;
      if (partsLength > maxLineBytes) throw new LineTooLongError(maxLineBytes);
    }
  }
  if (partsLength > 0) yield Buffer.concat(parts);
}

/** Keeps the last `size` lines of a stream (a connector's stderr), each cut to `maxLength`. */
export class TailBuffer {
  private readonly lines: string[] = [];
  constructor(private readonly size: number, private readonly maxLength = 1000) {}

  push(line: string): void {
    this.lines.push(line.length > this.maxLength ? `${line.slice(0, this.maxLength)}…` : line);
    if (this.lines.length > this.size) this.lines.shift();
  }

  get(): string[] {
    return [...this.lines];
  }
}
