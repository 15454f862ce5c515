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

import { SAMPLE_BYTES } from './lines.js';

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
  // recordHasData needs no reset: it is read only once recordSeen, and every scan of a record sets it.
  recordSeen = false;
  let i = skipWs(buf, start, end);
  if (i >= end || buf[i] !== OPEN_BRACE) throw new LineError('not a JSON object');
  if (hasRecordPrefix(buf, i, end)) {
    // The common line, as every Airbyte SDK writes it: the generic loop below would read the same
    // "type", "record" and "stream" byte by byte and end up where this leaves it.
    result.type = 'RECORD';
    recordSeen = true;
    result.streamStart = i + RECORD_PREFIX.length;
    i = skipString(buf, result.streamStart - 1, end);
    result.streamEnd = i - 1;
    i = scanRecordMembers(buf, i, end, true, false);
    i = scanMembers(buf, i, end, start, true);
  } else {
    i = skipWs(buf, i + 1, end);
    i = buf[i] === CLOSE_BRACE ? i + 1 : scanMembers(buf, i, end, start, false);
  }
  if (skipWs(buf, i, end) !== end) throw new LineError('text after the JSON object');
  if (result.type === '') throw new LineError('no "type" field');
  if (result.type === 'RECORD') {
    if (!recordSeen) throw new LineError('RECORD without a "record" object');
    if (result.streamStart < 0) throw new LineError('RECORD without a "stream" name');
    if (!recordHasData) throw new LineError('RECORD without a "data" object');
  }
  return result;
}

/** How a RECORD line starts when its writer put "type" first and "stream" first in "record". */
const RECORD_PREFIX = Buffer.from('{"type":"RECORD","record":{"stream":"');

/**
 * Whether the line at buf[i] starts with RECORD_PREFIX and goes on past it. Unrolled, each byte
 * compared with a constant: the loop over RECORD_PREFIX's bytes it replaces cost ~23 ns more per
 * line (two loads a byte; capacity-bench records 226 -> 203 ns). The unit tests check it byte by
 * byte against RECORD_PREFIX.
 */
function hasRecordPrefix(buf: Uint8Array, i: number, end: number): boolean {
  return (
    end - i > RECORD_PREFIX.length &&
    // {"type":
    buf[i] === 0x7b && buf[i + 1] === 0x22 && buf[i + 2] === 0x74 && buf[i + 3] === 0x79 && buf[i + 4] === 0x70 && buf[i + 5] === 0x65 && buf[i + 6] === 0x22 && buf[i + 7] === 0x3a &&
    // "RECORD",
    buf[i + 8] === 0x22 && buf[i + 9] === 0x52 && buf[i + 10] === 0x45 && buf[i + 11] === 0x43 && buf[i + 12] === 0x4f && buf[i + 13] === 0x52 && buf[i + 14] === 0x44 && buf[i + 15] === 0x22 && buf[i + 16] === 0x2c &&
    // "record":
    buf[i + 17] === 0x22 && buf[i + 18] === 0x72 && buf[i + 19] === 0x65 && buf[i + 20] === 0x63 && buf[i + 21] === 0x6f && buf[i + 22] === 0x72 && buf[i + 23] === 0x64 && buf[i + 24] === 0x22 && buf[i + 25] === 0x3a &&
    // {"stream":"
    buf[i + 26] === 0x7b && buf[i + 27] === 0x22 && buf[i + 28] === 0x73 && buf[i + 29] === 0x74 && buf[i + 30] === 0x72 && buf[i + 31] === 0x65 && buf[i + 32] === 0x61 && buf[i + 33] === 0x6d && buf[i + 34] === 0x22 && buf[i + 35] === 0x3a && buf[i + 36] === 0x22
  );
}

// Set by the scan of a "record" object; module variables rather than a returned object, so a
// record costs no allocation (the profile showed GC at 4-6% of the runner's time with one
// object per line).
let recordSeen = false;
let recordHasData = false;

