// The pure parts of surviving outages: the reconnection waits, which broker errors are worth
// another try, and which deliveries are copies of a sync that is already settled.
import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../shared/backoff.js';
import { CONNECT_BACKOFF, RECONNECT_BACKOFF, isPermanentBrokerError } from '../../shared/broker/connection.js';
import { HEADERS } from '../../shared/broker/envelope.js';
import { REDIS_MAX_RETRIES_PER_REQUEST, REDIS_RECONNECT_BACKOFF } from '../../shared/store/redis.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { settledBy } from '../../runner/delivery/redelivery.js';

describe('reconnection waits', () => {
  const range = (o: typeof RECONNECT_BACKOFF, attempt: number) => [backoffDelay(attempt, o, () => 0), backoffDelay(attempt, o, () => 1)];

  it('broker: 250–500 ms after the loss, doubling to 5–10 s', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((a) => range(RECONNECT_BACKOFF, a))).toEqual([
      [250, 500],
      [500, 1000],
      [1000, 2000],
      [2000, 4000],
      [4000, 8000],
      [5000, 10_000],
      [5000, 10_000],
    ]);
  });

  it('spreads the processes one restart cut off: a hundred first tries are not one burst', () => {
    const delays = Array.from({ length: 100 }, () => backoffDelay(5, RECONNECT_BACKOFF));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(5000);
    expect(Math.max(...delays)).toBeLessThanOrEqual(10_000);
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(2000);
  });

  it('connecting at start: 100–200 ms, up to 2.5–5 s', () => {
    expect(range(CONNECT_BACKOFF, 0)).toEqual([100, 200]);
    expect(range(CONNECT_BACKOFF, 9)).toEqual([2500, 5000]);
  });

  it('redis: a command waits through about a minute of outage before it fails to its caller', () => {
    // ioredis counts tries from 1; createRedis waits backoffDelay(times - 1).
    const tries = Array.from({ length: REDIS_MAX_RETRIES_PER_REQUEST }, (_, i) => i);
    const least = tries.reduce((sum, a) => sum + backoffDelay(a, REDIS_RECONNECT_BACKOFF, () => 0), 0);
    const most = tries.reduce((sum, a) => sum + backoffDelay(a, REDIS_RECONNECT_BACKOFF, () => 1), 0);
    expect(least).toBeGreaterThan(30_000);
    expect(most).toBeLessThan(90_000);
  });
});

describe('broker errors another try cannot fix', () => {
  const err = (message: string, code?: unknown) => Object.assign(new Error(message), code === undefined ? {} : { code });

  it.each([
    ['wrong credentials', err('Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"')],
    ['a queue declared with other arguments', err('Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg \'x-delivery-limit\'"', 406)],
    ['a missing exchange', err('Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - no exchange \'x\'"', 404)],
    ['a URL that is not amqp', err('Expected amqp: or amqps: as the protocol; got http:')],
  ])('permanent: %s', (_, e) => {
    expect(isPermanentBrokerError(e)).toBe(true);
  });

  it.each([
    ['connection refused (broker down)', err('connect ECONNREFUSED 127.0.0.1:5672', 'ECONNREFUSED')],
    ['broker shutting down', err('Connection closed: 320 (CONNECTION-FORCED) with message "CONNECTION_FORCED - broker forced connection closure with reason \'shutdown\'"', 320)],
    ['vhost still starting', err('Handshake terminated by server: 530 (NOT-ALLOWED) with message "NOT_ALLOWED - vhost / is down"')],
    ['a channel closed before the confirm', err('the broker connection closed before message x was confirmed: channel closed')],
    ['a nack', err('the broker refused message x (nack)')],
    ['a socket reset', err('read ECONNRESET', 'ECONNRESET')],
  ])('worth another try: %s', (_, e) => {
    expect(isPermanentBrokerError(e)).toBe(false);
  });
});

describe('a delivery of a sync that is already settled', () => {
  const record = (over: Partial<RunRecord>): RunRecord => ({
    syncId: 's1',
    connectionId: 'c1',
    status: 'succeeded',
    attempt: 1,
    runnerId: 'r1',
    fullRefresh: false,
    requestedAt: '2025-01-01T00:00:00.000Z',
    startedAt: '2025-01-01T00:00:01.000Z',
    finishedAt: '2025-01-01T00:00:05.000Z',
    records: 10,
    bytes: 100,
    streams: {},
    stateCommits: 1,
    ...over,
  });
  const plain = { headers: {} };

  it('runs when there is no record, or the record is of an unfinished execution', () => {
    expect(settledBy(plain, 1, undefined)).toBeUndefined();
    for (const status of ['running', 'failed', 'requeued'] as const) expect(settledBy(plain, 1, record({ status }))).toBeUndefined();
  });

  it('is settled when that attempt succeeded or was dead-lettered (its ack was lost)', () => {
    expect(settledBy(plain, 1, record({ status: 'succeeded' }))).toMatch(/already succeeded \(attempt 1\)/);
    expect(settledBy(plain, 3, record({ status: 'dead_lettered', attempt: 3 }))).toMatch(/already dead-lettered/);
  });

  it('is settled when its retry is already in a delay queue', () => {
    expect(settledBy(plain, 2, record({ status: 'retrying', attempt: 2 }))).toMatch(/waits for attempt 3/);
  });

  it('an older attempt than the record is settled; a newer one (the retry itself) runs', () => {
    expect(settledBy(plain, 1, record({ status: 'succeeded', attempt: 2 }))).toBeDefined();
    expect(settledBy(plain, 3, record({ status: 'retrying', attempt: 2 }))).toBeUndefined();
  });

  it('a replay from the dead-letter queue after the record runs; a copy of the replay after its run does not', () => {
    const dead = record({ status: 'dead_lettered', attempt: 5 });
    expect(settledBy({ headers: { [HEADERS.replayedAt]: '2025-01-01T01:00:00.000Z' } }, 1, dead)).toBeUndefined();
    const rerun = record({ status: 'succeeded', attempt: 1, startedAt: '2025-01-01T01:00:02.000Z' });
    expect(settledBy({ headers: { [HEADERS.replayedAt]: '2025-01-01T01:00:00.000Z' } }, 1, rerun)).toBeDefined();
  });
});
