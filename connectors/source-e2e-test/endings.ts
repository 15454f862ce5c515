import { readFile, writeFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { FailureType } from '../../shared/protocol.js';
import { ConfigError, ConnectorError, errorMessage } from '../lib/errors.js';
import type { Output } from '../lib/output.js';
import { errorTrace } from '../lib/trace.js';
import type { E2eSourceConfig } from './config.js';
import { ITEMS } from './records.js';

const NAME = 'source-e2e-test';
const MiB = 1024 * 1024;
// allocate: 16 MiB every 50 ms is ~320 MiB/s, past a typical test pod's limit within a second
// or two, yet slow enough for a kubelet and its metrics to see the climb.
const ALLOCATE_CHUNK = 16 * MiB;
const ALLOCATE_EVERY_MS = 50;
const ALLOCATE_REPORT = 64 * MiB;
// huge_line and stderr_flood write in pieces this size, one at a time, so memory stays flat.
const WRITE_CHUNK = MiB;
const STDERR_LINE_BYTES = 100;

/**
 * What the source does once its records are out (`then`), all output before it flushed.
 * Resolves the exit code; `hang` and `allocate` never resolve.
 */
export async function runEnding(config: E2eSourceConfig, out: Output, lastId: number): Promise<number> {
  await out.flush();
  switch (config.then) {
    case 'exit':
      return config.exitCode !== 0 && config.failureType !== undefined
        ? fail(out, config.message, config.failureType, config.exitCode)
        : exitWith(config.exitCode, config.message);
    case 'hang':
      return forever();
    case 'allocate':
      return allocate();
    case 'garbage':
      return writeLine(out, config.garbageLine);
    case 'not_protocol':
      return writeLine(out, JSON.stringify({ hello: 'world' }));
    case 'huge_line':
      // Straight to the stream Output writes to (flushed above): Output would build the line in memory.
      await writeAll(process.stdout, hugeLine(config.hugeLineBytes, lastId + 1));
      return 0;
    case 'stderr_flood':
      await writeAll(process.stderr, stderrLines(config.stderrBytes));
      return 0;
    case 'transient':
      return transient(config, out);
  }
}

function exitWith(code: number, message: string): number {
  if (code !== 0) process.stderr.write(`${NAME}: ${message}\n`);
  return code;
}

async function fail(out: Output, message: string, failureType: FailureType, code: number): Promise<number> {
  void out.message(errorTrace(new ConnectorError(message, failureType)));
  await out.flush();
  return exitWith(code, message);
}

async function writeLine(out: Output, line: string): Promise<number> {
  void out.line(line);
  await out.flush();
  return 0;
}

/** Never resolves; the timer is what keeps Node from exiting on an empty event loop. */
export function forever(): Promise<never> {
  return new Promise<never>(() => {
    setInterval(() => undefined, 60_000);
  });
}

/** Grows until the process is killed (by the kernel's OOM killer under a memory limit). */
function allocate(): Promise<never> {
  const held: Buffer[] = [];
  setInterval(() => {
    // allocUnsafe + fill writes every page, so all of it is resident; a zero-filled
    // allocation can stay unbacked by memory until touched and never reach the limit.
    held.push(Buffer.allocUnsafe(ALLOCATE_CHUNK).fill((held.length % 255) + 1));
    const bytes = held.length * ALLOCATE_CHUNK;
    if (bytes % ALLOCATE_REPORT === 0) process.stderr.write(`${NAME}: allocate: holding ${bytes / MiB} MiB\n`);
  }, ALLOCATE_EVERY_MS);
  return forever();
}

/** One RECORD line of exactly `bytes` bytes (newline excluded, unless the JSON around it is longer). */
function* hugeLine(bytes: number, id: number): Generator<string | Buffer> {
  const prefix = `{"type":"RECORD","record":{"stream":"${ITEMS.name}","emitted_at":${Date.now()},"data":{"id":${id},"blob":"`;
  const suffix = '"}}}\n';
  yield prefix;
  const filler = Buffer.alloc(WRITE_CHUNK, 'x');
  let left = Math.max(0, bytes - prefix.length - (suffix.length - 1));
  while (left > 0) {
    const size = Math.min(left, filler.length);
    yield size === filler.length ? filler : filler.subarray(0, size);
    left -= size;
  }
  yield suffix;
}

/** `bytes` bytes of numbered lines of 100 bytes each; the last one is cut short to fit. */
function* stderrLines(bytes: number): Generator<string> {
  const lineOf = (n: number): string => `${NAME}: stderr flood line ${n} `.padEnd(STDERR_LINE_BYTES - 1, '.') + '\n';
  const perChunk = Math.floor(WRITE_CHUNK / STDERR_LINE_BYTES);
  const full = Math.floor(bytes / STDERR_LINE_BYTES);
  for (let first = 1; first <= full; first += perChunk) {
    let chunk = '';
    for (let n = first; n < first + perChunk && n <= full; n += 1) chunk += lineOf(n);
    yield chunk;
  }
  const rest = bytes % STDERR_LINE_BYTES;
  if (rest > 0) yield `${lineOf(full + 1).slice(0, rest - 1)}\n`;
}

/** Writes the chunks one at a time, each once the stream has taken the previous one. */
async function writeAll(stream: Writable, chunks: Iterable<string | Buffer>): Promise<void> {
  // A failed write (EPIPE: the reader left) reaches its callback and is thrown from here; the
  // same error emitted as an event would otherwise crash the process first.
  stream.on('error', () => undefined);
  for (const chunk of chunks) {
    await new Promise<void>((resolve, reject) => {
      stream.write(chunk, (err) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }
}

/** Fails `failTimes` attempts with a transient_error, counted in `counterFile`, then succeeds. */
async function transient(config: E2eSourceConfig, out: Output): Promise<number> {
  const attempt = await countAttempt(config.counterFile!);
  if (attempt > config.failTimes) return 0;
  return fail(out, `${config.message} (attempt ${attempt} of ${config.failTimes} failing)`, 'transient_error', 1);
}

/** Read-increment-write: not atomic, which is fine for the one-at-a-time retries it counts. */
async function countAttempt(path: string): Promise<number> {
  let previous = 0;
  try {
    previous = Number((await readFile(path, 'utf8')).trim());
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) {
      throw new ConfigError(`cannot read counterFile ${path}: ${errorMessage(err)}`, { cause: err });
    }
  }
  if (!Number.isSafeInteger(previous) || previous < 0) {
    throw new ConfigError(`counterFile ${path} does not hold an attempt count`);
  }
  await writeFile(path, `${previous + 1}\n`);
  return previous + 1;
}
