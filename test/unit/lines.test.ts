import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineTooLongError, TailBuffer, describeBytes, readLines, sampleOf } from '../../runner/records/lines.js';

const NO_SECRETS: ReadonlySet<string> = new Set();

async function lines(chunks: string[], max = 1024): Promise<string[]> {
  const out: string[] = [];
  for await (const line of readLines(Readable.from(chunks.map((c) => Buffer.from(c))), max, { origin: 'source' })) out.push(line.toString('utf8'));
  return out;
}

async function lines2(stream: Readable): Promise<number> {
  let n = 0;
  for await (const line of readLines(stream, 1000, { origin: 'source' })) n += line.length;
  return n;
}

async function lineError(chunks: string[], max: number): Promise<unknown> {
  try {
    await lines(chunks, max);
  } catch (err) {
    return err;
  }
  throw new Error('no error');
}

describe('readLines', () => {
  it('splits one chunk into lines', async () => {
    expect(await lines(['a\nbb\nccc\n'])).toEqual(['a', 'bb', 'ccc']);
  });

  it('joins lines split across chunks', async () => {
    expect(await lines(['he', 'llo\nwo', 'r', 'ld\n'])).toEqual(['hello', 'world']);
  });

  it('handles a newline at a chunk boundary and empty chunks', async () => {
    expect(await lines(['abc', '\n', '', 'def\n', '\nghi'])).toEqual(['abc', 'def', '', 'ghi']);
  });

  it('gives the same lines whatever the chunking', async () => {
    const text = 'first line\n\nthird {"x":1}\nzoë 😀\nlast';
    const bytes = Buffer.from(text);
    const expected = text.split('\n');
    for (let size = 1; size <= bytes.length; size += 3) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      const got: string[] = [];
      for await (const line of readLines(Readable.from(chunks), 100, { origin: 'source' })) got.push(line.toString('utf8'));
      expect(got, `chunk size ${size}`).toEqual(expected);
    }
  });

  it('keeps empty lines', async () => {
    expect(await lines(['a\n\n\nb\n'])).toEqual(['a', '', '', 'b']);
  });

  it('does not treat CRLF specially', async () => {
    expect(await lines(['a\r\nb\r', '\n'])).toEqual(['a\r', 'b\r']);
  });

  it('yields a last line without a newline', async () => {
    expect(await lines(['a\nlast'])).toEqual(['a', 'last']);
    expect(await lines(['par', 'tial'])).toEqual(['partial']);
  });

  it('yields nothing for an empty stream', async () => {
    expect(await lines([])).toEqual([]);
  });

  it('accepts a line of exactly the limit', async () => {
    expect(await lines(['x'.repeat(10) + '\n', 'y'.repeat(5), 'y'.repeat(5)], 10)).toEqual(['x'.repeat(10), 'y'.repeat(10)]);
  });

  it('throws LineTooLongError for a long line within one chunk', async () => {
    const err = await lineError(['ok\n' + 'x'.repeat(11) + '\nmore\n'], 10);
    expect(err).toBeInstanceOf(LineTooLongError);
    expect((err as LineTooLongError).limit).toBe(10);
    expect((err as Error).message).toContain('10 bytes');
  });

  it('throws LineTooLongError for a long line across chunks', async () => {
    expect(await lineError(['ok\nxxxx', 'xxxx', 'xxx\n'], 10)).toBeInstanceOf(LineTooLongError);
  });

  it('throws LineTooLongError for a stream that never writes a newline', async () => {
    expect(await lineError(Array.from({ length: 20 }, () => 'xxxx'), 10)).toBeInstanceOf(LineTooLongError);
  });

  it('throws LineTooLongError before the whole over-long line is buffered', async () => {
    let pulled = 0;
    function* source() {
      for (;;) {
        pulled++;
        yield Buffer.alloc(100, 0x61);
      }
    }
    await expect(async () => {
      await lines2(Readable.from(source()));
    }).rejects.toBeInstanceOf(LineTooLongError);
    expect(pulled).toBeLessThan(50);
  });

  it('names the line and the limit in LineTooLongError', async () => {
    const err = (await lineError(['a\nb\n', 'c'.repeat(20), '\n'], 16)) as LineTooLongError;
    expect(err.lineNumber).toBe(3);
    expect(err.message).toBe('source line 3 is longer than maxLineBytes (16 bytes)');
    expect(err.origin).toBe('source');
  });

  it('with truncate, cuts long lines to the limit and goes on with the next ones', async () => {
    const got: string[] = [];
    const chunks = ['ok\n' + 'x'.repeat(25) + '\nmid', 'dle' + 'y'.repeat(30), 'y'.repeat(30) + '\n', 'z'.repeat(12) + '\nend'];
    for await (const line of readLines(Readable.from(chunks.map((c) => Buffer.from(c))), 10, { truncate: true })) got.push(line.toString());
    expect(got).toEqual(['ok', 'x'.repeat(10), 'middleyyyy', 'z'.repeat(10), 'end']);
  });

  it('with truncate, holds at most the limit of a line that never ends', async () => {
    let pulled = 0;
    function* source() {
      for (let i = 0; i < 10_000; i++) {
        pulled++;
        yield Buffer.alloc(1000, 0x61);
      }
    }
    const got: Buffer[] = [];
    for await (const line of readLines(Readable.from(source()), 64, { truncate: true })) got.push(line);
    expect(pulled).toBe(10_000);
    expect(got.map((l) => l.length)).toEqual([64]);
  });

  it('reports the size of every chunk read', async () => {
    const sizes: number[] = [];
    const got: string[] = [];
    for await (const line of readLines(Readable.from([Buffer.from('a\nb'), Buffer.from('cd'), Buffer.from('\n')]), 100, { origin: 'source', onChunk: (n) => sizes.push(n) })) got.push(line.toString());
    expect(sizes).toEqual([3, 2, 1]);
    expect(got).toEqual(['a', 'bcd']);
  });

  it('yields lines that stay valid after the next chunk arrives', async () => {
    const got: Buffer[] = [];
    for await (const line of readLines(Readable.from([Buffer.from('a\nb'), Buffer.from('c\nd\n')]), 100, { origin: 'source' })) got.push(line);
    expect(got.map(String)).toEqual(['a', 'bc', 'd']);
  });
});

