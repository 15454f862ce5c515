// The record path: source stdout → checks and counts → destination stdin, as bytes.
//
// Each chunk from the source is split on newlines; every line is checked by scanMessage (no
// objects built), runs of plain RECORD lines first by its compiled fast path where it was built
// (native-scanner.ts); runs of consecutive RECORD/STATE lines are forwarded to the destination as one
// slice of the original chunk, so in the common case a 64 KiB chunk costs one scan and one
// write. Other messages (LOG, TRACE, CONTROL) are handed to `onMessage` and not forwarded.
// Backpressure: when the destination's stdin is full we wait for 'drain' before reading more,
// so a slow destination slows the source instead of growing the runner's memory.
// Memory is bounded per line too: a line past LONG_LINE_BYTES is checked as it arrives, and a
// RECORD forwarded as it arrives, so the runner never holds a huge record whole.
import type { Readable, Writable } from 'node:stream';
import { LineError, LineScan, scanMessage } from './line-scanner.js';
import { LineTooLongError, sampleOf } from './lines.js';
import { nativeRecordScanner, type RecordRunScanner } from './native-scanner.js';
import { ProtocolError } from '../../shared/errors.js';
import type { StreamStats } from '../../shared/store/runs.js';

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
  /** Counters the pump keeps up to date, for the watchdog (runner/sync/watchdog.ts). */
  progress?: PumpProgress;
  /**
   * Bytes for the destination before anything from the source (the runner's STREAM_STATUS
   * STARTED lines), written the same way as records: counted, and subject to backpressure.
   */
  prologue?: Buffer;
  /** Redacted from the source output an error quotes, before it is cut short (runner/records/lines.ts sampleOf). */
  secrets?: ReadonlySet<string>;
  /**
   * The compiled fast path for runs of RECORD lines (runner/records/native-scanner.ts); default:
   * the native one when it was built. null: the JavaScript scanner alone (tests run both).
   */
  recordRuns?: RecordRunScanner | null;
}

/** How far the pump got, updated once per chunk read and per write, not per line. */
export class PumpProgress {
  /** Bytes read from the source's stdout. */
  read = 0;
  /** Bytes handed to the destination's stdin (some may still wait in its write buffer). */
  written = 0;
  /** The pump waits for the destination to take what it was given, and reads nothing meanwhile. */
  waiting = false;
  /** When the source's first bytes were read (epoch ms): the end of its start. */
  firstByteAt: number | undefined;
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
    const stats = this.streamOf(buf, s, e, ns, ne);
    stats.records++;
    stats.bytes += lineBytes;
  }

  /** `records` RECORD lines of one stream, named as by count(), `bytes` in all. */
  countRun(buf: Buffer, s: number, e: number, ns: number, ne: number, records: number, bytes: number): void {
    this.records += records;
    this.bytes += bytes;
    const stats = this.streamOf(buf, s, e, ns, ne);
    stats.records += records;
    stats.bytes += bytes;
  }

  private streamOf(buf: Buffer, s: number, e: number, ns: number, ne: number): StreamStats {
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
    return stats;
  }

  toJSON(): Record<string, StreamStats> {
    return Object.fromEntries(this.streams);
  }
}

const NEWLINE = Buffer.from('\n');
const NO_SECRETS: ReadonlySet<string> = new Set();

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
 * A line still unfinished past this many bytes is scanned as it arrives (LineScan) instead of
 * whole at its end; once it is known to be a RECORD its bytes go on to the destination as they
 * arrive, so the runner never holds more of it than a chunk. Other long lines (a STATE, a LOG)
 * are held up to maxLineBytes, as their handlers need them whole. Without this a 100 MiB line
 * was held up to maxLineBytes (64 MiB) before being rejected, and a long line that fits twice
 * over (its pieces, then their concatenation).
 */
const LONG_LINE_BYTES = 1024 * 1024;