/**
 * The message's members from buf[i]: at a key, or (`afterValue`) just after a member's value.
 * Returns the index after the message's closing brace.
 */
function scanMembers(buf: Uint8Array, i: number, end: number, start: number, afterValue: boolean): number {
  for (;;) {
    if (!afterValue) {
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
      } else {
        i = skipValue(buf, i, end);
      }
    }
    afterValue = false;
    i = skipWs(buf, i, end);
    if (buf[i] === COMMA) {
      i = skipWs(buf, i + 1, end);
      continue;
    }
    if (buf[i] === CLOSE_BRACE) return i + 1;
    throw new LineError(i >= end ? 'line ends inside the object' : `expected "," or "}" at byte ${i - start}`);
  }
}

/** i at the record's "{"; returns the index after the record object; sets recordHasData. */
function scanRecord(buf: Uint8Array, i: number, end: number): number {
  recordHasData = false;
  i = skipWs(buf, i + 1, end);
  if (buf[i] === CLOSE_BRACE) return i + 1;
  return scanRecordMembers(buf, i, end, false, false);
}

/**
 * The record's members from buf[i]: at a key, or (`afterValue`) just after a member's value;
 * `hasData`: a "data" object was seen already. Returns the index after the record object; sets
 * recordHasData.
 */
function scanRecordMembers(buf: Uint8Array, i: number, end: number, afterValue: boolean, hasData: boolean): number {
  for (;;) {
    if (!afterValue) {
      if (buf[i] !== QUOTE) throw new LineError('expected a key in "record"');
      const keyStart = i + 1;
      i = skipRecordKey(buf, i, end);
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
    }
    afterValue = false;
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

/**
 * skipString for a key of a "record" object (i at its opening quote). "data" and "emitted_at",
 * which every record has, are matched in place with their closing quote, each byte compared with
 * a constant: bytes that spell them hold no escape, so where they end needs no search (measured
 * per capacity-bench record: 244 -> 226 ns; source-faker's: 440 -> 418 ns). Any other key is
 * searched as any string, and ends where skipString says for these two as well.
 */
function skipRecordKey(buf: Uint8Array, i: number, end: number): number {
  // data"
  if (i + 5 < end && buf[i + 1] === 0x64 && buf[i + 2] === 0x61 && buf[i + 3] === 0x74 && buf[i + 4] === 0x61 && buf[i + 5] === 0x22) return i + 6;
  // emitted_at"
  if (i + 11 < end && buf[i + 1] === 0x65 && buf[i + 2] === 0x6d && buf[i + 3] === 0x69 && buf[i + 4] === 0x74 && buf[i + 5] === 0x74 && buf[i + 6] === 0x65 && buf[i + 7] === 0x64 && buf[i + 8] === 0x5f && buf[i + 9] === 0x61 && buf[i + 10] === 0x74 && buf[i + 11] === 0x22) return i + 12;
  return skipString(buf, i, end);
}

function skipWs(buf: Uint8Array, i: number, end: number): number {
  while (i < end && isWs(buf[i]!)) i++;
  return i;
}

// Called on the scanned Uint8Array (a Buffer in the pipe): Node's indexOf takes any such view,
// and uses no `this` but the view it is called on.
// eslint-disable-next-line @typescript-eslint/unbound-method
const indexOf = (Buffer.prototype as Buffer).indexOf as (this: Uint8Array, value: number, byteOffset: number) => number;

/**
 * i at the opening quote; returns the index after the closing quote. The closing quote is
 * searched with indexOf (memchr) from the start, however short the string: measured on SDK-shaped
 * records (source-faker's) and on the capacity bench's, the native call costs less than walking
 * even a dozen bytes in JavaScript (32 bytes walked first before: 569 → 435 ns per faker line,
 * 277 → 245 ns per bench line). A quote ends the string unless an odd run of backslashes stands
 * right before it: the run is counted back from the quote, never past the opening one. A quote
 * past `end` (the next line's) ends nothing: the string is unterminated, and the line fails.
 */
function skipString(buf: Uint8Array, i: number, end: number): number {
  for (let j = i + 1; ; ) {
    const q = indexOf.call(buf, QUOTE, j);
    if (q < 0 || q >= end) return unterminated();
    if (buf[q - 1] !== BACKSLASH) return q + 1;
    let b = q - 1;
    while (b > i + 1 && buf[b - 1] === BACKSLASH) b--;
    if ((q - b) % 2 === 0) return q + 1;
    j = q + 1;
  }
}

function unterminated(): never {
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
  // A literal or a number: runs to the next delimiter. A run of digits first, one comparison a
  // byte (no digit is a delimiter): most values here are ids and timestamps (203 -> 197 ns per
  // capacity-bench record, whose "emitted_at" has 13 digits).
  let j = i;
  while (j < end && (buf[j]! - 0x30) >>> 0 < 10) j++;
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

/** What LineScan.finish() returns: as scanMessage, with the names copied into `names`. */
export interface ScannedLongMessage extends ScannedMessage {
  /** Holds the stream name and namespace the offsets point into. */
  names: Buffer;
}

// LineScan's states: where in the line the next byte is.
const S_BEGIN = 0; // before the opening "{"
const S_OPEN = 1; // after "{" of the message or the record: a key or "}"
const S_KEY_NEXT = 2; // after ",": a key
const S_KEY = 3; // inside a key
const S_COLON = 4; // after a key
const S_VALUE = 5; // after ":"
const S_CAPTURE = 6; // inside a string value kept: type, stream, namespace
const S_STRING = 7; // inside a string value skipped
const S_NESTED = 8; // inside an object or array skipped
const S_NESTED_STRING = 9; // inside a string in there
const S_LITERAL = 10; // inside a number, true, false or null
const S_AFTER_VALUE = 11; // a "," or "}"
const S_END = 12; // after the message's "}": only whitespace

// Which key's value comes next, as far as the scanner cares.
const KEY_OTHER = 0;
const KEY_TYPE = 1;
const KEY_RECORD = 2;
const KEY_STREAM = 3;
const KEY_NAMESPACE = 4;
const KEY_DATA = 5;

const KEY_BYTES = 16;
/** Longest type, stream or namespace kept: a name this long is not a name (and must not grow memory). */
const MAX_NAME_BYTES = 64 * 1024;

function keyOf(bytes: Uint8Array, length: number, inRecord: boolean): number {
  if (length > KEY_BYTES) return KEY_OTHER;
  if (!inRecord) {
    if (keyIs(bytes, 0, length, K_TYPE)) return KEY_TYPE;
    if (keyIs(bytes, 0, length, K_RECORD)) return KEY_RECORD;
    return KEY_OTHER;
  }
  if (keyIs(bytes, 0, length, K_STREAM)) return KEY_STREAM;
  if (keyIs(bytes, 0, length, K_NAMESPACE)) return KEY_NAMESPACE;
  if (keyIs(bytes, 0, length, K_DATA)) return KEY_DATA;
  return KEY_OTHER;
}

/**
 * scanMessage for a line that arrives in pieces, so the pipe can check a very long line without
 * holding it whole (a RECORD goes on to the destination as it arrives). The same checks and the
 * same result as scanMessage, as a byte-at-a-time state machine: slower, and used only for lines
 * past the pipe's long-line threshold. `type` is known as soon as the message's "type" string
 * has gone by, which is what the pipe waits for before forwarding.
 */
export class LineScan {
  /** The message's type, once its "type" value has been read. */
  type: string | undefined;
  /** The line's first SAMPLE_BYTES bytes, for error messages. */
  readonly head = Buffer.alloc(SAMPLE_BYTES);
  headLength = 0;

  private state = S_BEGIN;
  private inRecord = false;
  private key = KEY_OTHER;
  private readonly keyBytes = new Uint8Array(KEY_BYTES);
  private keyLength = 0;
  private escaped = false;
  private captured: number[] = [];
  private readonly nesting = new Uint8Array(NESTING.length);
  private depth = 0;
  private recordSeen = false;
  private dataInRecord = false;
  private hasData = false;
  private stream: number[] | undefined;
  private namespace: number[] | undefined;

  push(buf: Uint8Array, start: number, end: number): void {
    if (this.headLength < SAMPLE_BYTES) {
      const n = Math.min(end - start, SAMPLE_BYTES - this.headLength);
      this.head.set(buf.subarray(start, start + n), this.headLength);
      this.headLength += n;
    }
    let i = start;
    while (i < end) {
      const c = buf[i]!;
      switch (this.state) {
        case S_BEGIN:
          if (c === OPEN_BRACE) this.state = S_OPEN;
          else if (!isWs(c)) throw new LineError('not a JSON object');
          break;
        case S_OPEN:
        case S_KEY_NEXT:
          if (c === QUOTE) {
            this.state = S_KEY;
            this.keyLength = 0;
            this.escaped = false;
          } else if (c === CLOSE_BRACE && this.state === S_OPEN) {
            this.closeObject();
          } else if (!isWs(c)) {
            throw new LineError(this.inRecord ? 'expected a key in "record"' : 'expected a key');
          }
          break;
        case S_KEY:
          if (this.escaped) this.escaped = false;
          else if (c === BACKSLASH) this.escaped = true;
          else if (c === QUOTE) {
            this.key = keyOf(this.keyBytes, this.keyLength, this.inRecord);
            this.state = S_COLON;
            break;
          }
          if (this.keyLength < KEY_BYTES) this.keyBytes[this.keyLength] = c;
          this.keyLength++;
          break;
        case S_COLON:
          if (c === COLON) this.state = S_VALUE;
          else if (!isWs(c)) throw new LineError(this.inRecord ? 'expected ":" in "record"' : 'expected ":"');
          break;
        case S_VALUE:
          if (!isWs(c)) this.value(c);
          break;
        case S_CAPTURE:
          if (this.escaped) this.escaped = false;
          else if (c === BACKSLASH) this.escaped = true;
          else if (c === QUOTE) {
            this.captureDone();
            break;
          }
          if (this.captured.length === MAX_NAME_BYTES) throw new LineError(`a name longer than ${MAX_NAME_BYTES} bytes`);
          this.captured.push(c);
          break;
        case S_STRING:
        case S_NESTED_STRING: {
          // The bulk of a long line is string content: find its end without a switch per byte.
          let j = i;
          let escaped = this.escaped;
          for (; j < end; j++) {
            const b = buf[j]!;
            if (escaped) escaped = false;
            else if (b === BACKSLASH) escaped = true;
            else if (b === QUOTE) break;
          }
          this.escaped = escaped;
          i = j;
          if (j < end) this.state = this.state === S_STRING ? S_AFTER_VALUE : S_NESTED;
          break;
        }
        case S_NESTED:
          if (c === QUOTE) {
            this.state = S_NESTED_STRING;
            this.escaped = false;
          } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
            if (this.depth === this.nesting.length) throw new LineError(`nested deeper than ${this.nesting.length} levels`);
            this.nesting[this.depth++] = c;
          } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
            if (this.depth === 0 || this.nesting[--this.depth] !== (c === CLOSE_BRACE ? OPEN_BRACE : OPEN_BRACKET)) {
              throw new LineError('mismatched brackets');
            }
            if (this.depth === 0) this.state = S_AFTER_VALUE;
          }
          break;
        case S_LITERAL:
          if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || isWs(c)) {
            // The delimiter belongs to what follows the value: look at it again there.
            this.state = S_AFTER_VALUE;
            continue;
          }
          break;
        case S_AFTER_VALUE:
          if (c === COMMA) this.state = S_KEY_NEXT;
          else if (c === CLOSE_BRACE) this.closeObject();
          else if (!isWs(c)) throw new LineError(this.inRecord ? 'expected "," or "}" in "record"' : 'expected "," or "}"');
          break;
        case S_END:
          if (!isWs(c)) throw new LineError('text after the JSON object');
          break;
      }
      i++;
    }
  }

  /** The line has ended: the result, or a LineError saying what is wrong. */
  finish(): ScannedLongMessage {
    switch (this.state) {
      case S_END:
        break;
      case S_BEGIN:
        throw new LineError('not a JSON object');
      case S_KEY:
      case S_CAPTURE:
      case S_STRING:
        throw new LineError('unterminated string');
      case S_NESTED:
      case S_NESTED_STRING:
        throw new LineError(this.state === S_NESTED_STRING ? 'unterminated string' : 'unbalanced brackets');
      default:
        throw new LineError(this.inRecord ? 'line ends inside "record"' : 'line ends inside the object');
    }
    const type = this.type ?? '';
    if (type === '') throw new LineError('no "type" field');
    const stream = this.stream ?? [];
    const namespace = this.namespace ?? [];
    const names = Buffer.from([...stream, ...namespace]);
    const scanned: ScannedLongMessage = {
      type,
      names,
      streamStart: this.stream ? 0 : -1,
      streamEnd: this.stream ? stream.length : -1,
      namespaceStart: this.namespace ? stream.length : -1,
      namespaceEnd: this.namespace ? names.length : -1,
    };
    if (type === 'RECORD') {
      if (!this.recordSeen) throw new LineError('RECORD without a "record" object');
      if (!this.stream) throw new LineError('RECORD without a "stream" name');
      if (!this.hasData) throw new LineError('RECORD without a "data" object');
    }
    return scanned;
  }

  /** The first byte of a value (not whitespace). */
  private value(c: number): void {
    const key = this.key;
    if (key === KEY_TYPE || key === KEY_STREAM) {
      if (c !== QUOTE) throw new LineError(key === KEY_TYPE ? '"type" is not a string' : '"stream" is not a string');
      this.startCapture();
      return;
    }
    if (key === KEY_NAMESPACE && c === QUOTE) {
      this.startCapture();
      return;
    }
    if (key === KEY_RECORD && c === OPEN_BRACE) {
      this.recordSeen = true;
      this.inRecord = true;
      this.dataInRecord = false;
      this.state = S_OPEN;
      return;
    }
    if (key === KEY_DATA) {
      if (c !== OPEN_BRACE) throw new LineError('"data" is not an object');
      this.dataInRecord = true;
    }
    // Skipped, as scanMessage's skipValue.
    if (c === QUOTE) {
      this.state = S_STRING;
      this.escaped = false;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      this.nesting[0] = c;
      this.depth = 1;
      this.state = S_NESTED;
    } else if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      throw new LineError('expected a value');
    } else if (c === 0x74 || c === 0x66 || c === 0x6e || c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      this.state = S_LITERAL;
    } else {
      throw new LineError(`unexpected character "${String.fromCharCode(c)}"`);
    }
  }

  private startCapture(): void {
    this.captured = [];
    this.escaped = false;
    this.state = S_CAPTURE;
  }

  private captureDone(): void {
    if (this.key === KEY_TYPE) this.type = typeName(Uint8Array.from(this.captured), 0, this.captured.length);
    else if (this.key === KEY_STREAM) this.stream = this.captured;
    else this.namespace = this.captured;
    this.captured = [];
    this.state = S_AFTER_VALUE;
  }

  private closeObject(): void {
    if (this.inRecord) {
      this.inRecord = false;
      this.hasData = this.dataInRecord;
      this.state = S_AFTER_VALUE;
    } else {
      this.state = S_END;
    }
  }
}
