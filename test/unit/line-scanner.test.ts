import { describe, expect, it } from 'vitest';
import { LineError, LineScan, scanMessage } from '../../runner/records/line-scanner.js';
import { nativeRecordScanner } from '../../runner/records/native-scanner.js';

interface Scanned {
  type: string;
  stream: string | undefined;
  namespace: string | undefined;
}

/** Scans buf[start, end) and copies out the result (the scanner reuses its result object). */
function scanBuf(buf: Buffer, start = 0, end = buf.length): Scanned {
  const m = scanMessage(buf, start, end);
  return {
    type: m.type,
    stream: m.streamStart >= 0 ? buf.toString('utf8', m.streamStart, m.streamEnd) : undefined,
    namespace: m.namespaceStart >= 0 ? buf.toString('utf8', m.namespaceStart, m.namespaceEnd) : undefined,
  };
}

function scan(line: string): Scanned {
  return scanBuf(Buffer.from(line));
}

function scanError(line: string): LineError {
  try {
    scan(line);
  } catch (err) {
    expect(err).toBeInstanceOf(LineError);
    return err as LineError;
  }
  throw new Error(`no LineError for ${line}`);
}

describe('scanMessage: RECORD', () => {
  it('finds the stream and namespace', () => {
    expect(scan('{"type":"RECORD","record":{"stream":"users","namespace":"public","data":{"id":1},"emitted_at":1}}')).toEqual({
      type: 'RECORD',
      stream: 'users',
      namespace: 'public',
    });
  });

  it('reports no namespace when absent', () => {
    const buf = Buffer.from('{"type":"RECORD","record":{"stream":"users","data":{}}}');
    const m = scanMessage(buf, 0, buf.length);
    expect(m.namespaceStart).toBe(-1);
    expect(m.namespaceEnd).toBe(-1);
    expect(buf.toString('utf8', m.streamStart, m.streamEnd)).toBe('users');
  });

  it.each([
    ['record before type', '{"record":{"stream":"s","data":{"a":1}},"type":"RECORD"}'],
    ['data before stream', '{"type":"RECORD","record":{"data":{"a":1},"emitted_at":5,"stream":"s"}}'],
    ['Python-style spaces', '{"type": "RECORD", "record": {"stream": "s", "data": {"a": 1}, "emitted_at": 5}}'],
    ['whitespace everywhere', ' { "type" : "RECORD" ,\t"record" : { "stream" : "s" , "data" : { } } } '],
    ['extra top-level fields', '{"type":"RECORD","x":[1,{"y":"}"}],"record":{"stream":"s","data":{}},"z":null}'],
    ['namespace null', '{"type":"RECORD","record":{"stream":"s","namespace":null,"data":{}}}'],
  ])('accepts %s', (_name, line) => {
    expect(scan(line)).toMatchObject({ type: 'RECORD', stream: 's' });
  });

  it.each([
    ['escaped quote and braces in a string', String.raw`{"a\"}b":"x\"}]{["}`],
    ['nested objects and arrays', '{"a":{"b":[1,[2,{"c":[]}],{}]},"d":[[[]]]}'],
    ['brackets inside strings', '{"a":"[[[{{{","b":"]]]}}}"}'],
    ['escaped backslash before a quote', String.raw`{"a":"x\\","b":"\\\""}`],
    ['unicode', '{"name":"Zoë 😀 日本語","esc":"\\u00e9"}'],
    ['literals and numbers', '{"t":true,"f":false,"n":null,"i":-12,"x":1.5e10}'],
  ])('skips data with %s', (_name, data) => {
    expect(() => JSON.parse(data)).not.toThrow();
    expect(scan(`{"type":"RECORD","record":{"stream":"s","data":${data}}}`)).toMatchObject({ type: 'RECORD', stream: 's' });
  });

  it('does not take a "stream" key inside data for the stream', () => {
    expect(scan('{"type":"RECORD","record":{"data":{"stream":"wrong"},"stream":"right"}}').stream).toBe('right');
  });

  it('gives unicode stream names as exact byte offsets', () => {
    expect(scan('{"type":"RECORD","record":{"stream":"zoë_😀","namespace":"日本","data":{}}}')).toEqual({
      type: 'RECORD',
      stream: 'zoë_😀',
      namespace: '日本',
    });
  });
});

