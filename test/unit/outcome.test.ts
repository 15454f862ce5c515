import { describe, expect, it } from 'vitest';
import { CancelledError, LockLostError, ProtocolError, TidepoolError } from '../../shared/errors.js';
import type { ConnectorExit } from '../../shared/ports/connector-launcher.js';
import type { AirbyteTraceMessage } from '../../shared/protocol.js';
import { protocolOrDeath, replicationOutcome, stoppedReading, type ConnectorEnd, type ReplicationFacts } from '../../runner/sync/outcome.js';

const ok: ConnectorExit = { code: 0, signal: null };
const crashed: ConnectorExit = { code: 3, signal: null };
const killed: ConnectorExit = { code: null, signal: 'SIGKILL' };
const notStarted: ConnectorExit = { code: null, signal: null, reason: 'ErrImagePull: no such image', notStarted: true };
const trace = (failure_type?: string): AirbyteTraceMessage => ({ type: 'ERROR', emitted_at: 0, error: { message: 'it broke', ...(failure_type ? { failure_type } : {}) } }) as AirbyteTraceMessage;

const end = (exit: ConnectorExit, more: Partial<ConnectorEnd> = {}): ConnectorEnd => ({ exit, stderrTail: ['last words'], ...more });
const facts = (source: ConnectorEnd, destination: ConnectorEnd, more: Partial<ReplicationFacts> = {}): ReplicationFacts => ({ source, destination, sourceStates: 1, echoedStates: 1, ...more });
const outcome = (f: ReplicationFacts) => {
  const err = replicationOutcome(f, new Set());
  return err && { origin: err.origin, type: err.type, retryable: err.retryable, message: err.message };
};

describe('replicationOutcome: which failure a sync ends with', () => {
  it.each<[string, ReplicationFacts, ReturnType<typeof outcome>]>([
    ['both exit 0 and STATE was confirmed: success', facts(end(ok), end(ok)), undefined],
    ['no STATE at all, both exit 0: success', facts(end(ok), end(ok), { sourceStates: 0, echoedStates: 0 }), undefined],
    [
      'what the runner saw first wins over everything after it',
      facts(end(killed), end(killed), { observed: new LockLostError('c1') }),
      { origin: 'store', type: 'system_error', retryable: true, message: 'lost the lock on connection "c1" (fencing token superseded)' },
    ],
    [
      'a source that never started comes before the destination it left waiting',
      facts(end(notStarted), end(crashed)),
      { origin: 'source', type: 'config_error', retryable: false, message: 'source could not start: ErrImagePull: no such image' },
    ],
    [
      'a destination that never started comes before the source the runner stopped',
      facts(end(killed, { stoppedByRunner: true }), end(notStarted)),
      { origin: 'destination', type: 'config_error', retryable: false, message: 'destination could not start: ErrImagePull: no such image' },
    ],
    [
      "the source's own TRACE comes before its exit code",
      facts(end(crashed, { trace: trace('config_error') }), end(ok)),
      { origin: 'source', type: 'config_error', retryable: false, message: 'source reported: it broke' },
    ],
    [
      'a source exit names the code and the last stderr line; retryable',
      facts(end(crashed), end(killed, { stoppedByRunner: true })),
      { origin: 'source', type: 'system_error', retryable: true, message: 'source exited with code 3: last words' },
    ],
    [
      'the platform reason (OOMKilled) beats the bare exit code',
      facts(end({ code: 137, signal: null, reason: 'OOMKilled' }, { stderrTail: [] }), end(ok)),
      { origin: 'source', type: 'system_error', retryable: true, message: 'source OOMKilled' },
    ],
    [
      'a destination crash that made the runner stop its source blames the destination',
      facts(end(killed, { stoppedByRunner: true }), end(crashed)),
      { origin: 'destination', type: 'system_error', retryable: true, message: 'destination exited with code 3: last words' },
    ],
    [
      "the destination's TRACE, transient",
      facts(end(killed, { stoppedByRunner: true }), end(crashed, { trace: trace('transient_error') })),
      { origin: 'destination', type: 'transient_error', retryable: true, message: 'destination reported: it broke' },
    ],
    [
      'a destination confirming none of the STATE messages breaks the protocol: permanent',
      facts(end(ok), end(ok), { sourceStates: 4, echoedStates: 0 }),
      { origin: 'destination', type: 'system_error', retryable: false, message: "destination confirmed none of the source's 4 STATE messages; no state was committed" },
    ],
    [
      'a killed connector the runner did not stop is a cause',
      facts(end(ok), end(killed, { stderrTail: [] })),
      { origin: 'destination', type: 'system_error', retryable: true, message: 'destination was killed by SIGKILL' },
    ],
  ])('%s', (_name, f, expected) => {
    expect(outcome(f)).toEqual(expected);
  });

  it('a cancel observed first stays a cancel, retryable', () => {
    expect(replicationOutcome(facts(end(killed), end(killed), { observed: new CancelledError('shutting down') }), new Set())).toBeInstanceOf(CancelledError);
  });

  it('redacts secrets in a TRACE message', () => {
    const withSecret = { ...trace(), error: { message: 'login failed for hunter2' } } as AirbyteTraceMessage;
    expect(replicationOutcome(facts(end(crashed, { trace: withSecret }), end(ok)), new Set(['hunter2']))?.message).toBe('source reported: login failed for [redacted]');
  });
});

describe('protocolOrDeath: a line cut short by a death is the death', () => {
  const violation = new ProtocolError('source line 9 is not an Airbyte message', 'source');
  it('keeps the protocol error when the connector ended well or its exit is unknown', () => {
    expect(protocolOrDeath(violation, undefined)).toBe(violation);
    expect(protocolOrDeath(violation, { exit: ok, stderrTail: [] })).toBe(violation);
  });
  it('reports the death, retryable, when the connector then ended badly', () => {
    const err = protocolOrDeath(violation, { exit: { code: 137, signal: null, reason: 'OOMKilled' }, stderrTail: [] });
    expect(err).toMatchObject({ origin: 'source', retryable: true, message: 'source OOMKilled' });
  });
});

describe('stoppedReading', () => {
  it('names a destination that never started as such', () => {
    expect(stoppedReading('EPIPE', notStarted)).toMatchObject({ origin: 'destination', type: 'config_error', retryable: false });
  });
  it('otherwise says it stopped reading, retryable', () => {
    const err: TidepoolError = stoppedReading('write EPIPE', undefined);
    expect(err).toMatchObject({ origin: 'destination', type: 'system_error', retryable: true, message: 'destination stopped reading its input: write EPIPE' });
  });
});
