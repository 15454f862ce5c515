import { PassThrough, Readable, Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { LineTooLongError } from '../../runner/records/lines.js';
import { nativeRecordScanner, type RecordRunScanner } from '../../runner/records/native-scanner.js';
import { PumpProgress, PumpStats, pumpRecords as pumpRecordsWith, type PumpHandlers, type PumpOptions } from '../../runner/records/pipe.js';
import { ProtocolError } from '../../shared/errors.js';
import { streamStatusLines } from '../../runner/sync/stream-status.js';

const rec = (stream: string, data: Record<string, unknown> = { id: 1 }, namespace?: string): string =>
  JSON.stringify({ type: 'RECORD', record: { stream, ...(namespace === undefined ? {} : { namespace }), data, emitted_at: 1 } });
const state = (cursor: number): string =>
  JSON.stringify({ type: 'STATE', state: { type: 'STREAM', stream: { stream_descriptor: { name: 'users' }, stream_state: { cursor } } } });
const log = (message: string): string => JSON.stringify({ type: 'LOG', log: { level: 'INFO', message } });
const trace = (message: string): string => JSON.stringify({ type: 'TRACE', trace: { type: 'ERROR', emitted_at: 1, error: { message } } });

/** Splits text into Buffers at the given byte sizes (cycled). */
function chunked(text: string, sizes: number[] = [text.length || 1]): Buffer[] {
  const bytes = Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0, k = 0; i < bytes.length; k++) {
    const size = sizes[k % sizes.length]!;
    out.push(Buffer.from(bytes.subarray(i, i + size)));
    i += size;
  }
  return out;
}

function collector(options: { highWaterMark?: number; delayMs?: number } = {}) {
  const chunks: Buffer[] = [];
  const writable = new Writable({
    highWaterMark: options.highWaterMark ?? 16 * 1024,
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      if (options.delayMs !== undefined) setTimeout(cb, options.delayMs);
      else cb();
    },
  });
  return { writable, text: () => Buffer.concat(chunks).toString('utf8'), chunks };
}

interface Recorded {
  states: string[];
  messages: [string, string][];
  firstRecord: number;
  handlers: PumpHandlers;
}

function recorder(): Recorded {
  const r: Recorded = {
    states: [],
    messages: [],
    firstRecord: 0,
    handlers: {
      onState: (line) => r.states.push(line.toString('utf8')),
      onMessage: (type, line) => r.messages.push([type, line.toString('utf8')]),
      onFirstRecord: () => {
        r.firstRecord++;
      },
    },
  };
  return r;
}

async function pump(chunks: Buffer[], options: { maxLineBytes?: number } = {}) {
  const out = collector();
  const stats = new PumpStats();
  const r = recorder();
  await pumpRecords(Readable.from(chunks), out.writable, stats, r.handlers, { maxLineBytes: options.maxLineBytes ?? 1024 * 1024 });
  return { output: out.text(), stats, ...r, destination: out.writable };
}

async function pumpError(chunks: Buffer[], maxLineBytes = 1024 * 1024): Promise<Error> {
  try {
    await pump(chunks, { maxLineBytes });
  } catch (err) {
    return err as Error;
  }
  throw new Error('pumpRecords did not throw');
}

// Every case runs twice: with the compiled fast path for runs of RECORD lines (built by
// scripts/build-native, which `npm test` runs through scripts/setup) and with the JavaScript
// scanner alone. Both must forward, count, hand over and refuse exactly the same.
let recordRuns: RecordRunScanner | null = null;
function pumpRecords(...[source, destination, stats, handlers, options]: Parameters<typeof pumpRecordsWith>): Promise<void> {
  return pumpRecordsWith(source, destination, stats, handlers, { recordRuns, ...options } satisfies PumpOptions);
}

it('the native record scanner is built and loads', () => {
  expect(nativeRecordScanner, 'scripts/build-native did not build dist/runner/records/native/record-scanner.node').toBeTypeOf('function');
});

const SCANNERS: [string, RecordRunScanner | null][] = [
  ['native fast path', nativeRecordScanner ?? null],
  ['JavaScript scanner alone', null],
];