describe('scanMessage: other types', () => {
  it.each([
    ['STATE', '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"},"stream_state":{"c":"}"}}}}'],
    ['LOG', '{"type":"LOG","log":{"level":"INFO","message":"hello {world]"}}'],
    ['TRACE', '{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1,"error":{"message":"boom"}}}'],
    ['CONTROL', '{"type":"CONTROL","control":{"type":"CONNECTOR_CONFIG"}}'],
    ['CATALOG', '{"type":"CATALOG","catalog":{"streams":[]}}'],
    ['SOMETHING_NEW', '{"type":"SOMETHING_NEW"}'],
  ])('reads type %s', (type, line) => {
    const r = scan(line);
    expect(r.type).toBe(type);
    expect(r.stream).toBeUndefined();
  });

  it('does not leak a previous RECORD stream into the next result', () => {
    scan('{"type":"RECORD","record":{"stream":"s","namespace":"n","data":{}}}');
    expect(scan('{"type":"LOG","log":{"level":"INFO","message":"m"}}')).toEqual({ type: 'LOG', stream: undefined, namespace: undefined });
  });
});

describe('scanMessage: errors', () => {
  it.each<[string, string, RegExp]>([
    ['empty line', '', /not a JSON object/],
    ['an array', '[{"type":"LOG"}]', /not a JSON object/],
    ['a string', '"RECORD"', /not a JSON object/],
    ['plain text', 'Starting sync...', /not a JSON object/],
    ['unterminated string', '{"type":"LOG","log":{"message":"abc}}', /unterminated string/],
    ['unterminated key', '{"type', /unterminated string/],
    ['string ending in an escaped quote', '{"type":"LOG","x":"abc\\"}', /unterminated string/],
    ['mismatched brackets in a value', '{"type":"LOG","log":{"a":[1,2}', /mismatched brackets/],
    ['mismatched brackets inside record data', '{"type":"RECORD","record":{"stream":"s","data":{"a":[1}]}}', /mismatched brackets/],
    ['unclosed array in a value', '{"type":"LOG","log":{"a":[1,2', /unbalanced brackets/],
    ['missing closing brace', '{"type":"LOG"', /line ends inside the object/],
    ['missing closing brace after record', '{"type":"RECORD","record":{"stream":"s","data":{}}', /line ends inside/],
    ['no type', '{"record":{"stream":"s","data":{}}}', /no "type" field/],
    ['empty object', '{}', /no "type" field/],
    ['type not a string', '{"type":1}', /"type" is not a string/],
    ['RECORD without record', '{"type":"RECORD"}', /RECORD without a "record" object/],
    ['RECORD with record not an object', '{"type":"RECORD","record":[]}', /RECORD without a "record" object/],
    ['RECORD without stream', '{"type":"RECORD","record":{"data":{}}}', /RECORD without a "stream" name/],
    ['RECORD with a non-string stream', '{"type":"RECORD","record":{"stream":5,"data":{}}}', /"stream" is not a string/],
    ['RECORD without data', '{"type":"RECORD","record":{"stream":"s"}}', /RECORD without a "data" object/],
    ['RECORD with data an array', '{"type":"RECORD","record":{"stream":"s","data":[1]}}', /"data" is not an object/],
    ['RECORD with data a string', '{"type":"RECORD","record":{"stream":"s","data":"{}"}}', /"data" is not an object/],
    ['RECORD with data null', '{"type":"RECORD","record":{"stream":"s","data":null}}', /"data" is not an object/],
    ['trailing garbage', '{"type":"LOG","log":{}} x', /text after the JSON object/],
    ['two objects on one line', '{"type":"LOG"}{"type":"LOG"}', /text after the JSON object/],
    ['missing colon', '{"type" "LOG"}', /expected ":"/],
    ['missing comma', '{"type":"LOG" "x":1}', /expected "," or "}"/],
    ['unquoted key', '{type:"LOG"}', /expected a key/],
    ['bare word value', '{"type":"LOG","x":abc}', /unexpected character/],
    ['missing value', '{"type":"LOG","x":}', /expected a value/],
  ])('rejects %s', (_name, line, message) => {
    expect(scanError(line).message).toMatch(message);
  });
});

describe('scanMessage: sub-ranges', () => {
  it('scans one line inside a larger buffer, with offsets into that buffer', () => {
    const lines = [
      '{"type":"LOG","log":{"level":"INFO","message":"before"}}',
      '{"type":"RECORD","record":{"namespace":"ns","stream":"orders","data":{"x":"}"}}}',
      '{"type":"STATE","state":{"data":{}}}',
    ];
    const buf = Buffer.from(`${lines.join('\n')}\n`);
    const start = lines[0]!.length + 1;
    const end = start + lines[1]!.length;
    const m = scanMessage(buf, start, end);
    expect(m.type).toBe('RECORD');
    expect(m.streamStart).toBeGreaterThan(start);
    expect(m.namespaceEnd).toBeLessThan(end);
    expect(buf.toString('utf8', m.streamStart, m.streamEnd)).toBe('orders');
    expect(buf.toString('utf8', m.namespaceStart, m.namespaceEnd)).toBe('ns');

    const s3 = end + 1;
    expect(scanBuf(buf, s3, s3 + lines[2]!.length).type).toBe('STATE');
    expect(scanBuf(buf, 0, lines[0]!.length).type).toBe('LOG');
  });

  it('does not read past `end` into the next line', () => {
    // The range stops before the closing brace; the next bytes complete the object.
    const buf = Buffer.from('{"type":"LOG","log":{}}}');
    expect(() => scanMessage(buf, 0, buf.length - 2)).toThrow(LineError);
    const buf2 = Buffer.from('{"type":"RECORD","record":{"stream":"s","data":{}}}');
    expect(() => scanMessage(buf2, 0, buf2.length - 1)).toThrow(LineError);
    expect(() => scanMessage(buf2, 0, buf2.indexOf('"s"') + 2)).toThrow(LineError);
  });

  it('works on a Uint8Array view with a byte offset', () => {
    const backing = Buffer.from('xxxx{"type":"RECORD","record":{"stream":"abc","data":{}}}yyyy');
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 2, backing.length - 2);
    const m = scanMessage(view, 2, view.length - 4);
    expect(m.type).toBe('RECORD');
    expect(Buffer.from(view.subarray(m.streamStart, m.streamEnd)).toString()).toBe('abc');
  });
});