/**
 * Forwarded bytes queued (the destination corked) before they are written out as one writev:
 * chunks the source had already read are sent together, up to this much.
 */
const COALESCE_BYTES = 256 * 1024;

/**
 * Lines left to the JavaScript scanner after the fast path took none at a line (a LOG, a
 * namespace, a shape it does not take) before it is tried again: a source whose records it never
 * takes costs it one try in this many lines, not one per line.
 */
const FAST_PATH_BACKOFF_LINES = 64;

/**
 * The line unfinished at the end of the last chunk: its pieces, and its length so far. Once it
 * is long, `scan` checks it as it comes; when that finds a RECORD, `streaming` is set, its bytes
 * so far are forwarded, and `pieces` stays empty until its newline.
 */
class PartialLine {
  pieces: Buffer[] = [];
  length = 0;
  scan: LineScan | undefined;
  streaming = false;

  reset(): void {
    this.pieces = [];
    this.length = 0;
    this.scan = undefined;
    this.streaming = false;
  }
}

/**
 * The checks of the record path, chunk by chunk: splits each chunk into lines, checks and counts
 * every line, and hands what is forwarded to `write` — runs of RECORD/STATE lines as slices of
 * the chunk, a line carried over from the previous chunk whole, a long RECORD as it arrives.
 */
class ChunkChecker {
  private readonly partial = new PartialLine();
  /**
   * The pieces held of a line that has just turned out to be a long RECORD. The pump sends them,
   * a flush after each (they may be many; the destination's buffer is to stay within
   * maxBuffered); nothing is forwarded after them in the chunk that made them.
   */
  backlog: Buffer[] = [];
  private lineNo = 0;
  private firstRecordSeen = false;
  private readonly maxLineBytes: number;
  private readonly secrets: ReadonlySet<string>;
  private readonly recordRuns: RecordRunScanner | undefined;
  private readonly runResult = new Int32Array(6);
  /** Lines to leave to the JavaScript scanner before trying the fast path again. */
  private fastPathBackoff = 0;

  constructor(
    private readonly stats: PumpStats,
    private readonly handlers: PumpHandlers,
    options: PumpOptions,
    private readonly write: (data: Buffer) => void,
  ) {
    this.maxLineBytes = options.maxLineBytes;
    this.secrets = options.secrets ?? NO_SECRETS;
    this.recordRuns = options.recordRuns === undefined ? nativeRecordScanner : (options.recordRuns ?? undefined);
  }

  /** A line has begun and not ended yet. */
  get unfinished(): boolean {
    return this.partial.length > 0;
  }