describe.each(SCANNERS)('%s', (_name, scanner) => {
  beforeAll(() => {
    recordRuns = scanner;
  });

describe('pumpRecords', () => {
  const lines = [
    rec('users', { id: 1, name: 'a"}b' }),
    log('starting'),
    rec('orders', { id: 10 }),
    rec('users', { id: 2, nested: { deep: [1, { x: '\\' }] } }),
    state(2),
    trace('warning'),
    rec('users', { id: 3, name: 'zoë 😀' }),
    state(3),
  ];
  const input = `${lines.join('\n')}\n`;
  const expected = `${lines.filter((l) => !l.includes('"LOG"') && !l.includes('"TRACE"')).join('\n')}\n`;

  it('forwards RECORD and STATE lines byte for byte and drops LOG/TRACE', async () => {
    const { output } = await pump(chunked(input));
    expect(output).toBe(expected);
  });

  it('gives the same output whatever the chunking', async () => {
    for (const sizes of [[1], [2, 3], [7], [64], [13, 1, 200], [input.length - 1]]) {
      const { output, stats, states, messages } = await pump(chunked(input, sizes));
      expect(output, `sizes ${sizes.join(',')}`).toBe(expected);
      expect(stats.records).toBe(4);
      expect(states).toEqual([state(2), state(3)]);
      expect(messages.map(([t]) => t)).toEqual(['LOG', 'TRACE']);
    }
  });

  it('checks a line split at any byte of the RECORD fast path (prefix, "data", "emitted_at") as one split nowhere', async () => {
    const good = rec('users', { id: 1 });
    const bad = good.replace('"RECORD"', '"RECORX"');
    const text = `${good}\n${good}\n`;
    // Every cut within the first line, through its prefix and its "data" and "emitted_at" keys.
    for (let cut = 1; cut < good.length; cut++) {
      const { output, stats } = await pump([Buffer.from(text.slice(0, cut)), Buffer.from(text.slice(cut))]);
      expect(output, `cut at ${cut}`).toBe(text);
      expect(stats.records).toBe(2);
      const err = await pumpError([Buffer.from(`${good}\n${bad}\n`.slice(0, good.length + 1 + cut)), Buffer.from(`${good}\n${bad}\n`.slice(good.length + 1 + cut))]);
      expect(err, `cut at ${cut}`).toBeInstanceOf(ProtocolError);
      expect(err.message).toMatch(/^source line 2: unexpected message type "RECORX"/);
    }
  });

  it('hands LOG and TRACE lines to onMessage, whole', async () => {
    const { messages } = await pump(chunked(input, [5]));
    expect(messages).toEqual([
      ['LOG', log('starting')],
      ['TRACE', trace('warning')],
    ]);
  });

  it('forwards CONTROL messages to onMessage, not to the destination', async () => {
    const control = JSON.stringify({ type: 'CONTROL', control: { type: 'CONNECTOR_CONFIG' } });
    const { output, messages } = await pump(chunked(`${rec('s')}\n${control}\n`));
    expect(output).toBe(`${rec('s')}\n`);
    expect(messages).toEqual([['CONTROL', control]]);
  });

  it('calls onState for every STATE line, before it reaches the destination', async () => {
    const out = collector();
    const seenBefore: boolean[] = [];
    await pumpRecords(
      Readable.from(chunked(input, [9])),
      out.writable,
      new PumpStats(),
      {
        onState: (line) => seenBefore.push(out.text().includes(line.toString('utf8'))),
        onMessage: () => undefined,
      },
      { maxLineBytes: 1 << 20 },
    );
    expect(seenBefore).toEqual([false, false]);
    expect(out.text()).toBe(expected);
  });

  it('calls onFirstRecord once', async () => {
    const { firstRecord } = await pump(chunked(input, [3]));
    expect(firstRecord).toBe(1);
  });

  it('does not call onFirstRecord without records', async () => {
    const { firstRecord, output } = await pump(chunked(`${log('x')}\n${state(1)}\n`));
    expect(firstRecord).toBe(0);
    expect(output).toBe(`${state(1)}\n`);
  });

  it('counts records and bytes per stream, keyed namespace.stream', async () => {
    const recLines = [
      rec('aaaa', { i: 1 }),
      rec('bbbb', { i: 22 }),
      rec('aaaa', { i: 333 }),
      rec('aaaa', { i: 4444 }),
      rec('aaaa', { i: 5 }, 'ns'),
      rec('bbbb', { i: 6 }),
      rec('aaaa', { i: 7 }),
    ];
    const { stats } = await pump(chunked(`${recLines.join('\n')}\n${state(1)}\n${log('x')}\n`, [17]));
    const len = (i: number) => Buffer.byteLength(recLines[i]!);
    expect(stats.records).toBe(7);
    expect(stats.bytes).toBe(recLines.reduce((n, l) => n + Buffer.byteLength(l), 0));
    expect(stats.toJSON()).toEqual({
      aaaa: { records: 4, bytes: len(0) + len(2) + len(3) + len(6) },
      bbbb: { records: 2, bytes: len(1) + len(5) },
      'ns.aaaa': { records: 1, bytes: len(4) },
    });
  });

  it('counts unicode stream names by their decoded name', async () => {
    const { stats } = await pump(chunked(`${rec('zoë')}\n${rec('zoë')}\n${rec('zoe')}\n`, [4]));
    expect(Object.fromEntries(Object.entries(stats.toJSON()).map(([k, v]) => [k, v.records]))).toEqual({ 'zoë': 2, zoe: 1 });
  });

  it('serialises its stats as JSON', async () => {
    const { stats } = await pump(chunked(`${rec('s')}\n`));
    expect(JSON.parse(JSON.stringify(stats))).toEqual({ s: { records: 1, bytes: Buffer.byteLength(rec('s')) } });
  });

  it('forwards a last line without a newline, adding the newline', async () => {
    const { output, stats } = await pump(chunked(`${rec('s')}\n${rec('t')}`, [10]));
    expect(output).toBe(`${rec('s')}\n${rec('t')}\n`);
    expect(stats.records).toBe(2);
  });

  it('forwards CRLF lines unchanged and counts them without the CR', async () => {
    const { output, stats } = await pump(chunked(`${rec('s')}\r\n${log('x')}\r\n${state(1)}\r\n`, [11]));
    expect(output).toBe(`${rec('s')}\r\n${state(1)}\r\n`);
    expect(stats.bytes).toBe(Buffer.byteLength(rec('s')));
  });

  it('skips empty lines', async () => {
    const { output } = await pump(chunked(`\n${rec('s')}\n\n\n${rec('t')}\n`, [6]));
    expect(output).toBe(`${rec('s')}\n${rec('t')}\n`);
  });

  it('does not end the destination (the caller does)', async () => {
    const { destination } = await pump(chunked(input));
    expect(destination.writableEnded).toBe(false);
    expect(destination.destroyed).toBe(false);
  });

  it('returns without error for an empty source', async () => {
    const { output, stats } = await pump([]);
    expect(output).toBe('');
    expect(stats.records).toBe(0);
    expect(stats.toJSON()).toEqual({});
  });

  it('throws a source ProtocolError naming the line number for a non-JSON line', async () => {
    const err = await pumpError(chunked(`${rec('s')}\n${log('x')}\nTraceback (most recent call last):\n${rec('s')}\n`, [5]));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/line 3\b/);
    expect(err.message).toContain('Traceback');
  });

  it('throws a source ProtocolError for a broken line carried across chunks', async () => {
    const err = await pumpError(chunked(`${rec('s')}\n{"type":"RECORD","record":{"stream":"s"}}\n`, [30]));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/line 2\b/);
    expect(err.message).toMatch(/data/);
  });

  it('throws a source ProtocolError for a last line without newline that is broken', async () => {
    const err = await pumpError(chunked(`${rec('s')}\n{"type":"RECORD"`, [8]));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/line 2\b/);
  });

  it.each(['CATALOG', 'SPEC', 'CONNECTION_STATUS', 'SURPRISE'])('throws a source ProtocolError for type %s during read', async (type) => {
    const err = await pumpError(chunked(`${rec('s')}\n{"type":"${type}","x":{}}\n`));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toContain(type);
    expect(err.message).toMatch(/line 2\b/);
  });

  it('throws LineTooLongError for an over-long line within one chunk', async () => {
    const long = rec('s', { pad: 'x'.repeat(200) });
    const err = await pumpError([Buffer.from(`${rec('s')}\n${long}\n`)], 100);
    expect(err).toBeInstanceOf(LineTooLongError);
  });

  it('throws LineTooLongError for an over-long line across chunks', async () => {
    const long = rec('s', { pad: 'x'.repeat(200) });
    for (const sizes of [[10], [90], [150], [rec('s').length + 50]]) {
      const err = await pumpError(chunked(`${rec('s')}\n${long}\n`, sizes), 100);
      expect(err, `sizes ${sizes.join(',')}`).toBeInstanceOf(LineTooLongError);
    }
  });

  it('throws LineTooLongError for a source that never writes a newline', async () => {
    const err = await pumpError(Array.from({ length: 50 }, () => Buffer.from('{"type":"RECORD",')), 100);
    expect(err).toBeInstanceOf(LineTooLongError);
  });

  it('accepts lines up to the limit', async () => {
    const line = rec('s', { pad: 'x'.repeat(50) });
    const { output } = await pump(chunked(`${line}\n${line}\n`, [7]), { maxLineBytes: Buffer.byteLength(line) });
    expect(output).toBe(`${line}\n${line}\n`);
  });

  it('waits for a slow destination and still delivers everything in order', async () => {
    const recLines = Array.from({ length: 300 }, (_, i) => rec(`s${i % 3}`, { i, pad: 'p'.repeat(i % 17) }));
    const text = `${recLines.join('\n')}\n`;
    const out = collector({ highWaterMark: 16, delayMs: 1 });
    let maxBuffered = 0;
    const source = Readable.from(
      (function* () {
        for (const c of chunked(text, [97, 5, 300])) {
          maxBuffered = Math.max(maxBuffered, out.writable.writableLength);
          yield c;
        }
      })(),
    );
    const stats = new PumpStats();
    await pumpRecords(source, out.writable, stats, recorder().handlers, { maxLineBytes: 4096, maxBufferedBytes: 0 });
    expect(out.text()).toBe(text);
    expect(stats.records).toBe(300);
    // With backpressure honoured, at most about one chunk waits in the destination's buffer.
    expect(maxBuffered).toBeLessThanOrEqual(300);
  });

  it('buffers at most maxBufferedBytes (plus one chunk) for a destination that stops reading', async () => {
    const dest = new PassThrough({ highWaterMark: 16 }); // never read
    let produced = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 10_000; i++) {
          const b = Buffer.from(`${rec('s', { i, pad: 'x'.repeat(200) })}\n`);
          produced += b.length;
          yield b;
        }
      })(),
    );
    const done = pumpRecords(source, dest, new PumpStats(), recorder().handlers, { maxLineBytes: 4096, maxBufferedBytes: 64 * 1024 });
    done.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    expect(dest.writableLength).toBeGreaterThan(32 * 1024);
    expect(dest.writableLength).toBeLessThanOrEqual(64 * 1024 + 4096);
    expect(produced).toBeLessThan(200 * 1024);
    dest.destroy();
    await expect(done).rejects.toThrow(/destination stdin closed/);
  });

  it('fails when the destination closes while it waits for drain', async () => {
    const dest = new PassThrough({ highWaterMark: 8 }); // never read: fills up at once
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 100; i++) yield Buffer.from(`${rec('s', { i })}\n`);
      })(),
    );
    const done = pumpRecords(source, dest, new PumpStats(), recorder().handlers, { maxLineBytes: 4096, maxBufferedBytes: 0 });
    setTimeout(() => dest.destroy(), 10);
    await expect(done).rejects.toThrow(/destination stdin closed/);
  });

  it('stops reading when the signal is aborted', async () => {
    const ac = new AbortController();
    const out = collector();
    let produced = 0;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 1000; i++) {
          produced++;
          if (i === 5) ac.abort();
          yield Buffer.from(`${rec('s', { i })}\n`);
        }
      })(),
    );
    await pumpRecords(source, out.writable, new PumpStats(), recorder().handlers, { maxLineBytes: 4096, signal: ac.signal });
    expect(produced).toBeLessThan(1000);
    expect(out.text().split('\n').length - 1).toBeLessThanOrEqual(6);
  });
});

