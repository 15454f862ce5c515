// The envelope writes and reads every x-tidepool-* header. Headers are taken through amqplib's own
// field-table codec here, so what is read back is what a consumer would get off the wire.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  CARRIED_HEADER_BYTES,
  HEADERS,
  STDERR_HEADER_BYTES,
  attemptOf,
  deferredHeaders,
  failureHeaders,
  firstAttemptHeaders,
  readFailure,
  readStderr,
  replayHeaders,
  replayIdOf,
  replayedAtOf,
  dueAtOf,
  withDueAt,
} from '../../shared/broker/envelope.js';
import type { FailureInfo } from '../../shared/errors.js';

const codec = createRequire(import.meta.url)('amqplib/lib/codec.js') as {
  encodeTable(buffer: Buffer, value: Record<string, unknown>, offset: number): number;
  decodeFields(slice: Buffer): Record<string, unknown>;
};

/** amqplib encodes headers into a 64 KiB scratch buffer: a table that does not fit there cannot be published. */
function overTheWire(headers: Record<string, unknown>): Record<string, unknown> {
  const buffer = Buffer.alloc(64 * 1024);
  const size = codec.encodeTable(buffer, headers, 0);
  return codec.decodeFields(buffer.subarray(4, size));
}

const failure: FailureInfo = {
  message: 'source reported: upstream unavailable',
  retryable: true,
  origin: 'source',
  type: 'transient_error',
  stderr: { source: ['connecting', 'upstream unavailable'], destination: ['waiting'] },
};

describe('the envelope, written and read back', () => {
  it('carries every header through a sync’s life: published, deferred, retried, dead-lettered, replayed', () => {
    const written = new Set<string>();
    const wire = (headers: Record<string, unknown>) => {
      for (const name of Object.keys(headers)) written.add(name);
      return overTheWire(headers);
    };
    const ids = { runnerId: 'runner-1', syncId: 's1', connectionId: 'c1' };
    const first = new Date('2025-01-01T00:00:00.000Z');
    const last = new Date('2025-01-01T00:05:00.000Z');

    const published = wire(firstAttemptHeaders({ 'x-custom': 'kept' }));
    expect(attemptOf({ headers: published }, 5)).toBe(1);

    const deferred = deferredHeaders(published);
    expect(deferred.deferrals).toBe(1);
    const onceDeferred = wire(withDueAt(deferred.headers, 500, first));
    expect(deferredHeaders(onceDeferred).deferrals).toBe(2);
    expect(dueAtOf({ headers: onceDeferred })).toBe(first.getTime() + 500);

    const retry = wire(withDueAt(failureHeaders(onceDeferred, failure, { ...ids, attempt: 2, now: first }, false), 2000, first));
    expect(dueAtOf({ headers: retry })).toBe(first.getTime() + 2000);
    expect(attemptOf({ headers: retry }, 5)).toBe(2);
    expect(readStderr(retry)).toEqual({ source: [], destination: [] });

    const dead = wire(failureHeaders(retry, failure, { ...ids, attempt: 2, now: last }, true));
    expect(readFailure(dead)).toEqual({
      reason: failure.message,
      origin: 'source',
      type: 'transient_error',
      retryable: true,
      attempts: 2,
      runner: 'runner-1',
      firstFailureAt: first.toISOString(),
      lastFailureAt: last.toISOString(),
      syncId: 's1',
      connectionId: 'c1',
      replayed: 0,
      replayedAt: undefined,
    });
    expect(readStderr(dead)).toEqual(failure.stderr);
    // The delay it came back from is over: a dead letter carries no due time.
    expect(dueAtOf({ headers: dead })).toBeUndefined();

    const at = new Date('2025-01-02T00:00:00.000Z');
    const replayed = wire(replayHeaders({ ...dead, 'x-death': [{ reason: 'expired' }], 'x-delivery-count': 4 }, { replayed: 1, at, replayId: 'r-1' }));
    expect(replayed).toEqual({
      'x-custom': 'kept',
      [HEADERS.attempt]: 1,
      [HEADERS.syncId]: 's1',
      [HEADERS.connectionId]: 'c1',
      [HEADERS.replayed]: 1,
      [HEADERS.replayedAt]: at.toISOString(),
      [HEADERS.replayId]: 'r-1',
    });
    expect(attemptOf({ headers: replayed }, 5)).toBe(1);
    expect(replayedAtOf({ headers: replayed })).toBe(at.getTime());
    expect(replayIdOf(replayed)).toBe('r-1');
    expect(readFailure(replayed)).toMatchObject({ replayed: 1, replayedAt: at.toISOString(), reason: undefined });

    // Every header the envelope knows was written on the way (and only those, besides the caller's
    // own), but the one naming headers too big to carry: none was.
    expect([...written].filter((n) => n !== 'x-custom').sort()).toEqual(Object.values(HEADERS).filter((n) => n !== HEADERS.droppedHeaders).sort());
  });

  it('keeps the first failure time across retries and drops the broker’s bookkeeping', () => {
    const earlier = failureHeaders(undefined, failure, { attempt: 2, runnerId: 'r', now: new Date('2025-01-01T00:00:00.000Z') }, false);
    const later = failureHeaders({ ...earlier, 'x-death': [], 'x-first-death-reason': 'expired', 'x-delivery-count': 2 }, failure, { attempt: 3, runnerId: 'r', now: new Date('2025-01-01T01:00:00.000Z') }, false);
    expect(later[HEADERS.firstFailureAt]).toBe('2025-01-01T00:00:00.000Z');
    expect(later[HEADERS.lastFailureAt]).toBe('2025-01-01T01:00:00.000Z');
    expect(Object.keys(later).filter((n) => !n.startsWith('x-tidepool-'))).toEqual([]);
  });
});