  /** Checks the lines of one chunk and writes what it forwards. */
  chunk(chunk: Buffer): void {
    const { partial, maxLineBytes } = this;
    let pos = 0;
    if (partial.length > 0) {
      // Finish the line carried over from the previous chunk.
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        this.extend(chunk, 0, chunk.length);
        return;
      }
      if (partial.streaming) {
        this.extend(chunk, 0, nl);
        this.endStreamed();
        this.write(NEWLINE);
      } else {
        if (partial.length + nl > maxLineBytes) throw this.tooLong();
        partial.pieces.push(chunk.subarray(0, nl + 1));
        const line = Buffer.concat(partial.pieces);
        partial.reset();
        if (this.handle(line, 0, line.length - 1)) this.write(line);
      }
      pos = nl + 1;
    }
    // Forward [forwardFrom, lineStart) as one slice; break the run at lines not forwarded.
    let forwardFrom = pos;
    let lineStart = pos;
    for (;;) {
      if (this.recordRuns) {
        if (this.fastPathBackoff === 0) lineStart = this.recordRun(chunk, lineStart);
        else this.fastPathBackoff--;
      }
      const nl = chunk.indexOf(10, lineStart);
      if (nl < 0) break;
      if (nl - lineStart > maxLineBytes) throw new LineTooLongError('source', maxLineBytes, this.lineNo + 1, sampleOf(chunk, lineStart, nl, this.secrets));
      if (!this.handle(chunk, lineStart, nl)) {
        if (lineStart > forwardFrom) this.write(chunk.subarray(forwardFrom, lineStart));
        forwardFrom = nl + 1;
      }
      lineStart = nl + 1;
    }
    if (lineStart > forwardFrom) this.write(chunk.subarray(forwardFrom, lineStart));
    if (lineStart < chunk.length) this.extend(chunk, lineStart, chunk.length);
  }

  /**
   * The fast path from buf[from]: the run of RECORD lines it takes is counted as the JavaScript
   * scanner would count it, and forwarded with the chunk. Returns where the next line starts.
   */
  private recordRun(buf: Buffer, from: number): number {
    const out = this.runResult;
    const next = this.recordRuns!(buf, from, this.maxLineBytes, out);
    if (next === from) {
      this.fastPathBackoff = FAST_PATH_BACKOFF_LINES;
      return from;
    }
    const records = out[0]!;
    this.lineNo += records;
    this.stats.countRun(buf, out[2]!, out[3]!, out[4]!, out[5]!, records, out[1]!);
    this.recordSeen();
    return next;
  }

  /** The source ended inside a line: a last line without a newline. */
  lastLine(): void {
    if (this.partial.streaming) {
      this.endStreamed();
      this.write(NEWLINE);
      return;
    }
    const line = Buffer.concat(this.partial.pieces);
    if (this.handle(line, 0, line.length)) {
      this.write(line);
      this.write(NEWLINE);
    }
  }

  /** Handles one complete line; returns true when it is to be forwarded. */
  private handle(buf: Buffer, start: number, end: number): boolean {
    this.lineNo++;
    if (end > start && buf[end - 1] === 0x0d) end--; // tolerate CRLF
    if (end === start) return false;
    let m;
    try {
      m = scanMessage(buf, start, end);
    } catch (err) {
      if (err instanceof LineError) throw this.notAMessage(err, sampleOf(buf, start, end, this.secrets));
      throw err;
    }
    if (m.type === 'RECORD') {
      this.stats.count(buf, m.streamStart, m.streamEnd, m.namespaceStart, m.namespaceEnd, end - start);
      this.recordSeen();
      return true;
    }
    if (m.type === 'STATE') {
      this.handlers.onState(buf.subarray(start, end));
      return true;
    }
    if (m.type !== 'LOG' && m.type !== 'TRACE' && m.type !== 'CONTROL') {
      throw new ProtocolError(`source line ${this.lineNo}: unexpected message type "${m.type}" during read`, 'source');
    }
    this.handlers.onMessage(m.type, buf.subarray(start, end));
    return false;
  }

  private recordSeen(): void {
    if (this.firstRecordSeen) return;
    this.firstRecordSeen = true;
    this.handlers.onFirstRecord?.();
  }

  private notAMessage(err: LineError, sample: string): ProtocolError {
    return new ProtocolError(`source line ${this.lineNo} is not an Airbyte message (${err.message}): ${sample}`, 'source');
  }

  private tooLong(): LineTooLongError {
    const { partial, secrets } = this;
    const first = partial.pieces[0];
    const sample = partial.scan ? sampleOf(partial.scan.head, 0, partial.scan.headLength, secrets, true) : first ? sampleOf(first, 0, first.length, secrets, true) : undefined;
    return new LineTooLongError('source', this.maxLineBytes, this.lineNo + 1, sample);
  }

  private scanPiece(scan: LineScan, buf: Buffer, s: number, e: number): void {
    try {
      scan.push(buf, s, e);
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      this.lineNo++;
      throw this.notAMessage(err, sampleOf(scan.head, 0, scan.headLength, this.secrets, true));
    }
  }

  /** Adds buf[s, e), which holds no newline, to the unfinished line. */
  private extend(buf: Buffer, s: number, e: number): void {
    const partial = this.partial;
    if (e === s) return;
    if (partial.length + (e - s) > this.maxLineBytes) throw this.tooLong();
    partial.length += e - s;
    if (partial.scan) this.scanPiece(partial.scan, buf, s, e);
    if (partial.streaming) {
      this.write(buf.subarray(s, e));
      return;
    }
    partial.pieces.push(s === 0 && e === buf.length ? buf : buf.subarray(s, e));
    if (partial.length <= LONG_LINE_BYTES) return;
    if (!partial.scan) {
      partial.scan = new LineScan();
      for (const piece of partial.pieces) this.scanPiece(partial.scan, piece, 0, piece.length);
    }
    if (partial.scan.type === 'RECORD') {
      // Forwarded before it is complete: if its end breaks the protocol, the sync fails and the
      // destination is stopped before the newline that would complete it.
      partial.streaming = true;
      this.backlog = partial.pieces;
      partial.pieces = [];
    }
  }

  /** The streamed line has ended: check it whole, and count it. */
  private endStreamed(): void {
    const partial = this.partial;
    const scan = partial.scan!;
    let m;
    try {
      m = scan.finish();
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      this.lineNo++;
      throw this.notAMessage(err, sampleOf(scan.head, 0, scan.headLength, this.secrets, true));
    }
    this.lineNo++;
    if (m.type !== 'RECORD') throw new ProtocolError(`source line ${this.lineNo}: "type" given twice, RECORD and then "${m.type}"`, 'source');
    this.stats.count(m.names, m.streamStart, m.streamEnd, m.namespaceStart, m.namespaceEnd, partial.length);
    this.recordSeen();
    partial.reset();
  }
}

