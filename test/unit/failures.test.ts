// Failure classification, the headers a failed sync carries, and the attempt history of run
// records: pure functions, no broker.
import { describe, expect, it } from 'vitest';
import { ConnectorError, InvalidMessageError, LockTimeoutError, ProtocolError, UnknownConnectionError, classifyConnectorFailure, toFailure, type FailureInfo } from '../../shared/errors.js';
import { HEADERS, STDERR_HEADER_BYTES, failureHeaders, tailWithin } from '../../shared/broker/envelope.js';
import { idsFromBody } from '../../shared/messages.js';
import { traceFailure } from '../../runner/sync/connector-output.js';
import { attemptHistory, PREVIOUS_ATTEMPTS_KEPT, type RunRecord } from '../../shared/store/runs.js';

describe('classifyConnectorFailure', () => {
  it.each([
    [{ kind: 'trace', failureType: 'config_error' }, false, 'config_error'],
    [{ kind: 'trace', failureType: 'transient_error' }, true, 'transient_error'],
    [{ kind: 'trace', failureType: 'system_error' }, true, 'system_error'],
    [{ kind: 'trace', failureType: undefined }, true, 'system_error'],
    [{ kind: 'trace', failureType: 'something_new' }, true, 'system_error'],
    [{ kind: 'exit' }, true, 'system_error'],
    [{ kind: 'protocol' }, false, 'system_error'],
    [{ kind: 'check_failed' }, false, 'config_error'],
  ] as const)('%j → retryable %s, %s', (how, retryable, type) => {
    expect(classifyConnectorFailure(how)).toEqual({ retryable, type });
  });

  it('is what a connector TRACE turns into, with the secrets of its message redacted', () => {
    const trace = (failure_type: 'config_error' | 'transient_error' | 'system_error' | undefined) => ({
      type: 'ERROR' as const,
      emitted_at: 0,
      error: { message: 'login failed for s3cr3t-pw', ...(failure_type ? { failure_type } : {}) },
    });
    const config = traceFailure(trace('config_error'), 'source', new Set(['s3cr3t-pw']));
    expect(config.toFailure()).toEqual({ message: 'source reported: login failed for [redacted]', retryable: false, origin: 'source', type: 'config_error' });
    expect(traceFailure(trace('transient_error'), 'destination', new Set()).toFailure()).toMatchObject({ retryable: true, origin: 'destination', type: 'transient_error' });
    expect(traceFailure(trace(undefined), 'source', new Set()).toFailure()).toMatchObject({ retryable: true, type: 'system_error' });
  });

  it('and what the runner raises itself', () => {
    expect(new ProtocolError('line 3 is not JSON', 'source').toFailure()).toMatchObject({ retryable: false, origin: 'source', type: 'system_error' });
    expect(ConnectorError.of({ kind: 'exit' }, 'source exited with code 3', 'source').toFailure()).toMatchObject({ retryable: true, type: 'system_error' });
    expect(new UnknownConnectionError('nope').toFailure()).toMatchObject({ retryable: false, origin: 'runner', type: 'config_error' });
    expect(new InvalidMessageError('not JSON').toFailure()).toMatchObject({ retryable: false, type: 'config_error' });
    expect(new LockTimeoutError('c', 1000).toFailure()).toMatchObject({ retryable: true, type: 'timeout' });
    expect(toFailure(new Error('ECONNRESET'))).toEqual({ message: 'ECONNRESET', retryable: true, origin: 'runner', type: 'system_error' });
  });
});