describe('pumpRecords: long lines (past 1 MiB) are checked as they arrive', () => {
  const MiB = 1024 * 1024;
  /** A RECORD line of about `bytes` bytes: the bulk is one string in data. */
  const bigRecord = (bytes: number, stream = 'big'): string => rec(stream, { id: 1, blob: 'x'.repeat(bytes) });

  /** 64 KiB pieces, as a pipe delivers them. */
  const pipeChunks = (text: string) => chunked(text, [64 * 1024, 1000, 64 * 1024 - 7]);

  it('forwards a long RECORD byte for byte and counts it, with lines around it in the same chunks', async () => {
    const big = bigRecord(3 * MiB);
    const text = `${rec('a')}\n${big}\n${state(1)}\n${rec('b')}\n`;
    const { output, stats, states, firstRecord } = await pump(pipeChunks(text), { maxLineBytes: 8 * MiB });
    expect(output === text).toBe(true); // a boolean: a mismatch would print megabytes
    expect(stats.records).toBe(3);
    expect(stats.toJSON()['big']).toEqual({ records: 1, bytes: Buffer.byteLength(big) });
    expect(states).toEqual([state(1)]);
    expect(firstRecord).toBe(1);
  });

  it('forwards a long RECORD that is the last line, without a newline', async () => {
    const big = bigRecord(2 * MiB, 'ns_last');
    const { output, stats } = await pump(pipeChunks(`${rec('a')}\n${big}`), { maxLineBytes: 8 * MiB });
    expect(output === `${rec('a')}\n${big}\n`).toBe(true);
    expect(stats.toJSON()['ns_last']?.records).toBe(1);
  });

  it('handles a long RECORD whose type comes after the record (held whole, then checked)', async () => {
    const big = JSON.stringify({ record: { stream: 's', data: { blob: 'y'.repeat(2 * MiB) } }, type: 'RECORD' });
    const { output, stats } = await pump(pipeChunks(`${big}\n`), { maxLineBytes: 8 * MiB });
    expect(output === `${big}\n`).toBe(true);
    expect(stats.records).toBe(1);
  });

  it('hands a long LOG line to onMessage whole, and a long STATE to onState', async () => {
    const bigLog = log('z'.repeat(2 * MiB));
    const bigState = JSON.stringify({ type: 'STATE', state: { type: 'STREAM', stream: { stream_descriptor: { name: 'users' }, stream_state: { blob: 's'.repeat(2 * MiB) } } } });
    const { output, messages, states } = await pump(pipeChunks(`${bigLog}\n${bigState}\n${rec('a')}\n`), { maxLineBytes: 8 * MiB });
    expect(messages.length === 1 && messages[0]![0] === 'LOG' && messages[0]![1] === bigLog).toBe(true);
    expect(states.length === 1 && states[0] === bigState).toBe(true);
    expect(output === `${bigState}\n${rec('a')}\n`).toBe(true);
  });

  it('rejects a RECORD over maxLineBytes while holding none of it: what it read went on to the destination', async () => {
    const out = collector();
    const progress = new PumpProgress();
    const limit = 4 * MiB;
    const head = '{"type":"RECORD","record":{"stream":"items","data":{"id":11,"blob":"';
    const source = Readable.from(
      (function* () {
        yield Buffer.from(`${rec('a')}\n${head}`);
        const filler = Buffer.alloc(64 * 1024, 'x');
        for (let i = 0; i < 200; i++) yield filler; // 12.5 MiB, never a newline
      })(),
    );
    const err = await pumpRecords(source, out.writable, new PumpStats(), recorder().handlers, { maxLineBytes: limit, progress }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(LineTooLongError);
    expect(err.message).toMatch(/^source line 2 is longer than maxLineBytes \(4 MiB\): \{"type":"RECORD","record":\{"stream":"items"/);
    expect(err.message).toMatch(/…$/);
    // Everything up to the limit was forwarded as it came (a line is never held whole) — but
    // never its newline: the destination does not see a complete line.
    const forwarded = out.text();
    expect(forwarded.length).toBeGreaterThan(limit - 128 * 1024);
    expect(forwarded.length).toBeLessThanOrEqual(Buffer.byteLength(rec('a')) + 1 + limit);
    expect(forwarded.indexOf('\n')).toBe(Buffer.byteLength(rec('a')));
    expect(progress.written).toBe(Buffer.byteLength(forwarded));
    expect(progress.read).toBeLessThan(limit + 256 * 1024);
  });

  it('rejects a long line that is not JSON as soon as it is long, not at its end', async () => {
    let produced = 0;
    const source = Readable.from(
      (function* () {
        const filler = Buffer.alloc(64 * 1024, 'g');
        for (let i = 0; i < 1000; i++) {
          produced += filler.length;
          yield filler;
        }
      })(),
    );
    const err = await pumpRecords(source, collector().writable, new PumpStats(), recorder().handlers, { maxLineBytes: 64 * MiB }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/^source line 1 is not an Airbyte message \(not a JSON object\): g{120}…$/);
    expect(produced).toBeLessThan(2 * MiB);
  });

  it('rejects a long RECORD broken at its end, without sending the destination its newline', async () => {
    const broken = bigRecord(2 * MiB).slice(0, -1); // one closing brace short
    const out = collector();
    const err = await pumpRecords(Readable.from(pipeChunks(`${broken}\n${rec('after')}\n`)), out.writable, new PumpStats(), recorder().handlers, { maxLineBytes: 8 * MiB }).then(
      () => new Error('no error'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.message).toMatch(/^source line 1 is not an Airbyte message \(line ends inside the object\)/);
    expect(out.text()).not.toContain('\n');
  });

  it('keeps backpressure while streaming a long RECORD to a slow destination', async () => {
    const big = bigRecord(3 * MiB);
    const out = collector({ highWaterMark: 16 * 1024, delayMs: 0 });
    let maxBuffered = 0;
    const source = Readable.from(
      (function* () {
        for (const c of pipeChunks(`${big}\n${rec('a')}\n`)) {
          maxBuffered = Math.max(maxBuffered, out.writable.writableLength);
          yield c;
        }
      })(),
    );
    await pumpRecords(source, out.writable, new PumpStats(), recorder().handlers, { maxLineBytes: 8 * MiB, maxBufferedBytes: 256 * 1024 });
    await new Promise<void>((resolve) => out.writable.end(resolve));
    // Compared as a boolean: a mismatch would print megabytes.
    expect(out.text() === `${big}\n${rec('a')}\n`).toBe(true);
    expect(maxBuffered).toBeLessThanOrEqual(256 * 1024 + 128 * 1024);
  });
});

describe('pumpRecords: coalesced writes', () => {
  /** A destination that takes writev, recording each call's bytes, as a socket does. */
  function writevCollector() {
    const calls: Buffer[] = [];
    const writable = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        calls.push(Buffer.from(chunk));
        cb();
      },
      writev(chunks, cb) {
        calls.push(Buffer.concat(chunks.map((c) => c.chunk as Buffer)));
        cb();
      },
    });
    return { writable, calls, text: () => Buffer.concat(calls).toString('utf8') };
  }

  /** Lines of every kind, CRLF endings among them, and the bytes a correct pump forwards. */
  function mixed(n: number, seed: number): { input: string; expected: string } {
    let x = seed;
    const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) % 1000;
    let input = '';
    let expected = '';
    for (let i = 0; i < n; i++) {
      const eol = next() % 5 === 0 ? '\r\n' : '\n';
      const kind = next() % 10;
      const line = kind < 6 ? rec(`s${kind}`, { i, pad: 'é'.repeat(next() % 40) }) : kind < 8 ? state(i) : kind === 8 ? log(`l${i}`) : '';
      input += line + eol;
      if (kind < 8) expected += line + eol;
    }
    return { input, expected };
  }

  it('keeps every byte and its order across chunk boundaries, partial lines, CRLF and lines not forwarded', async () => {
    for (const [seed, sizes] of [[1, [1]], [2, [3, 7]], [3, [64, 1, 500]], [4, [4096]], [5, [97, 5, 300]]] as const) {
      const { input, expected } = mixed(400, seed);
      const out = writevCollector();
      const source = new PassThrough();
      // Everything is read before the pump starts: the most coalescing there can be.
      for (const c of chunked(input, [...sizes])) source.write(c);
      source.end();
      const stats = new PumpStats();
      await pumpRecords(source, out.writable, stats, recorder().handlers, { maxLineBytes: 4096 });
      expect(out.text(), `seed ${seed}`).toBe(expected);
      expect(stats.records).toBe((expected.match(/"RECORD"/g) ?? []).length);
    }
  });

  it('sends what the source had read in few writes, not one per chunk or per line', async () => {
    const { input, expected } = mixed(2000, 9);
    const chunks = chunked(input, [1000]);
    const out = writevCollector();
    const source = new PassThrough({ highWaterMark: 1024 * 1024 });
    for (const c of chunks) source.write(c);
    source.end();
    await pumpRecords(source, out.writable, new PumpStats(), recorder().handlers, { maxLineBytes: 4096 });
    expect(out.text()).toBe(expected);
    expect(out.calls.length).toBeLessThan(chunks.length / 10);
  });

  it('writes one chunk\'s slices (the line carried over, the runs around a LOG) in one call', async () => {
    const out = writevCollector();
    const text = `${rec('a')}\n${rec('b')}\n${log('x')}\n${rec('c')}\n`;
    const cut = Buffer.byteLength(`${rec('a')}\n`) + 5;
    const source = Readable.from(chunked(text, [cut, 10_000]));
    await pumpRecords(source, out.writable, new PumpStats(), recorder().handlers, { maxLineBytes: 4096 });
    expect(out.text()).toBe(`${rec('a')}\n${rec('b')}\n${rec('c')}\n`);
    // The first chunk's complete line, then one call for the rest: b (carried over) and c.
    expect(out.calls.map((c) => c.toString('utf8'))).toEqual([`${rec('a')}\n`, `${rec('b')}\n${rec('c')}\n`]);
  });
});

