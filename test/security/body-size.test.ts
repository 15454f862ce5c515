// Attack: big message bodies and headers. A 65 KB header made the runner's republish fail, and
// the broker dead-lettered the message with its own "delivery limit" reason; others' headers now
// share a budget on every republish, and what did not fit is named.
//
// Big message bodies. Parsing a 50 MB body took a runner from 118 to 305 MB of memory;
// a body over 64 KiB is now dead-lettered as it is, unparsed, whatever it holds — even a valid
// sync request padded with whitespace.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARRIED_HEADER_BYTES, HEADERS } from '../../shared/broker/envelope.js';
import { confirmPublish } from '../../shared/broker/publisher.js';
import { MAX_BODY_BYTES } from '../../runner/delivery/consumer.js';
import { closeRunnerHarness, deadLetterOf, header, openRunnerHarness, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';

const padded = (syncId: string, bytes: number): Buffer => {
  const json = JSON.stringify({ syncId, connectionId: 'nobody', requestedAt: new Date().toISOString() });
  return Buffer.from(json + ' '.repeat(bytes - Buffer.byteLength(json)));
};

describe('message bodies over the limit', () => {
  let h: RunnerHarness;
  beforeAll(async () => {
    h = await openRunnerHarness('sec-body');
    spawnRunner(h, 'sec-body-runner');
  });
  afterAll(() => closeRunnerHarness(h));

  it('a valid request padded past 64 KiB is dead-lettered unparsed, the reason giving the size and the limit', async () => {
    const syncId = `big-${randomUUID()}`;
    const body = padded(syncId, MAX_BODY_BYTES + 1);
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, body, { messageId: 'too-big' });
    const dead = await deadLetterOf(h, 'too-big');
    expect(header(dead, HEADERS.reason)).toBe(`message body is ${MAX_BODY_BYTES + 1} bytes, over the limit of ${MAX_BODY_BYTES}: not parsed`);
    expect(header(dead, HEADERS.retryable)).toBe(false);
    expect(header(dead, HEADERS.syncId)).toBeUndefined();
    expect(dead.content.equals(body)).toBe(true);
    expect(await h.services.store.runs.get(syncId)).toBeUndefined();
  });

  it('a 5 MB body is refused the same way; one at the limit is still read', async () => {
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, Buffer.alloc(5 * 1024 * 1024, '['), { messageId: 'huge' });
    expect(header(await deadLetterOf(h, 'huge'), HEADERS.reason)).toMatch(/^message body is 5242880 bytes, over the limit of 65536/);
    const syncId = `edge-${randomUUID()}`;
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, padded(syncId, MAX_BODY_BYTES), { messageId: syncId });
    expect(header(await deadLetterOf(h, syncId), HEADERS.reason)).toBe('unknown connection "nobody"');
  });

  it('a 60 KB header (amqplib publishes no more) does not stop the dead letter: it carries tidepool’s reason and names the header it left off', async () => {
    const syncId = `hdr-${randomUUID()}`;
    const body = Buffer.from(JSON.stringify({ syncId, connectionId: 'nobody', requestedAt: new Date().toISOString() }));
    await confirmPublish(h.channel, h.topology.exchange, h.topology.syncRoutingKey, body, {
      messageId: syncId,
      headers: { 'x-padding': 'p'.repeat(60 * 1024), 'x-trace': 'kept' },
    });
    const dead = await deadLetterOf(h, syncId);
    expect(header(dead, HEADERS.reason)).toBe('unknown connection "nobody"');
    expect(header(dead, HEADERS.droppedHeaders)).toBe('x-padding');
    expect(header(dead, 'x-trace')).toBe('kept');
    expect(CARRIED_HEADER_BYTES).toBeLessThan(60 * 1024);
  });
});
