// Checks one Airbyte Protocol line *in place*, without building objects or re-encoding it.
//
// The runner sits between source and destination and sees every record. Airbyte found JSON
// re-serialization in that middle to be its CPU hot spot; JSON.parse alone allocates a whole
// object graph per record only to throw it away. This scanner walks the bytes once: it checks
// that the line is one JSON object with balanced brackets and terminated strings, reads the
// top-level "type", and for RECORD the "stream"/"namespace" strings and that "data" is an
// object. Everything else is skipped. The bytes are then forwarded untouched.
//
// It is not a full JSON validator (number syntax inside data is not checked): the destination
// parses every record anyway and fails loudly on a bad one.

export class LineError extends Error {
  override readonly name = 'LineError';
}

export interface ScannedMessage {
  type: string;
  /** RECORD only: offsets of the stream name's bytes (without quotes) in the buffer. */
  streamStart: number;
  streamEnd: number;
  /** RECORD only: namespace bytes, or -1 when absent. */
  namespaceStart: number;
  namespaceEnd: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;

// Keys we look at, as bytes.
const K_TYPE = [0x74, 0x79, 0x70, 0x65]; // type
const K_RECORD = [0x72, 0x65, 0x63, 0x6f, 0x72, 0x64]; // record
const K_STREAM = [0x73, 0x74, 0x72, 0x65, 0x61, 0x6d]; // stream
const K_NAMESPACE = [0x6e, 0x61, 0x6d, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65]; // namespace
const K_DATA = [0x64, 0x61, 0x74, 0x61]; // data

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

function keyIs(buf: Uint8Array, start: number, end: number, key: number[]): boolean {
  if (end - start !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (buf[start + i] !== key[i]) return false;
  return true;
}

/** Open brackets of the value being skipped; reused, the scanner allocates nothing per line. */
const NESTING = new Uint8Array(1024);

/** Reused result object: the scanner runs once per record, so it allocates nothing. */
const result: ScannedMessage = { type: '', streamStart: -1, streamEnd: -1, namespaceStart: -1, namespaceEnd: -1 };

// Most lines have one of a handful of types; decoding the same bytes to a new string per line
// would allocate. Known types map to interned strings.
const TYPE_NAMES = ['RECORD', 'STATE', 'LOG', 'TRACE', 'CATALOG', 'SPEC', 'CONNECTION_STATUS', 'CONTROL'];

function typeName(buf: Uint8Array, start: number, end: number): string {
  outer: for (const name of TYPE_NAMES) {
    if (end - start !== name.length) continue;
    for (let i = 0; i < name.length; i++) if (buf[start + i] !== name.charCodeAt(i)) continue outer;
    return name;
  }
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('utf8');
}

/**
 * Scans buf[start, end) — one line without its newline. Returns a shared result object (valid
 * until the next call) or throws LineError saying what is wrong.
 */
export function scanMessage(buf: Uint8Array, start: number, end: number): ScannedMessage {
  result.type = '';
  result.streamStart = result.streamEnd = result.namespaceStart = result.namespaceEnd = -1;
  let hasData = false;
  let i = skipWs(buf, start, end);
  if (i >= end || buf[i] !== OPEN_BRACE) throw new LineError('not a JSON object');
  i++;
  let recordSeen = false;
  i = skipWs(buf, i, end);
  if (buf[i] === CLOSE_BRACE) {
    i++;
  } else {
    for (;;) {
      // key
      if (buf[i] !== QUOTE) throw new LineError(`expected a key at byte ${i - start}`);
      const keyStart = i + 1;
      i = skipString(buf, i, end);
      const keyEnd = i - 1;
      i = skipWs(buf, i, end);
      if (buf[i] !== COLON) throw new LineError(`expected ":" at byte ${i - start}`);
      i = skipWs(buf, i + 1, end);
      if (i >= end) throw new LineError('line ends inside the object');
      if (keyIs(buf, keyStart, keyEnd, K_TYPE)) {
        if (buf[i] !== QUOTE) throw new LineError('"type" is not a string');
        const vStart = i + 1;
        i = skipString(buf, i, end);
        result.type = typeName(buf, vStart, i - 1);
      } else if (keyIs(buf, keyStart, keyEnd, K_RECORD) && buf[i] === OPEN_BRACE) {
        recordSeen = true;
        i = scanRecord(buf, i, end);
        hasData = recordHasData;
      } else {
        i = skipValue(buf, i, end);
      }
      i = skipWs(buf, i, end);
      if (buf[i] === COMMA) {
        i = skipWs(buf, i + 1, end);
        continue;
      }
      if (buf[i] === CLOSE_BRACE) {
        i++;
        break;
      }
      throw new LineError(i >= end ? 'line ends inside the object' : `expected "," or "}" at byte ${i - start}`);
    }
  }
  if (skipWs(buf, i, end) !== end) throw new LineError('text after the JSON object');
  if (result.type === '') throw new LineError('no "type" field');
  if (result.type === 'RECORD') {
    if (!recordSeen) throw new LineError('RECORD without a "record" object');
    if (result.streamStart < 0) throw new LineError('RECORD without a "stream" name');
    if (!hasData) throw new LineError('RECORD without a "data" object');
  }
  return result;
}

// Set by scanRecord; a module variable rather than a returned object, so a record costs no
// allocation (the profile showed GC at 4-6% of the runner's time with one object per line).
let recordHasData = false;

/** Returns the index after the record object; sets recordHasData. */
function scanRecord(buf: Uint8Array, i: number, end: number): number {
  let hasData = false;
  recordHasData = false;
  i = skipWs(buf, i + 1, end);
  if (buf[i] === CLOSE_BRACE) return i + 1;
  for (;;) {
    if (buf[i] !== QUOTE) throw new LineError('expected a key in "record"');
    const keyStart = i + 1;
    i = skipString(buf, i, end);
    const keyEnd = i - 1;
    i = skipWs(buf, i, end);
    if (buf[i] !== COLON) throw new LineError('expected ":" in "record"');
    i = skipWs(buf, i + 1, end);
    if (keyIs(buf, keyStart, keyEnd, K_STREAM)) {
      if (buf[i] !== QUOTE) throw new LineError('"stream" is not a string');
      result.streamStart = i + 1;
      i = skipString(buf, i, end);
      result.streamEnd = i - 1;
    } else if (keyIs(buf, keyStart, keyEnd, K_NAMESPACE) && buf[i] === QUOTE) {
      result.namespaceStart = i + 1;
      i = skipString(buf, i, end);
      result.namespaceEnd = i - 1;
    } else {
      if (keyIs(buf, keyStart, keyEnd, K_DATA)) {
        if (buf[i] !== OPEN_BRACE) throw new LineError('"data" is not an object');
        hasData = true;
      }
      i = skipValue(buf, i, end);
    }
    i = skipWs(buf, i, end);
    if (buf[i] === COMMA) {
      i = skipWs(buf, i + 1, end);
      continue;
    }
    if (buf[i] === CLOSE_BRACE) {
      recordHasData = hasData;
      return i + 1;
    }
    throw new LineError(i >= end ? 'line ends inside "record"' : 'expected "," or "}" in "record"');
  }
}

function skipWs(buf: Uint8Array, i: number, end: number): number {
  while (i < end && isWs(buf[i]!)) i++;
  return i;
}

/** i at the opening quote; returns the index after the closing quote. */
function skipString(buf: Uint8Array, i: number, end: number): number {
  for (let j = i + 1; j < end; j++) {
    const c = buf[j]!;
    if (c === QUOTE) return j + 1;
    if (c === BACKSLASH) j++;
  }
  throw new LineError('unterminated string');
}

function skipValue(buf: Uint8Array, i: number, end: number): number {
  const c = buf[i];
  if (c === QUOTE) return skipString(buf, i, end);
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    // Objects and arrays: a stack of the open brackets, so "[1}" is caught here and blamed on
    // the source rather than failing later in the destination. Strings are skipped whole so
    // brackets inside them do not count.
    let depth = 0;
    for (let j = i; j < end; j++) {
      const b = buf[j]!;
      if (b === QUOTE) {
        j = skipString(buf, j, end) - 1;
      } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        if (depth === NESTING.length) throw new LineError(`nested deeper than ${NESTING.length} levels`);
        NESTING[depth++] = b;
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        if (depth === 0 || NESTING[--depth] !== (b === CLOSE_BRACE ? OPEN_BRACE : OPEN_BRACKET)) {
          throw new LineError('mismatched brackets');
        }
        if (depth === 0) return j + 1;
      }
    }
    throw new LineError('unbalanced brackets');
  }
  // A literal or a number: runs to the next delimiter.
  let j = i;
  while (j < end) {
    const b = buf[j]!;
    if (b === COMMA || b === CLOSE_BRACE || b === CLOSE_BRACKET || isWs(b)) break;
    j++;
  }
  if (j === i) throw new LineError(`expected a value at byte ${i}`);
  const first = buf[i]!;
  // t(rue) f(alse) n(ull) - or a digit
  if (!(first === 0x74 || first === 0x66 || first === 0x6e || first === 0x2d || (first >= 0x30 && first <= 0x39))) {
    throw new LineError(`unexpected character "${String.fromCharCode(first)}"`);
  }
  return j;
}