describe('pumpRecords: progress for the watchdog', () => {
  it('counts bytes read and written, and says when it waits for the destination', async () => {
    const dest = new PassThrough({ highWaterMark: 16 }); // never read
    const progress = new PumpProgress();
    const line = `${rec('s', { pad: 'x'.repeat(200) })}\n`;
    const source = Readable.from(
      (function* () {
        for (let i = 0; i < 1000; i++) yield Buffer.from(line);
      })(),
    );
    const done = pumpRecords(source, dest, new PumpStats(), recorder().handlers, { maxLineBytes: 4096, maxBufferedBytes: 8 * 1024, progress });
    done.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    expect(progress.waiting).toBe(true);
    expect(progress.read).toBeGreaterThan(8 * 1024);
    expect(progress.written).toBe(progress.read);
    dest.destroy();
    await expect(done).rejects.toThrow(/destination stdin closed/);
    expect(progress.waiting).toBe(false);
  });
});

describe('pumpRecords: the prologue (the runner’s STREAM_STATUS STARTED lines)', () => {
  it('goes to the destination before anything from the source, counted as written', async () => {
    const lines = streamStatusLines(
      { streams: [{ stream: { name: 'users', json_schema: {}, supported_sync_modes: ['full_refresh'] }, sync_mode: 'full_refresh', destination_sync_mode: 'overwrite' },
        { stream: { name: 'orders', namespace: 'shop', json_schema: {}, supported_sync_modes: ['full_refresh'] }, sync_mode: 'full_refresh', destination_sync_mode: 'append' }] },
      'STARTED',
      42,
    );
    expect(lines.toString('utf8')).toBe(
      '{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":42,"stream_status":{"stream_descriptor":{"name":"users"},"status":"STARTED"}}}\n' +
        '{"type":"TRACE","trace":{"type":"STREAM_STATUS","emitted_at":42,"stream_status":{"stream_descriptor":{"name":"orders","namespace":"shop"},"status":"STARTED"}}}\n',
    );
    const out = collector();
    const progress = new PumpProgress();
    const input = `${rec('users')}\n${trace('not forwarded')}\n${state(1)}\n`;
    await pumpRecords(Readable.from(chunked(input, [7])), out.writable, new PumpStats(), recorder().handlers, { maxLineBytes: 4096, progress, prologue: lines });
    expect(out.text()).toBe(`${lines.toString('utf8')}${rec('users')}\n${state(1)}\n`);
    expect(progress.written).toBe(Buffer.byteLength(out.text()));
  });
});
});