// --- property-style cross-check against JSON.parse -------------------------------------------

function makeRandom(seed: number) {
  let s = seed >>> 0;
  return (n: number): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

const ALPHABET = ['a', 'Z', '0', ' ', '"', '\\', '{', '}', '[', ']', ':', ',', '\n', '\t', 'é', '😀', '日', '\u0001', '/'];

function randomString(rand: (n: number) => number): string {
  let out = '';
  const len = rand(8);
  for (let i = 0; i < len; i++) out += ALPHABET[rand(ALPHABET.length)] ?? '';
  return out;
}

function randomValue(rand: (n: number) => number, depth: number): unknown {
  switch (rand(depth > 3 ? 4 : 6)) {
    case 0:
      return randomString(rand);
    case 1:
      return rand(2) === 0 ? rand(100000) - 50000 : rand(1000) / 7;
    case 2:
      return [true, false, null][rand(3)];
    case 3:
      return rand(2) === 0 ? {} : [];
    case 4:
      return Array.from({ length: rand(4) }, () => randomValue(rand, depth + 1));
    default:
      return randomObject(rand, depth + 1);
  }
}

function randomObject(rand: (n: number) => number, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const n = rand(5);
  for (let i = 0; i < n; i++) o[randomString(rand) + String(i)] = randomValue(rand, depth);
  return o;
}

/** JSON with random whitespace around structural characters, on one line. */
function serialize(value: unknown, rand: (n: number) => number): string {
  const ws = () => [' ', '', '', '\t', '  '][rand(5)]!;
  if (Array.isArray(value)) return `[${ws()}${value.map((v) => serialize(v, rand)).join(`${ws()},${ws()}`)}${ws()}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}${ws()}:${ws()}${serialize(v, rand)}`);
    return `{${ws()}${entries.join(`${ws()},${ws()}`)}${ws()}}`;
  }
  return JSON.stringify(value);
}