describe('TailBuffer', () => {
  it('keeps the last N lines in order', () => {
    const t = new TailBuffer(3);
    for (const l of ['1', '2', '3', '4', '5']) t.push(l);
    expect(t.get(NO_SECRETS)).toEqual(['3', '4', '5']);
  });

  it('keeps fewer lines when fewer were pushed', () => {
    const t = new TailBuffer(3);
    t.push('only');
    expect(t.get(NO_SECRETS)).toEqual(['only']);
    expect(new TailBuffer(3).get(NO_SECRETS)).toEqual([]);
  });

  it('truncates long lines and marks them', () => {
    const t = new TailBuffer(2, 5);
    t.push('12345');
    t.push('1234567890');
    const [exact, cut] = t.get(NO_SECRETS);
    expect(exact).toBe('12345');
    expect(cut!.startsWith('12345')).toBe(true);
    expect(cut).not.toContain('6');
    expect(cut!.length).toBeGreaterThan(5);
  });

  it('redacts before it cuts: a secret past the cut leaves no part of itself', () => {
    const t = new TailBuffer(2, 20);
    t.push('password=CutSecret-123456 and more text after it');
    expect(t.get(new Set(['CutSecret-123456']))).toEqual(['password=[redacted] …']);
  });

  it('drops the start of a secret that a cut upstream left at a line\'s end', () => {
    const t = new TailBuffer(2, 100);
    t.push('connecting with password=CutSec', true);
    expect(t.get(new Set(['CutSecret-123456']))).toEqual(['connecting with password=…']);
  });

  it('returns a copy', () => {
    const t = new TailBuffer(2);
    t.push('a');
    t.get(NO_SECRETS).push('b');
    expect(t.get(NO_SECRETS)).toEqual(['a']);
  });
});

describe('describeBytes and sampleOf', () => {
  it('describes sizes', () => {
    expect(describeBytes(64 * 1024 * 1024)).toBe('64 MiB');
    expect(describeBytes(512 * 1024)).toBe('512 KiB');
    expect(describeBytes(1000)).toBe('1000 bytes');
    expect(describeBytes(1536)).toBe('1.5 KiB (1536 bytes)');
  });

  it('quotes at most 120 characters, marking a cut', () => {
    const b = Buffer.from('x'.repeat(200));
    expect(sampleOf(b, 0, 200, NO_SECRETS)).toBe(`${'x'.repeat(120)}…`);
    expect(sampleOf(b, 0, 5, NO_SECRETS)).toBe('xxxxx');
    expect(sampleOf(b, 0, 5, NO_SECRETS, true)).toBe('xxxxx…');
  });

  it('redacts before it cuts: a secret across the 120th character leaves no part of itself', () => {
    const line = `${'x'.repeat(80)} password=CutSecret-123456 ${'y'.repeat(50)}`;
    const sample = sampleOf(Buffer.from(line), 0, line.length, new Set(['CutSecret-123456']));
    expect(sample).not.toContain('CutSec');
    expect(sample).toBe(`${'x'.repeat(80)} password=[redacted] ${'y'.repeat(120 - 80 - ' password=[redacted] '.length)}…`);
  });

  it('drops a secret\'s start that the sample window cut off', () => {
    const head = Buffer.from(`token=${'z'.repeat(100)} and sekrit-tok`);
    expect(sampleOf(head, 0, head.length, new Set(['sekrit-token-42']), true)).toBe(`token=${'z'.repeat(100)} and …`);
  });
});