describe('failureHeaders', () => {
  const failure: FailureInfo = {
    message: 'source reported: database is restarting',
    retryable: true,
    origin: 'source',
    type: 'transient_error',
    stderr: { source: ['a', 'b'], destination: [] },
  };
  const now = new Date('2025-01-01T00:00:10.000Z');

  it('says what failed, where, when and on which runner; keeps the first failure time; drops the broker’s headers', () => {
    const old = {
      [HEADERS.attempt]: 2,
      [HEADERS.firstFailureAt]: '2025-01-01T00:00:00.000Z',
      [HEADERS.stderrSource]: '["stale"]',
      'x-death': [{ queue: 't.retry.1', reason: 'expired', count: 1 }],
      'x-first-death-reason': 'expired',
      'x-delivery-count': 3,
      'x-custom': 'kept',
    };
    const h = failureHeaders(old, failure, { attempt: 3, runnerId: 'r1', syncId: 's1', connectionId: 'c1', now }, false);
    expect(h).toEqual({
      'x-custom': 'kept',
      [HEADERS.attempt]: 3,
      [HEADERS.reason]: failure.message,
      [HEADERS.origin]: 'source',
      [HEADERS.type]: 'transient_error',
      [HEADERS.retryable]: true,
      [HEADERS.runner]: 'r1',
      [HEADERS.firstFailureAt]: '2025-01-01T00:00:00.000Z',
      [HEADERS.lastFailureAt]: '2025-01-01T00:00:10.000Z',
      [HEADERS.syncId]: 's1',
      [HEADERS.connectionId]: 'c1',
    });
  });

  it('carries the stderr tails on a dead letter, first failure = last on a first failure', () => {
    const h = failureHeaders(undefined, failure, { attempt: 1, runnerId: 'r1', now }, true);
    expect(JSON.parse(String(h[HEADERS.stderrSource]))).toEqual(['a', 'b']);
    expect(JSON.parse(String(h[HEADERS.stderrDestination]))).toEqual([]);
    expect(h[HEADERS.firstFailureAt]).toBe(h[HEADERS.lastFailureAt]);
    expect(h).not.toHaveProperty(HEADERS.syncId);
  });

  it('keeps the last stderr lines that fit the byte budget, each cut to 500 characters', () => {
    const lines = Array.from({ length: 10_000 }, (_, i) => `line ${i} ${'é'.repeat(600)}`);
    const kept = tailWithin(lines, STDERR_HEADER_BYTES);
    expect(Buffer.byteLength(JSON.stringify(kept))).toBeLessThanOrEqual(STDERR_HEADER_BYTES);
    expect(kept.at(-1)).toMatch(/^line 9999 /);
    expect(kept.every((l) => l.length === 500)).toBe(true);
    expect(tailWithin(['x', 'y'], STDERR_HEADER_BYTES)).toEqual(['x', 'y']);
  });

  it('finds the ids in a body that is JSON but not a sync request, and nothing in one that is not JSON', () => {
    expect(idsFromBody(Buffer.from('{"syncId":"s","connectionId":"c","extra":1}'))).toEqual({ syncId: 's', connectionId: 'c' });
    expect(idsFromBody(Buffer.from('{"syncId":42}'))).toEqual({});
    expect(idsFromBody(Buffer.from('{not json'))).toEqual({});
  });
});

describe('attempt history of a run record', () => {
  const base: RunRecord = {
    syncId: 's',
    connectionId: 'c',
    status: 'running',
    attempt: 1,
    runnerId: 'r1',
    fullRefresh: false,
    requestedAt: '2025-01-01T00:00:00.000Z',
    startedAt: '2025-01-01T00:00:01.000Z',
    records: 0,
    bytes: 0,
    streams: {},
    stateCommits: 0,
  };
  const error: FailureInfo = { message: 'boom', retryable: true, origin: 'source', type: 'transient_error', stderr: { source: Array.from({ length: 50 }, (_, i) => `e${i}`) } };

  it('is unchanged while the same execution is updated', () => {
    expect(attemptHistory(base, { ...base, status: 'failed' })).toBeUndefined();
  });

  it('gains the stored execution when the next one starts, stderr cut to its last lines', () => {
    const retrying: RunRecord = { ...base, status: 'retrying', finishedAt: '2025-01-01T00:00:02.000Z', retryAt: '2025-01-01T00:00:12.000Z', error };
    const second: RunRecord = { ...base, attempt: 2, startedAt: '2025-01-01T00:00:12.500Z' };
    const history = attemptHistory(retrying, second);
    expect(history).toHaveLength(1);
    expect(history?.[0]).toMatchObject({ attempt: 1, status: 'retrying', retryAt: '2025-01-01T00:00:12.000Z', error: { message: 'boom', type: 'transient_error' } });
    expect(history?.[0]?.error?.stderr?.source).toEqual(['e40', 'e41', 'e42', 'e43', 'e44', 'e45', 'e46', 'e47', 'e48', 'e49']);
    expect(attemptHistory({ ...second, previousAttempts: history! }, { ...second, status: 'succeeded' })).toEqual(history);
  });

  it('counts a redelivery of the same attempt (a requeue) as another execution, and stays bounded', () => {
    let stored: RunRecord = { ...base, status: 'requeued' };
    for (let i = 1; i <= PREVIOUS_ATTEMPTS_KEPT + 5; i++) {
      const next: RunRecord = { ...base, startedAt: new Date(Date.parse(base.startedAt) + i * 1000).toISOString() };
      const history = attemptHistory(stored, next);
      stored = { ...next, status: 'requeued', ...(history ? { previousAttempts: history } : {}) };
    }
    expect(stored.previousAttempts).toHaveLength(PREVIOUS_ATTEMPTS_KEPT);
  });
});