describe('hostile headers', () => {
  it('an attempt that is no whole number ≥ 1 is the first', () => {
    for (const value of ['abc', '', '2.5', '-3', 0, -1, 2.5, null, {}, [], true, '9'.repeat(400), Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(attemptOf({ headers: { [HEADERS.attempt]: value } }, 5), JSON.stringify(value)).toBe(1);
    }
    expect(attemptOf({ headers: undefined }, 5)).toBe(1);
    expect(attemptOf({ headers: {} }, 5)).toBe(1);
    expect(attemptOf({ headers: { [HEADERS.attempt]: '3' } }, 5)).toBe(3);
    expect(attemptOf({ headers: { [HEADERS.attempt]: 4 } }, 5)).toBe(4);
  });

  it('an attempt above maxAttempts is the last attempt, not trusted as written', () => {
    expect(attemptOf({ headers: { [HEADERS.attempt]: 99 } }, 5)).toBe(5);
    expect(attemptOf({ headers: { [HEADERS.attempt]: '6' } }, 5)).toBe(5);
    expect(attemptOf({ headers: { [HEADERS.attempt]: 5 } }, 5)).toBe(5);
    expect(attemptOf({ headers: { [HEADERS.attempt]: 2 ** 53 } }, 1)).toBe(1);
  });

  it('a deferral count that is no positive whole number starts again at one', () => {
    for (const value of ['x', -2, 1.5, null, '9'.repeat(400)]) expect(deferredHeaders({ [HEADERS.deferrals]: value }).deferrals, String(value)).toBe(1);
  });

  it('huge reasons and stderr still make a dead letter that can be published', () => {
    const huge: FailureInfo = {
      ...failure,
      message: 'x'.repeat(1_000_000),
      stderr: { source: Array.from({ length: 10_000 }, (_, i) => `line ${i} ${'é'.repeat(600)}`), destination: ['y'.repeat(1_000_000)] },
    };
    const headers = failureHeaders({ 'x-custom': 'kept' }, huge, { attempt: 5, runnerId: 'r', syncId: 's', connectionId: 'c' }, true);
    expect(String(headers[HEADERS.reason])).toHaveLength(4000);
    for (const tail of [headers[HEADERS.stderrSource], headers[HEADERS.stderrDestination]]) expect(Buffer.byteLength(String(tail))).toBeLessThanOrEqual(STDERR_HEADER_BYTES);
    const read = readStderr(overTheWire(headers));
    expect(read.source.at(-1)).toMatch(/^line 9999 /);
    expect(read.destination).toEqual(['y'.repeat(500)]);
  });

  it('reads what it can of headers of the wrong type, and nothing of garbage', () => {
    const read = readFailure({
      [HEADERS.reason]: 42,
      [HEADERS.origin]: Buffer.from('source'),
      [HEADERS.type]: '',
      [HEADERS.retryable]: 'yes',
      [HEADERS.attempt]: 'many',
      [HEADERS.runner]: { nested: true },
      [HEADERS.firstFailureAt]: 'not a date',
      [HEADERS.lastFailureAt]: { '!': 'timestamp', value: 1_735_689_600 },
      [HEADERS.replayed]: '2',
      [HEADERS.replayedAt]: ['2025'],
    });
    expect(read).toEqual({
      reason: '42',
      origin: 'source',
      type: undefined,
      retryable: undefined,
      attempts: undefined,
      runner: undefined,
      firstFailureAt: undefined,
      lastFailureAt: '2025-01-01T00:00:00.000Z',
      syncId: undefined,
      connectionId: undefined,
      replayed: 2,
      replayedAt: undefined,
    });
    expect(readFailure({ [HEADERS.retryable]: 'FALSE' }).retryable).toBe(false);
    expect(readStderr({ [HEADERS.stderrSource]: 'plain\ntext', [HEADERS.stderrDestination]: '[1, "two"]' })).toEqual({ source: ['plain', 'text'], destination: ['1', 'two'] });
    expect(replayedAtOf({ headers: { [HEADERS.replayedAt]: 'yesterday' } })).toBeUndefined();
    expect(replayIdOf({ [HEADERS.replayId]: 7 })).toBeUndefined();
  });
});

describe("others' headers on a republished message", () => {
  const big = 'x'.repeat(65 * 1024);
  const huge = 'é'.repeat(60 * 1024);

  it('a 65 KB header is left off and named, so the dead letter still fits and carries tidepool’s own reason', () => {
    const old = { 'x-trace': 'kept', 'x-padding': big, 'x-tidepool-sync-id': huge, 'x-small': 1 };
    const dead = overTheWire(failureHeaders(old, { ...failure, message: 'r'.repeat(10_000) }, { syncId: 's1', connectionId: 'c1', attempt: 5, runnerId: 'r' }, true));
    expect(dead[HEADERS.reason]).toBe('r'.repeat(4000));
    expect(dead[HEADERS.syncId]).toBe('s1');
    expect(dead).toMatchObject({ 'x-trace': 'kept', 'x-small': 1, [HEADERS.droppedHeaders]: 'x-padding,x-tidepool-sync-id' });
    expect(dead).not.toHaveProperty('x-padding');
  });

  it('together they get CARRIED_HEADER_BYTES; a tidepool header written bigger than tidepool writes it is dropped', () => {
    const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`x-h${i}`, 'v'.repeat(1000)]));
    const { headers } = deferredHeaders({ ...many, [HEADERS.firstFailureAt]: huge });
    const kept = Object.keys(headers).filter((n) => n.startsWith('x-h'));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.reduce((sum, n) => sum + n.length + JSON.stringify(headers[n]).length, 0)).toBeLessThanOrEqual(CARRIED_HEADER_BYTES);
    expect(String(headers[HEADERS.droppedHeaders]).split(',')).toEqual([...Object.keys(many).filter((n) => !kept.includes(n)), HEADERS.firstFailureAt]);
    expect(headers).not.toHaveProperty(HEADERS.firstFailureAt);
  });
});
