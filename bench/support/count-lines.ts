// Counting the lines of a destination's output file: each bench round checks that every record
// arrived, no more and no fewer, before its timing counts.
import { createReadStream } from 'node:fs';

/** Lines in the file at `path` (a last line without a newline counts), read in 1 MiB chunks. */
export async function countLines(path: string): Promise<number> {
  let lines = 0;
  let last = 10;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
    if (chunk.length > 0) last = chunk[chunk.length - 1]!;
  }
  if (last !== 10) lines++;
  return lines;
}