/**
 * Pumps until the source's stdout ends. The caller then ends the destination's stdin (EOF
 * travels on: the destination flushes, echoes its last STATE and exits) — or, after a failure,
 * does not. Throws a source ProtocolError for a line that breaks the protocol, LineTooLongError
 * for a line over maxLineBytes.
 */
export async function pumpRecords(
  source: Readable,
  destination: Writable,
  stats: PumpStats,
  handlers: PumpHandlers,
  options: PumpOptions,
): Promise<void> {
  const { signal } = options;
  const maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  const coalesce = Math.min(COALESCE_BYTES, maxBuffered);
  const progress = options.progress ?? new PumpProgress();

  // What a chunk forwards is queued while the destination is corked and goes out as one writev
  // at flush(): one syscall per chunk (or per few chunks) instead of one per slice.
  const write = (data: Buffer): void => {
    if (data.length === 0) return;
    progress.written += data.length;
    destination.write(data);
  };
  const flush = async (): Promise<void> => {
    while (destination.writableCorked > 0) destination.uncork();
    if (destination.writableNeedDrain && destination.writableLength > maxBuffered) {
      if (destination.destroyed || destination.writableEnded) throw new Error('destination stdin closed');
      progress.waiting = true;
      try {
        await waitDrain(destination, signal);
      } finally {
        progress.waiting = false;
      }
    }
    destination.cork();
  };
  const checker = new ChunkChecker(stats, handlers, options, write);

  destination.cork();
  try {
    if (options.prologue) write(options.prologue);
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (signal?.aborted) return;
      if (progress.read === 0) progress.firstByteAt = Date.now();
      progress.read += chunk.length;
      checker.chunk(chunk);
      for (const piece of checker.backlog.splice(0)) {
        write(piece);
        await flush();
      }
      // Chunks the source has already read go out together, up to `coalesce` bytes.
      if (source.readableLength === 0 || destination.writableLength >= coalesce) await flush();
    }
    if (checker.unfinished && !signal?.aborted) checker.lastLine();
    await flush();
  } finally {
    // Whatever was queued when the pump stopped goes out (as it would have unqueued).
    while (destination.writableCorked > 0) destination.uncork();
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