function shuffle<T>(items: T[], rand: (n: number) => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function randomMessage(rand: (n: number) => number): Record<string, unknown> {
  const type = ['RECORD', 'RECORD', 'RECORD', 'STATE', 'LOG', 'TRACE', 'CONTROL'][rand(7)]!;
  const entries: [string, unknown][] = [['type', type]];
  if (type === 'RECORD') {
    const record: [string, unknown][] = [
      ['stream', randomString(rand) + 's'],
      ['data', randomObject(rand, 0)],
      ['emitted_at', rand(1e9)],
    ];
    if (rand(2) === 0) record.push(['namespace', randomString(rand)]);
    if (rand(3) === 0) record.push(['meta', randomValue(rand, 0)]);
    entries.push(['record', Object.fromEntries(shuffle(record, rand))]);
  } else {
    entries.push([type.toLowerCase(), randomObject(rand, 0)]);
  }
  if (rand(3) === 0) entries.push(['extra', randomValue(rand, 0)]);
  return Object.fromEntries(shuffle(entries, rand));
}

describe('scanMessage: cross-check against JSON.parse', () => {
  it('agrees with JSON.parse on type, stream and namespace of random valid messages', () => {
    const rand = makeRandom(42);
    for (let i = 0; i < 500; i++) {
      const msg = randomMessage(rand);
      const line = serialize(msg, rand);
      const parsed = JSON.parse(line) as { type: string; record?: { stream: string; namespace?: string } };
      expect(parsed).toEqual(msg);
      const prefix = 'X'.repeat(rand(5));
      const buf = Buffer.from(`${prefix}${line}\n{"type":"LOG"}`);
      const start = Buffer.byteLength(prefix);
      const m = scanMessage(buf, start, start + Buffer.byteLength(line));
      expect(m.type, line).toBe(parsed.type);
      if (parsed.type === 'RECORD') {
        // Offsets cover the raw (possibly escaped) JSON string content.
        expect(JSON.parse(`"${buf.toString('utf8', m.streamStart, m.streamEnd)}"`), line).toBe(parsed.record!.stream);
        if (parsed.record!.namespace === undefined) {
          expect(m.namespaceStart, line).toBe(-1);
        } else {
          expect(JSON.parse(`"${buf.toString('utf8', m.namespaceStart, m.namespaceEnd)}"`), line).toBe(parsed.record!.namespace);
        }
      }
    }
  });

  it('rejects every strict prefix of a valid message', () => {
    const rand = makeRandom(7);
    for (let i = 0; i < 60; i++) {
      const line = serialize(randomMessage(rand), rand);
      const buf = Buffer.from(line);
      for (let end = 0; end < buf.length; end++) {
        let threw = false;
        try {
          scanMessage(buf, 0, end);
        } catch (err) {
          expect(err).toBeInstanceOf(LineError);
          threw = true;
        }
        expect(threw, `accepted a prefix: ${buf.toString('utf8', 0, end)}`).toBe(true);
      }
    }
  });
});

// --- LineScan: the same verdicts on a line fed in pieces -------------------------------------

type Verdict = { ok: true; type: string; stream: string | undefined; namespace: string | undefined } | { ok: false };

function wholeVerdict(buf: Buffer): Verdict {
  try {
    return { ok: true, ...scanBuf(buf) };
  } catch (err) {
    expect(err).toBeInstanceOf(LineError);
    return { ok: false };
  }
}

/** Feeds buf to a LineScan cut at `cuts`; the verdict, and whether it failed before the end. */
function pieceVerdict(buf: Buffer, cuts: number[]): Verdict & { early?: boolean } {
  const scan = new LineScan();
  const bounds = [0, ...cuts, buf.length];
  for (let i = 0; i + 1 < bounds.length; i++) {
    try {
      scan.push(buf, bounds[i]!, bounds[i + 1]!);
    } catch (err) {
      expect(err).toBeInstanceOf(LineError);
      return { ok: false, early: true };
    }
  }
  try {
    const m = scan.finish();
    return {
      ok: true,
      type: m.type,
      stream: m.streamStart >= 0 ? m.names.toString('utf8', m.streamStart, m.streamEnd) : undefined,
      namespace: m.namespaceStart >= 0 ? m.names.toString('utf8', m.namespaceStart, m.namespaceEnd) : undefined,
    };
  } catch (err) {
    expect(err).toBeInstanceOf(LineError);
    return { ok: false };
  }
}

function randomCuts(rand: (n: number) => number, length: number): number[] {
  return Array.from({ length: rand(4) }, () => rand(length + 1)).sort((a, b) => a - b);
}

/** A valid line with one byte replaced, inserted or removed, or cut short. */
function corrupt(line: string, rand: (n: number) => number): string {
  const at = rand(line.length);
  const ch = ['"', '\\', '{', '}', '[', ']', ':', ',', ' ', 'x', '1'][rand(11)]!;
  switch (rand(4)) {
    case 0:
      return line.slice(0, at) + ch + line.slice(at + 1);
    case 1:
      return line.slice(0, at) + ch + line.slice(at);
    case 2:
      return line.slice(0, at) + line.slice(at + 1);
    default:
      return line.slice(0, at);
  }
}

const FIXED_LINES = [
    '{"type":"RECORD","record":{"stream":"users","namespace":"public","data":{"id":1},"emitted_at":1}}',
    '{"record":{"stream":"s","data":{"a":1}},"type":"RECORD"}',
    '{"type":"RECORD","record":{"data":{"stream":"wrong"},"stream":"right"}}',
    ' { "type" : "RECORD" ,\t"record" : { "stream" : "s" , "data" : { } } } ',
    '{"type":"RECORD","record":{"stream":"zoë_😀","namespace":"日本","data":{}}}',
    String.raw`{"type":"RECORD","record":{"stream":"s","data":{"a\"}b":"x\"}]{[","t":true,"n":null,"x":-1.5e10}}}`,
    '{"type":"LOG","log":{"level":"INFO","message":"hello {world]"}}',
    '{"type":"SOMETHING_NEW"}',
    '',
    'Starting sync...',
    '{"type":"LOG","log":{"a":[1,2}',
    '{"type":"LOG","log":{"a":[1,2',
    '{"type":"RECORD","record":{"stream":5,"data":{}}}',
    '{"type":"RECORD","record":{"stream":"s","data":[1]}}',
    '{"type":"RECORD","record":{"stream":"s"}}',
    '{"type":"RECORD","record":[]}',
    '{"type":"LOG","log":{}} x',
    '{"type" "LOG"}',
    '{"type":"LOG","x":abc}',
    '{"type":"LOG","x":}',
    '{"type":"LOG","x":1,}',
    '{}',
    '{"type":""}',
    '{"hello":"world"}',
    '[{"type":"LOG"}]',
    '["type":"LOG"}',
    '"RECORD"',
];

describe('LineScan (a line in pieces) agrees with scanMessage', () => {
  it('on fixed lines, cut at every position', () => {
    for (const line of FIXED_LINES) {
      const buf = Buffer.from(line);
      const expected = wholeVerdict(buf);
      for (let cut = 0; cut <= buf.length; cut++) {
        const { early: _early, ...got } = pieceVerdict(buf, [cut]);
        expect(got, `${line} cut at ${cut}`).toEqual(expected);
      }
    }
  });

  it('on random valid and corrupted messages, cut at random positions', () => {
    const rand = makeRandom(1234);
    let invalid = 0;
    for (let i = 0; i < 3000; i++) {
      const valid = serialize(randomMessage(rand), rand);
      const line = i % 2 === 0 ? valid : corrupt(valid, rand);
      const buf = Buffer.from(line);
      const expected = wholeVerdict(buf);
      if (!expected.ok) invalid++;
      const { early: _early, ...got } = pieceVerdict(buf, randomCuts(rand, buf.length));
      expect(got, line).toEqual(expected);
    }
    // The corruptions do produce invalid lines (else this tests little).
    expect(invalid).toBeGreaterThan(500);
  });

  it('knows the type as soon as it has gone by, before the line ends', () => {
    const scan = new LineScan();
    const head = Buffer.from('{"type":"RECORD","record":{"stream":"s","data":{"blob":"');
    scan.push(head, 0, 10);
    expect(scan.type).toBeUndefined();
    scan.push(head, 10, head.length);
    expect(scan.type).toBe('RECORD');
    const filler = Buffer.alloc(1024 * 1024, 'x');
    for (let i = 0; i < 8; i++) scan.push(filler, 0, filler.length);
    const tail = Buffer.from('"}}}');
    scan.push(tail, 0, tail.length);
    const m = scan.finish();
    expect(m.names.toString('utf8', m.streamStart, m.streamEnd)).toBe('s');
    expect(scan.head.toString('utf8', 0, scan.headLength)).toBe(Buffer.concat([head, filler]).toString('utf8', 0, 120));
  });

  it('fails at the first bad byte, without waiting for the end of the line', () => {
    const scan = new LineScan();
    const line = Buffer.from('this is not json');
    expect(() => scan.push(line, 0, line.length)).toThrow(/not a JSON object/);
  });
});

// --- the fast paths: the usual RECORD prefix, long strings searched with indexOf --------------

/** A string of `len` characters heavy in quotes and backslashes, so escapes fall everywhere. */
function escapeHeavyString(rand: (n: number) => number, len: number): string {
  const chars = ['x', 'x', 'x', '"', '\\', '\\', 'é', '\n', '}'];
  let out = '';
  for (let i = 0; i < len; i++) out += chars[rand(chars.length)]!;
  return out;
}

/** A RECORD as the SDKs write it ("type", then "record" with "stream" first), with long strings. */
function sdkRecord(rand: (n: number) => number): string {
  const long = () => escapeHeavyString(rand, rand(120));
  const record: Record<string, unknown> = { stream: rand(4) === 0 ? long() : `s${rand(3)}` };
  if (rand(3) === 0) record.namespace = long();
  record.data = { [long()]: long(), pad: 'x'.repeat(rand(300)), nested: [long(), { k: long() }] };
  record.emitted_at = rand(1e9);
  const message: Record<string, unknown> = { type: 'RECORD', record };
  if (rand(4) === 0) message.extra = long();
  return JSON.stringify(message);
}

describe('scanMessage: the fast paths agree with LineScan and JSON.parse', () => {
  it('takes a usual RECORD line by its prefix and finds the same stream and namespace', () => {
    const line = '{"type":"RECORD","record":{"stream":"users","namespace":"public","data":{"id":1},"emitted_at":1}}';
    expect(scan(line)).toEqual({ type: 'RECORD', stream: 'users', namespace: 'public' });
    // What follows the prefix is checked as before: a later "type" wins, a missing "data" fails.
    expect(scan('{"type":"RECORD","record":{"stream":"s","data":{}},"type":"LOG"}').type).toBe('LOG');
    expect(scanError('{"type":"RECORD","record":{"stream":"s"}}').message).toBe('RECORD without a "data" object');
    expect(scanError('{"type":"RECORD","record":{"stream":"s","data":{}}').message).toBe('line ends inside the object');
    expect(scanError('{"type":"RECORD","record":{"stream":"s\\"}}').message).toBe('unterminated string');
  });

  it('ends long strings at the first quote not escaped, whatever the run of backslashes before it', () => {
    for (let run = 0; run <= 5; run++) {
      for (const before of [0, 20, 31, 32, 33, 40, 200]) {
        const content = `${'x'.repeat(before)}${'\\'.repeat(run)}`;
        const line = `{"type":"RECORD","record":{"stream":"s","data":{"k":"${content}"}}}`;
        // An odd run escapes the quote: the string (and the line) never ends.
        if (run % 2 === 0) expect(scan(line), line).toEqual({ type: 'RECORD', stream: 's', namespace: undefined });
        else expect(scanError(line).message, line).toBe('unterminated string');
        expect(wholeVerdict(Buffer.from(line)), line).toEqual(pieceVerdict(Buffer.from(line), []));
      }
    }
  });

  it('ends no string past its line: the next line\'s quote, escaped or not, closes nothing', () => {
    for (const content of ['', 'abc', 'x'.repeat(100), 'ab\\\\', 'ab\\"']) {
      for (const next of ['"}}}', '\\"}}}', '{"type":"STATE","state":{"data":{}}}']) {
        const first = `{"type":"RECORD","record":{"stream":"s","data":{"k":"${content}`;
        const buf = Buffer.from(`${first}\n${next}\n`);
        expect(() => scanMessage(buf, 0, first.length), first).toThrow('unterminated string');
        expect(() => scanMessage(buf, 0, first.length - 1), first).toThrow(LineError);
      }
    }
    // A key too: its quote is searched no further than the line either.
    const key = '{"type":"RECORD","record":{"stream":"s","da';
    expect(() => scanMessage(Buffer.from(`${key}\nta":{}}}`), 0, key.length)).toThrow('unterminated string');
  });

  it('takes the prefix fast path on its exact bytes only: any byte of it changed, the verdict is the piecewise scan\'s', () => {
    const prefix = '{"type":"RECORD","record":{"stream":"';
    const rest = 's","data":{"a":1},"emitted_at":1}}';
    let unlike = 0;
    for (let k = 0; k < prefix.length; k++) {
      for (const replacement of [' ', 'x', '"', '{', '}', ':', ',', '\\', 'R', 'r', '\u00e9']) {
        if (prefix[k] === replacement) continue;
        const buf = Buffer.from(prefix.slice(0, k) + replacement + prefix.slice(k + 1) + rest);
        const { early: _early, ...piecewise } = pieceVerdict(buf, []);
        const verdict = wholeVerdict(buf);
        expect(verdict, buf.toString()).toEqual(piecewise);
        if (!verdict.ok || verdict.type !== 'RECORD') unlike++;
      }
    }
    expect(unlike).toBeGreaterThan(300);
    // The prefix with nothing, or not a whole string, after it is no record either.
    for (const line of [prefix, `${prefix}"`, `${prefix}s`, `${prefix}s"`, prefix.slice(0, -1)]) expect(wholeVerdict(Buffer.from(line)), line).toEqual({ ok: false });
  });

  it('matches the record keys "data" and "emitted_at" in place only when they are exactly those keys', () => {
    const keys = ['data', 'emitted_at', 'dat', 'datax', 'Data', 'data\\"', 'd\\"ata', 'emitted_a', 'emitted_at_', 'emitted\\u005fat', 'data\\\\', ''];
    for (const key of keys) {
      for (const value of ['{"a":1}', '5', '"x"', '[]', '{']) {
        for (const line of [`{"type":"RECORD","record":{"stream":"s","${key}":${value}}}`, `{"type":"RECORD","record":{"stream":"s","${key}":${value},"data":{}}}`]) {
          const buf = Buffer.from(line);
          const { early: _early, ...piecewise } = pieceVerdict(buf, []);
          expect(wholeVerdict(buf), line).toEqual(piecewise);
        }
      }
    }
    expect(scanError('{"type":"RECORD","record":{"stream":"s","emitted_at":1}}').message).toBe('RECORD without a "data" object');
    expect(scanError('{"type":"RECORD","record":{"stream":"s","data":1}}').message).toBe('"data" is not an object');
    expect(scanError('{"type":"RECORD","record":{"stream":"s","datax":{}}}').message).toBe('RECORD without a "data" object');
    // A key cut by the line's end is unterminated, though the buffer's next byte is its quote.
    for (const key of ['data', 'emitted_at']) {
      const line = `{"type":"RECORD","record":{"stream":"s","${key}":{}}}`;
      const quote = line.indexOf(`${key}"`) + key.length;
      expect(() => scanMessage(Buffer.from(line), 0, quote), key).toThrow('unterminated string');
    }
  });

  it('on random SDK-shaped records with long escape-heavy strings, valid and corrupted', () => {
    const rand = makeRandom(99);
    let invalid = 0;
    for (let i = 0; i < 2000; i++) {
      const valid = sdkRecord(rand);
      const line = i % 2 === 0 ? valid : corrupt(valid, rand);
      const buf = Buffer.from(line);
      const expected = wholeVerdict(buf);
      if (!expected.ok) invalid++;
      else if (i % 2 === 0) {
        const parsed = JSON.parse(line) as { record: { stream: string; namespace?: string } };
        const m = scanMessage(buf, 0, buf.length);
        expect(JSON.parse(`"${buf.toString('utf8', m.streamStart, m.streamEnd)}"`), line).toBe(parsed.record.stream);
        if (parsed.record.namespace !== undefined) expect(JSON.parse(`"${buf.toString('utf8', m.namespaceStart, m.namespaceEnd)}"`), line).toBe(parsed.record.namespace);
      }
      const { early: _early, ...got } = pieceVerdict(buf, randomCuts(rand, buf.length));
      expect(got, line).toEqual(expected);
    }
    expect(invalid).toBeGreaterThan(300);
  });
});

// --- the compiled fast path (runner/records/native/record-scanner.c) -------------------------

/** What the native fast path says of one line: taken, with its stream, namespace and bytes, or not. */
function nativeVerdict(line: string): { taken: false } | { taken: true; stream: string; namespace: string | undefined; bytes: number } {
  const buf = Buffer.from(`${line}\n`);
  const out = new Int32Array(6);
  const next = nativeRecordScanner!(buf, 0, 1024 * 1024, out);
  if (next === 0) return { taken: false };
  expect(next, line).toBe(buf.length);
  expect(out[0], line).toBe(1);
  const namespace = out[4]! >= 0 ? buf.toString('utf8', out[4], out[5]) : undefined;
  return { taken: true, stream: buf.toString('utf8', out[2], out[3]), namespace, bytes: out[1]! };
}

/** A RECORD as Airbyte's SDKs write it ("type" first, "stream" first in "record"), data at random. */
function sdkRecordOfRandomData(rand: (n: number) => number): string {
  const stream = JSON.stringify(randomString(rand) + 's');
  const rest = [`"data":${serialize(randomObject(rand, 0), rand)}`, `"emitted_at":${rand(1e9)}`];
  if (rand(3) === 0) rest.push(`"namespace":${JSON.stringify(randomString(rand))}`);
  if (rand(4) === 0) rest.push(`"meta":${serialize(randomValue(rand, 0), rand)}`);
  const extra = rand(4) === 0 ? `,"extra":${serialize(randomValue(rand, 0), rand)}` : '';
  return `{"type":"RECORD","record":{"stream":${stream},${shuffle(rest, rand).join(',')}}${extra}}`;
}

describe('the native fast path takes only what scanMessage accepts, with the same result', () => {
  it('is built (scripts/build-native, run by npm run build)', () => {
    expect(nativeRecordScanner, 'dist/runner/records/native/record-scanner.node did not load').toBeTypeOf('function');
  });

  it('on SDK-shaped records, valid and corrupted, and on random messages', () => {
    const rand = makeRandom(2026);
    let taken = 0;
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      // 0: SDK-shaped, valid; 1-2: the same corrupted one to three times; 3: escape-heavy SDK
      // records (a namespace at times), corrupted half the time; 4: random messages.
      const kind = i % 5;
      let line = kind === 4 ? serialize(randomMessage(rand), rand) : kind === 3 ? sdkRecord(rand) : sdkRecordOfRandomData(rand);
      if (kind === 1 || kind === 2 || (kind === 3 && rand(2) === 0)) for (let k = rand(3) + 1; k > 0; k--) line = corrupt(line, rand);
      const expected = wholeVerdict(Buffer.from(line));
      const got = nativeVerdict(line);
      if (!got.taken) {
        // Every valid SDK-shaped record is taken: the fast path is not quietly idle.
        if (kind === 0) expect(got, line).toEqual({ taken: true });
        if (!expected.ok) refused++;
        continue;
      }
      taken++;
      expect(expected, `the fast path took a line scanMessage refuses: ${line}`).toMatchObject({ ok: true, type: 'RECORD' });
      expect(got.stream, line).toBe((expected as { stream: string }).stream);
      expect(got.namespace, line).toBe((expected as { namespace: string | undefined }).namespace);
      expect(got.bytes, line).toBe(Buffer.byteLength(line));
    }
    // Both sides are exercised: many lines taken, many invalid ones left to scanMessage.
    expect(taken).toBeGreaterThan(5_000);
    expect(refused).toBeGreaterThan(2_000);
  });

  it('on the fixed lines, cut at every position', () => {
    for (const line of [...FIXED_LINES, '{"type":"RECORD","record":{"stream":"s","data":{"a":[{"b":"}"}]},"emitted_at":1}}']) {
      for (let cut = 0; cut <= line.length; cut++) {
        const piece = line.slice(0, cut);
        const got = nativeVerdict(piece);
        if (got.taken) expect(wholeVerdict(Buffer.from(piece)), piece).toEqual({ ok: true, type: 'RECORD', stream: got.stream, namespace: got.namespace });
      }
    }
  });

  it('takes the lines the real airbyte-source-faker 7.2.1 writes (Airbyte\'s Python CDK)', () => {
    const lines = [
      '{"type":"RECORD","record":{"stream":"users","data":{"id":1,"created_at":"2001-02-03T11:53:10+00:00","updated_at":"2026-12-05T14:13:08+00:00","name":"John","title":"Mrs.","age":53,"email":"choices1984+1@duck.com","telephone":"1-688-539-5983","gender":"Fluid","language":"Khmer","academic_degree":"Master","nationality":"Latvian","occupation":"Hearing Therapist","height":"1.78","blood_type":"AB+","weight":52,"address":{"street_number":"116","street_name":"Cecilia","city":"Bowling Green","state":"Mississippi","province":"Hawaii","postal_code":"76366","country_code":"MQ"}},"emitted_at":1796479988764}}',
      '{"type":"RECORD","record":{"stream":"products","data":{"id":1,"make":"Mazda","model":"MX-5","year":2023,"price":15001,"created_at":"2024-04-08T18:07:20+00:00","updated_at":"2026-12-05T14:13:10+00:00"},"emitted_at":1796479990222}}',
    ];
    expect(lines.map(nativeVerdict)).toEqual(lines.map((line, i) => ({ taken: true, stream: ['users', 'products'][i], namespace: undefined, bytes: line.length })));
  });

  it('refuses nesting deeper than scanMessage allows, and takes it at the limit', () => {
    const nested = (depth: number) => `{"type":"RECORD","record":{"stream":"s","data":${'['.repeat(depth - 1)}{}${']'.repeat(depth - 1)}}}`.replace('"data":[', '"data":{"a":[').replace(/\]\}\}$/, ']}}}');
    const atLimit = nested(1023);
    expect(wholeVerdict(Buffer.from(atLimit)).ok).toBe(true);
    expect(nativeVerdict(atLimit).taken).toBe(true);
    const over = nested(1025);
    expect(wholeVerdict(Buffer.from(over)).ok).toBe(false);
    expect(nativeVerdict(over).taken).toBe(false);
  });

  it('takes a run of one stream and namespace only, within maxLineBytes, and stops at anything else', () => {
    const a = '{"type":"RECORD","record":{"stream":"a","data":{}}}';
    const b = '{"type":"RECORD","record":{"stream":"b","data":{}}}';
    const buf = Buffer.from(`${a}\n${a}\r\n${b}\n`);
    const out = new Int32Array(6);
    const next = nativeRecordScanner!(buf, 0, 1024, out);
    expect(next).toBe(a.length * 2 + 3); // two lines, the second with its CR
    expect([...out]).toEqual([2, a.length * 2, 37, 38, -1, -1]);
    expect(nativeRecordScanner!(buf, next, 1024, out)).toBe(buf.length);
    // The same stream in namespaces p, p, q, then none: a run ends where the namespace changes.
    const inNs = (ns: string) => `{"type":"RECORD","record":{"stream":"a","namespace":"${ns}","data":{}}}`;
    const nsBuf = Buffer.from(`${inNs('p')}\n${inNs('p')}\n${inNs('q')}\n${a}\n`);
    const afterP = nativeRecordScanner!(nsBuf, 0, 1024, out);
    expect(afterP).toBe(inNs('p').length * 2 + 2);
    expect([out[0], nsBuf.toString('utf8', out[4], out[5])]).toEqual([2, 'p']);
    const afterQ = nativeRecordScanner!(nsBuf, afterP, 1024, out);
    expect([afterQ, out[0], nsBuf.toString('utf8', out[4], out[5])]).toEqual([afterP + inNs('q').length + 1, 1, 'q']);
    expect([nativeRecordScanner!(nsBuf, afterQ, 1024, out), out[4]]).toEqual([nsBuf.length, -1]);
    // What it leaves to JavaScript: a namespace that is not a string, or given twice.
    expect(nativeVerdict('{"type":"RECORD","record":{"stream":"a","namespace":1,"data":{}}}').taken).toBe(false);
    expect(nativeVerdict('{"type":"RECORD","record":{"stream":"a","namespace":"p","namespace":"q","data":{}}}').taken).toBe(false);
    expect(nativeRecordScanner!(buf, 0, a.length - 1, out)).toBe(0); // longer than maxLineBytes
    expect(nativeRecordScanner!(Buffer.from(a), 0, 1024, out)).toBe(0); // no newline yet
    expect(nativeRecordScanner!(Buffer.from(`\n${a}\n`), 0, 1024, out)).toBe(0); // an empty line
    expect(() => nativeRecordScanner!(buf, -1, 1024, out)).toThrow(TypeError);
    expect(() => nativeRecordScanner!(buf, 0, 1024, new Int32Array(5))).toThrow(TypeError);
  });
});
