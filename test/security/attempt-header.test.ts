// Attack: a forged x-tidepool-attempt header. Anyone who can publish can write it; the runner
// takes it as at most maxAttempts (envelope.ts attemptOf), so a message claiming attempt 99 is
// recorded, counted and dead-lettered as the last attempt, never as attempt 99.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS } from '../../shared/broker/envelope.js';
import { confirmPublish } from '../../shared/broker/publisher.js';
import { newSyncRequest } from '../../shared/messages.js';
import { closeRunnerHarness, deadLetterOf, header, openRunnerHarness, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';

describe('a forged attempt header', () => {
  let h: RunnerHarness;
  beforeAll(async () => {
    h = await openRunnerHarness('sec-attempt', { maxAttempts: 3 });
    spawnRunner(h, 'sec-attempt-runner');
  });
  afterAll(() => closeRunnerHarness(h));

  it('attempt 99 is taken as the last attempt (maxAttempts), in the run record and the dead letter', async () => {
    const request = newSyncRequest('nobody');
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, Buffer.from(JSON.stringify(request)), {
      messageId: request.syncId,
      headers: { [HEADERS.attempt]: 99 },
    });
    const dead = await deadLetterOf(h, request.syncId);
    expect(header(dead, HEADERS.attempt)).toBe(3);
    expect(header(dead, HEADERS.reason)).toBe('unknown connection "nobody"');
    expect(await runUntil(h, request.syncId, 'the run record', (r) => r.status === 'dead_lettered')).toMatchObject({ attempt: 3 });
  });

  it('an attempt that is no whole number is the first', async () => {
    const request = newSyncRequest('nobody');
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, Buffer.from(JSON.stringify(request)), {
      messageId: request.syncId,
      headers: { [HEADERS.attempt]: '2.5e9x' },
    });
    expect(header(await deadLetterOf(h, request.syncId), HEADERS.attempt)).toBe(1);
  });
});
