// Dead letters for operators, on the real broker: `tidepool dlq list|show|replay|purge` (called
// through its main()) and the library behind it (shared/broker/dead-letters.ts). Letters are put
// into the dead queue the way runners and the broker put them there: runner failure headers,
// broker x-death headers, and bodies that are not even JSON.
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main as dlq, type DlqIo } from '../../cli/commands/dlq.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import {
  getDeadLetter,
  listDeadLetters,
  purgeDeadLetters,
  replayDeadLetters,
  type DeadLetter,
} from '../../shared/broker/dead-letters.js';
import { confirmPublish } from '../../shared/broker/publisher.js';
import { topologyFor, type Topology } from '../../shared/broker/topology.js';
import type { Config } from '../../shared/config.js';
import { HEADERS } from '../../shared/broker/envelope.js';
import { MAX_BODY_BYTES, newSyncRequest, type SyncRequest } from '../../shared/messages.js';
import { deletePrefix, testConfig, testLogger, waitFor } from '../helpers/services.js';

interface Fixture {
  config: Config;
  topology: Topology;
  connection: ChannelModel;
  channel: ConfirmChannel;
  env: NodeJS.ProcessEnv;
}

const DAY = 86_400_000;

async function fixture(name: string): Promise<Fixture> {
  const config = testConfig(name);
  const logger = testLogger();
  const topology = topologyFor(config.prefix, config);
  const connection = await connectBroker({ url: config.amqpUrl, logger, timeoutMs: 10_000 });
  const channel = await openConfirmChannel(connection, topology, logger);
  return { config, topology, connection, channel, env: { TIDEPOOL_PREFIX: config.prefix, TIDEPOOL_LOG_LEVEL: 'warn' } };
}

async function teardown(fx: Fixture | undefined): Promise<void> {
  if (!fx) return;
  await fx.connection.close().catch(() => undefined);
  await deletePrefix(fx.config);
}

/** What runner/delivery/dead-letter.ts publishes for a failed sync. */
async function runnerLetter(
  fx: Fixture,
  request: SyncRequest,
  failure: { reason: string; origin: string; type: string; attempt: number; runner: string; firstAt: Date; lastAt: Date; source?: string[]; destination?: string[]; replayed?: number },
): Promise<void> {
  await confirmPublish(fx.channel, fx.topology.deadExchange, fx.topology.deadRoutingKey, Buffer.from(JSON.stringify(request)), {
    messageId: request.syncId,
    headers: {
      [HEADERS.attempt]: failure.attempt,
      [HEADERS.reason]: failure.reason,
      [HEADERS.origin]: failure.origin,
      [HEADERS.type]: failure.type,
      [HEADERS.runner]: failure.runner,
      [HEADERS.firstFailureAt]: failure.firstAt.toISOString(),
      [HEADERS.lastFailureAt]: failure.lastAt.toISOString(),
      [HEADERS.stderrSource]: JSON.stringify(failure.source ?? []),
      [HEADERS.stderrDestination]: JSON.stringify(failure.destination ?? []),
      ...(failure.replayed !== undefined ? { [HEADERS.replayed]: failure.replayed } : {}),
      'x-custom-trace': 'kept-on-replay',
    },
  });
}

/** What the broker itself publishes when a message reaches the syncs queue's delivery limit (as seen on 3.10). */
async function brokerLetter(fx: Fixture, request: SyncRequest, at: Date): Promise<void> {
  const time = { '!': 'timestamp', value: Math.floor(at.getTime() / 1000) };
  await new Promise<void>((resolve, reject) => {
    fx.channel.publish(fx.topology.deadExchange, fx.topology.deadRoutingKey, Buffer.from(JSON.stringify(request)), {
      persistent: true,
      messageId: request.syncId,
      headers: {
        'x-death': [{ count: 1, reason: 'delivery_limit', queue: fx.topology.syncsQueue, time, exchange: fx.topology.exchange, 'routing-keys': [fx.topology.syncRoutingKey] }],
        'x-first-death-exchange': fx.topology.exchange,
        'x-first-death-queue': fx.topology.syncsQueue,
        'x-first-death-reason': 'delivery_limit',
        [HEADERS.attempt]: 1,
      },
    }, (err: unknown) => (err ? reject(err instanceof Error ? err : new Error('the broker refused the publish')) : resolve()));
  });
}

async function rawLetter(fx: Fixture, body: string, options: { messageId?: string; headers?: Record<string, unknown> } = {}): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    fx.channel.publish(fx.topology.deadExchange, fx.topology.deadRoutingKey, Buffer.from(body), { persistent: true, ...options }, (err: unknown) =>
      err ? reject(err instanceof Error ? err : new Error('the broker refused the publish')) : resolve(),
    );
  });
}

interface Letters {
  old: SyncRequest; // c1, source failure, 2 days ago
  recent: SyncRequest; // c1, destination failure, a minute ago, replayed once before
  unknownConnection: SyncRequest; // c2, permanent runner failure, now
  brokerDead: SyncRequest; // c2, dead-lettered by the broker at the delivery limit
  garbageId: string; // not JSON, with a message id
}

/** Six letters of every kind. */
async function seed(fx: Fixture): Promise<Letters> {
  const now = Date.now();
  const old = newSyncRequest('c1');
  await runnerLetter(fx, old, {
    reason: 'source exited with code 3: lost the database connection',
    origin: 'source',
    type: 'system_error',
    attempt: 3,
    runner: 'runner-a',
    firstAt: new Date(now - 3 * DAY),
    lastAt: new Date(now - 2 * DAY),
    source: ['connecting to db', 'FATAL: connection reset by peer'],
    destination: ['waiting for records'],
  });
  const recent = newSyncRequest('c1');
  await runnerLetter(fx, recent, {
    reason: "destination confirmed none of the source's 2 STATE messages",
    origin: 'destination',
    type: 'system_error',
    attempt: 1,
    runner: 'runner-b',
    firstAt: new Date(now - 60_000),
    lastAt: new Date(now - 60_000),
    destination: ['flushed nothing'],
    replayed: 1,
  });
  const unknownConnection = newSyncRequest('c2');
  await runnerLetter(fx, unknownConnection, { reason: 'unknown connection "c2"', origin: 'runner', type: 'config_error', attempt: 1, runner: 'runner-a', firstAt: new Date(now), lastAt: new Date(now) });
  const brokerDead = newSyncRequest('c2');
  await brokerLetter(fx, brokerDead, new Date(now - 30_000));
  const garbageId = 'garbage-1';
  await rawLetter(fx, 'this is {not json', {
    messageId: garbageId,
    headers: { [HEADERS.reason]: 'message body is not JSON: Unexpected token', [HEADERS.origin]: 'runner', [HEADERS.type]: 'config_error', [HEADERS.lastFailureAt]: new Date(now).toISOString() },
  });
  await rawLetter(fx, '\u0000\u0001 binary junk');
  return { old, recent, unknownConnection, brokerDead, garbageId };
}

function capture(ask?: (q: string) => Promise<string>) {
  const out: string[] = [];
  const err: string[] = [];
  const questions: string[] = [];
  const io: DlqIo = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    ...(ask
      ? {
          ask: (q: string) => {
            questions.push(q);
            return ask(q);
          },
        }
      : {}),
  };
  return { io, out, err, questions, stdout: () => out.join('\n'), stderr: () => err.join('\n') };
}

async function depth(fx: Pick<Fixture, 'connection'>, queue: string): Promise<number> {
  const ch = await fx.connection.createChannel();
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await ch.close();
  }
}

const ids = (letters: DeadLetter[]) => letters.map((l) => l.id).sort();

describe('dlq list and show', () => {
  let fx: Fixture;
  let seeded: Letters;
  beforeEach(async (ctx) => {
    fx = await fixture(ctx.task.name);
    seeded = await seed(fx);
  });
  afterEach(async () => teardown(fx));

  it('shows a letter whose body is over 64 KiB without parsing it: named by its message id, not replayable', async () => {
    const big = JSON.stringify({ ...newSyncRequest('c-big'), padding: 'p'.repeat(MAX_BODY_BYTES) });
    await rawLetter(fx, big, { messageId: 'too-big-1' });
    const listing = await listDeadLetters(fx.connection, fx.topology);
    expect(listing.letters.find((l) => l.id === 'too-big-1')).toMatchObject({
      idFrom: 'message-id',
      connectionId: undefined,
      replayable: false,
      problem: `message body is ${Buffer.byteLength(big)} bytes, over the limit of ${MAX_BODY_BYTES}: not parsed`,
    });
  });

  it('lists every letter with its reason, origin, attempts, times, runner and replay count, newest first', async () => {
    const c = capture();
    expect(await dlq(['list', '--json'], fx.env, c.io)).toBe(0);
    const letters = JSON.parse(c.stdout()) as DeadLetter[];
    expect(letters).toHaveLength(6);
    const byId = new Map(letters.map((l) => [l.id, l]));
    expect(byId.get(seeded.old.syncId)).toMatchObject({
      connectionId: 'c1',
      reason: 'source exited with code 3: lost the database connection',
      origin: 'source',
      type: 'system_error',
      attempts: 3,
      runner: 'runner-a',
      replayed: 0,
      deadLetteredBy: 'runner',
      replayable: true,
    });
    expect(byId.get(seeded.recent.syncId)).toMatchObject({ origin: 'destination', replayed: 1 });
    // The broker dead-lettered this one: no tidepool failure headers, its reason comes from x-death.
    expect(byId.get(seeded.brokerDead.syncId)).toMatchObject({
      connectionId: 'c2',
      reason: `delivery limit reached (x-delivery-limit) in ${fx.topology.syncsQueue}`,
      deadLetteredBy: 'broker',
      origin: 'broker',
      type: 'delivery_limit',
      attempts: 1,
    });
    expect(byId.get(seeded.brokerDead.syncId)?.lastFailureAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    // Not JSON: listed under its message id, or a hash of the body when it has none.
    expect(byId.get(seeded.garbageId)).toMatchObject({ idFrom: 'message-id', replayable: false, reason: 'message body is not JSON: Unexpected token' });
    const hashed = letters.find((l) => l.idFrom === 'body-hash');
    expect(hashed?.id).toMatch(/^sha256-[0-9a-f]{16}$/);
    expect(hashed?.deadLetteredBy).toBe('unknown');
    expect(hashed?.lastFailureAt).toBeUndefined();
    // Newest failure first; the letter with no time at all last.
    expect(letters.at(-1)?.id).toBe(hashed?.id);
    expect(letters.at(-2)?.id).toBe(seeded.old.syncId);

    const human = capture();
    expect(await dlq(['list'], fx.env, human.io)).toBe(0);
    expect(human.stdout()).toMatch(/SYNC\s+CONNECTION\s+REASON\s+ORIGIN\/TYPE\s+ATTEMPTS\s+FIRST FAILURE\s+LAST FAILURE\s+RUNNER\s+REPLAYED/);
    expect(human.stdout()).toMatch(new RegExp(`${seeded.old.syncId}\\s+c1\\s+source exited with code 3.*source/system_error\\s+3\\s+\\S+\\s+\\S+\\s+runner-a\\s+0`));
  });

  it('filters by connection and cuts at --limit', async () => {
    const c = capture();
    expect(await dlq(['list', '--connection', 'c1', '--json'], fx.env, c.io)).toBe(0);
    expect(ids(JSON.parse(c.stdout()) as DeadLetter[])).toEqual([seeded.old.syncId, seeded.recent.syncId].sort());
    const limited = capture();
    expect(await dlq(['list', '--limit', '2'], fx.env, limited.io)).toBe(0);
    expect(limited.stdout()).toContain('(2 of 6; --limit shows more)');
    const listing = await listDeadLetters(fx.connection, fx.topology, { connectionId: 'c2' });
    expect(ids(listing.letters)).toEqual([seeded.unknownConnection.syncId, seeded.brokerDead.syncId].sort());
    expect(listing).toMatchObject({ matched: 2, scanned: 6, depth: 6 });
  });

  it('lists twice, and twice at once, the same letters: nothing lost, nothing duplicated', async () => {
    const first = await listDeadLetters(fx.connection, fx.topology);
    const second = await listDeadLetters(fx.connection, fx.topology);
    expect(ids(second.letters)).toEqual(ids(first.letters));
    expect(new Set(ids(first.letters)).size).toBe(6);
    // Each listing gives back what it read, and the classic dead queue counts nothing for it.
    expect(second.letters.every((l) => l.deliveryCount === 0)).toBe(true);
    expect(await depth(fx, fx.topology.deadQueue)).toBe(6);

    // At the same time: a letter held by one listing is not ready for the other, so either may
    // see fewer, neither sees one twice, and afterwards every letter is still there.
    const [a, b] = await Promise.all([listDeadLetters(fx.connection, fx.topology), listDeadLetters(fx.connection, fx.topology)]);
    for (const l of [a, b]) expect(new Set(ids(l.letters)).size).toBe(l.letters.length);
    expect(await depth(fx, fx.topology.deadQueue)).toBe(6);
    expect(ids((await listDeadLetters(fx.connection, fx.topology)).letters)).toEqual(ids(first.letters));
  });

  it('a listing ends while letters keep arriving, and loses none of them', async () => {
    let stop = false;
    let added = 0;
    const producer = (async () => {
      while (!stop) {
        await runnerLetter(fx, newSyncRequest('c3'), { reason: 'flaky', origin: 'source', type: 'transient_error', attempt: 1, runner: 'r', firstAt: new Date(), lastAt: new Date() });
        added++;
      }
    })();
    await waitFor('letters arriving', () => added >= 5);
    const listing = await listDeadLetters(fx.connection, fx.topology);
    stop = true;
    await producer;
    expect(listing.scanned).toBeLessThanOrEqual(listing.depth);
    expect(listing.depth).toBeGreaterThanOrEqual(6);
    expect(await depth(fx, fx.topology.deadQueue)).toBe(6 + added);
  });

  it('shows one letter in full: body, every header, both stderr tails', async () => {
    const c = capture();
    expect(await dlq(['show', seeded.old.syncId, '--json'], fx.env, c.io)).toBe(0);
    const letter = JSON.parse(c.stdout());
    expect(JSON.parse(letter.body)).toEqual(seeded.old);
    expect(letter.stderr).toEqual({ source: ['connecting to db', 'FATAL: connection reset by peer'], destination: ['waiting for records'] });
    expect(letter.headers).toMatchObject({ [HEADERS.attempt]: 3, [HEADERS.runner]: 'runner-a', 'x-custom-trace': 'kept-on-replay' });
    expect(letter.properties).toMatchObject({ messageId: seeded.old.syncId, contentType: 'application/json' });

    const human = capture();
    expect(await dlq(['show', seeded.old.syncId], fx.env, human.io)).toBe(0);
    expect(human.stdout()).toContain(`dead letter ${seeded.old.syncId}`);
    expect(human.stdout()).toContain('reason         source exited with code 3: lost the database connection');
    expect(human.stdout()).toMatch(/source stderr \(last 2 lines\):\n {2}connecting to db\n {2}FATAL: connection reset by peer/);
    expect(human.stdout()).toMatch(/destination stderr \(last 1 line\):\n {2}waiting for records/);
    expect(human.stdout()).toContain(`"syncId": "${seeded.old.syncId}"`);

    const broker = await getDeadLetter(fx.connection, fx.topology, seeded.brokerDead.syncId);
    expect(broker?.headers['x-first-death-reason']).toBe('delivery_limit');
    expect((broker?.headers['x-death'] as { time: string }[])[0]?.time).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    const garbage = await getDeadLetter(fx.connection, fx.topology, seeded.garbageId);
    expect(garbage).toMatchObject({ body: 'this is {not json', replayable: false });
    expect(garbage?.problem).toMatch(/not JSON/);

    const missing = capture();
    expect(await dlq(['show', 'no-such-sync'], fx.env, missing.io)).toBe(3);
    expect(missing.stderr()).toContain('no dead letter "no-such-sync"');
    // Showing removed nothing.
    expect(await depth(fx, fx.topology.deadQueue)).toBe(6);
  });
});

describe('dlq replay', () => {
  let fx: Fixture;
  let seeded: Letters;
  beforeEach(async (ctx) => {
    fx = await fixture(ctx.task.name);
    seeded = await seed(fx);
  });
  afterEach(async () => teardown(fx));

  async function takeSyncs(): Promise<{ body: SyncRequest; headers: Record<string, unknown>; messageId: unknown }[]> {
    const got = [];
    for (;;) {
      const m = await fx.channel.get(fx.topology.syncsQueue, { noAck: false });
      if (!m) break;
      fx.channel.ack(m);
      got.push({ body: JSON.parse(m.content.toString()) as SyncRequest, headers: m.properties.headers ?? {}, messageId: m.properties.messageId });
    }
    return got;
  }

  it('republishes one letter, confirmed, with attempts reset and the replay marker, then removes it', async () => {
    const c = capture();
    expect(await dlq(['replay', seeded.recent.syncId], fx.env, c.io)).toBe(0);
    expect(c.stdout()).toContain(`replayed ${seeded.recent.syncId} (connection c1)`);
    const [replayed, ...more] = await takeSyncs();
    expect(more).toEqual([]);
    expect(replayed?.body).toEqual(seeded.recent);
    expect(replayed?.messageId).toBe(seeded.recent.syncId);
    expect(replayed?.headers[HEADERS.attempt]).toBe(1);
    expect(replayed?.headers[HEADERS.replayed]).toBe(2); // it had been replayed once before
    expect(Date.now() - Date.parse(String(replayed?.headers[HEADERS.replayedAt]))).toBeLessThan(60_000);
    expect(replayed?.headers[HEADERS.replayId]).toMatch(/^[0-9a-f-]{36}$/);
    expect(replayed?.headers['x-custom-trace']).toBe('kept-on-replay');
    for (const h of [HEADERS.reason, HEADERS.origin, HEADERS.type, HEADERS.retryable, HEADERS.runner, HEADERS.firstFailureAt, HEADERS.lastFailureAt, HEADERS.stderrSource, HEADERS.stderrDestination]) {
      expect(replayed?.headers).not.toHaveProperty(h);
    }
    const left = await listDeadLetters(fx.connection, fx.topology);
    expect(ids(left.letters)).not.toContain(seeded.recent.syncId);
    expect(left.letters).toHaveLength(5);
  });

  it('replays --all of one connection, broker-dead-lettered ones included, and leaves the rest', async () => {
    const c = capture();
    expect(await dlq(['replay', '--all', '--connection', 'c2', '--json'], fx.env, c.io)).toBe(0);
    const result = JSON.parse(c.stdout());
    expect(result.replayed.map((r: { id: string }) => r.id).sort()).toEqual([seeded.unknownConnection.syncId, seeded.brokerDead.syncId].sort());
    const syncs = await takeSyncs();
    expect(syncs.map((s) => s.body.syncId).sort()).toEqual([seeded.unknownConnection.syncId, seeded.brokerDead.syncId].sort());
    const fromBroker = syncs.find((s) => s.body.syncId === seeded.brokerDead.syncId);
    expect(Object.keys(fromBroker?.headers ?? {}).filter((h) => h.startsWith('x-death') || h.startsWith('x-first-death'))).toEqual([]);
    expect(fromBroker?.headers).toMatchObject({ [HEADERS.attempt]: 1, [HEADERS.replayed]: 1 });
    const left = await listDeadLetters(fx.connection, fx.topology);
    expect(left.letters.filter((l) => l.connectionId === 'c2')).toEqual([]);
    expect(left.letters).toHaveLength(4);
  });

  it('library: replay --all skips letters that cannot be sync requests and keeps them', async () => {
    const result = await replayDeadLetters(fx.connection, fx.topology, { all: true });
    expect(result.replayed).toHaveLength(4);
    expect(result.skipped.map((s) => s.id)).toContain(seeded.garbageId);
    expect(result.skipped).toHaveLength(2);
    expect(result.failed).toEqual([]);
    expect((await takeSyncs()).length).toBe(4);
    expect((await listDeadLetters(fx.connection, fx.topology)).letters.map((l) => l.replayable)).toEqual([false, false]);
  });

  it('an unknown id exits 3; a letter that is not a sync request is kept (exit 1)', async () => {
    const c = capture();
    expect(await dlq(['replay', 'no-such-sync'], fx.env, c.io)).toBe(3);
    expect(c.stderr()).toContain('no dead letter "no-such-sync"');
    const g = capture();
    expect(await dlq(['replay', seeded.garbageId], fx.env, g.io)).toBe(1);
    expect(g.stderr()).toMatch(/skipped garbage-1: message body is not JSON/);
    expect(await depth(fx, fx.topology.deadQueue)).toBe(6);
    expect(await depth(fx, fx.topology.syncsQueue)).toBe(0);
  });

  it('keeps the letter when its republish cannot be routed', async () => {
    await fx.channel.unbindQueue(fx.topology.syncsQueue, fx.topology.exchange, fx.topology.syncRoutingKey);
    const result = await replayDeadLetters(fx.connection, fx.topology, { ids: [seeded.old.syncId] });
    expect(result.replayed).toEqual([]);
    expect(result.failed[0]?.error).toMatch(/not routed/);
    expect(await getDeadLetter(fx.connection, fx.topology, seeded.old.syncId)).toMatchObject({ id: seeded.old.syncId });
    expect(await depth(fx, fx.topology.deadQueue)).toBe(6);
    const c = capture();
    expect(await dlq(['replay', seeded.old.syncId], fx.env, c.io)).toBe(1);
    expect(c.stderr()).toMatch(/replaying .* failed: no queue is bound/);
    // Several in flight at once: every one of them stays.
    const all = await replayDeadLetters(fx.connection, fx.topology, { all: true });
    expect(all.replayed).toEqual([]);
    expect(all.failed.length).toBeGreaterThanOrEqual(1);
    expect(await depth(fx, fx.topology.deadQueue)).toBe(6);
  });
});

describe('dlq purge', () => {
  let fx: Fixture;
  let seeded: Letters;
  beforeEach(async (ctx) => {
    fx = await fixture(ctx.task.name);
    seeded = await seed(fx);
  });
  afterEach(async () => teardown(fx));

  it('without --yes and with no terminal to ask on: exit 2, nothing purged', async () => {
    const c = capture();
    expect(await dlq(['purge'], fx.env, c.io)).toBe(2);
    expect(c.stderr()).toContain('pass --yes');
    expect(await depth(fx, fx.topology.deadQueue)).toBe(6);
  });

  it('--older-than purges by last failure time only', async () => {
    const c = capture();
    expect(await dlq(['purge', '--older-than', '1d', '--yes'], fx.env, c.io)).toBe(0);
    expect(c.stdout()).toBe('purged 1 dead letter');
    const left = await listDeadLetters(fx.connection, fx.topology);
    expect(ids(left.letters)).not.toContain(seeded.old.syncId);
    expect(left.letters).toHaveLength(5);
    // 45 s: only the one-minute-old letter is that old now (the broker's is 30 s old; letters with
    // no time never match).
    const r = await purgeDeadLetters(fx.connection, fx.topology, { olderThanMs: 45_000 });
    expect(r.purged.map((l) => l.id)).toEqual([seeded.recent.syncId]);
    expect(await depth(fx, fx.topology.deadQueue)).toBe(4);
  });

  it('asks first: "n" keeps everything, "y" purges the connection\'s letters', async () => {
    const no = capture(() => Promise.resolve('n'));
    expect(await dlq(['purge', '--connection', 'c1'], fx.env, no.io)).toBe(0);
    expect(no.questions[0]).toMatch(/purge 2 dead letters from .*\.dead-letters of connection c1\? .*\[y\/N\]/);
    expect(no.stdout()).toBe('nothing purged');
    expect(await depth(fx, fx.topology.deadQueue)).toBe(6);

    const yes = capture(() => Promise.resolve('y'));
    expect(await dlq(['purge', '--connection', 'c1', '--json'], fx.env, yes.io)).toBe(0);
    expect(JSON.parse(yes.stdout())).toMatchObject({ matched: 2, confirmed: true });
    expect(ids((await listDeadLetters(fx.connection, fx.topology)).letters)).not.toContain(seeded.old.syncId);
    expect(await depth(fx, fx.topology.deadQueue)).toBe(4);
  });

  it('library: purges everything when unfiltered, after confirmation', async () => {
    let offered: DeadLetter[] = [];
    const r = await purgeDeadLetters(fx.connection, fx.topology, {}, (letters) => {
      offered = letters;
      return Promise.resolve(true);
    });
    expect(offered).toHaveLength(6);
    expect(r).toMatchObject({ matched: 6, confirmed: true });
    expect(await depth(fx, fx.topology.deadQueue)).toBe(0);
  });
});

describe('dlq: letters the broker itself dead-letters', () => {
  let fx: Fixture | undefined;
  afterEach(async () => teardown(fx));

  it('a message redelivered past the delivery limit lists with the broker\'s reason, and replays', async (ctx) => {
    fx = await fixture(ctx.task.name);
    const f = fx;
    const request = newSyncRequest('c9');
    await confirmPublish(f.channel, f.topology.exchange, f.topology.syncRoutingKey, Buffer.from(JSON.stringify(request)), { messageId: request.syncId, headers: { [HEADERS.attempt]: 1 } });
    // A consumer that keeps giving it back, as a runner crashing on it would.
    for (let i = 0; i <= f.topology.deliveryLimit + 1; i++) {
      const ch = await f.connection.createChannel();
      const m = await ch.get(f.topology.syncsQueue, { noAck: false });
      if (m) ch.nack(m, false, true);
      await ch.close();
    }
    await waitFor('the broker to dead-letter it', async () => (await depth(f, f.topology.deadQueue)) === 1);
    const [letter] = (await listDeadLetters(f.connection, f.topology)).letters;
    expect(letter).toMatchObject({ id: request.syncId, connectionId: 'c9', deadLetteredBy: 'broker', type: 'delivery_limit', reason: `delivery limit reached (x-delivery-limit) in ${f.topology.syncsQueue}` });
    expect((await replayDeadLetters(f.connection, f.topology, { ids: [request.syncId] })).replayed).toHaveLength(1);
    const m = await f.channel.get(f.topology.syncsQueue, { noAck: false });
    expect(m && m.properties.headers?.[HEADERS.replayed]).toBe(1);
    expect(m && Object.keys(m.properties.headers ?? {}).filter((h) => /^x-(death|first-death)/.test(h))).toEqual([]);
  });
});

describe('dlq: who dead-lettered it', () => {
  let fx: Fixture | undefined;
  afterEach(async () => teardown(fx));

  it('a sync that failed, was retried, then hit the delivery limit is the broker\'s, with the earlier failure kept', async (ctx) => {
    fx = await fixture(ctx.task.name);
    const request = newSyncRequest('c5');
    const failedAt = new Date(Date.now() - 120_000);
    await new Promise<void>((resolve, reject) => {
      fx?.channel.publish(fx.topology.deadExchange, fx.topology.deadRoutingKey, Buffer.from(JSON.stringify(request)), {
        persistent: true,
        messageId: request.syncId,
        headers: {
          // From the retry: the runner's failure, and the delay queue's expiry back to the syncs queue.
          [HEADERS.attempt]: 2,
          [HEADERS.reason]: 'source exited with code 1: timeout',
          [HEADERS.origin]: 'source',
          [HEADERS.type]: 'transient_error',
          [HEADERS.retryable]: true,
          [HEADERS.firstFailureAt]: failedAt.toISOString(),
          [HEADERS.lastFailureAt]: failedAt.toISOString(),
          // Then the broker, at the delivery limit (newest x-death first).
          'x-death': [
            { count: 1, reason: 'delivery_limit', queue: fx.topology.syncsQueue, time: { '!': 'timestamp', value: Math.floor(Date.now() / 1000) }, exchange: fx.topology.exchange, 'routing-keys': ['sync'] },
            { count: 1, reason: 'expired', queue: `${fx.config.prefix}.retry.1`, time: { '!': 'timestamp', value: Math.floor(failedAt.getTime() / 1000) + 10 }, exchange: '', 'routing-keys': [`${fx.config.prefix}.retry.1`] },
          ],
        },
      }, (err: unknown) => (err ? reject(err instanceof Error ? err : new Error('the broker refused the publish')) : resolve()));
    });
    const [letter] = (await listDeadLetters(fx.connection, fx.topology)).letters;
    expect(letter).toMatchObject({
      deadLetteredBy: 'broker',
      type: 'delivery_limit',
      reason: `delivery limit reached (x-delivery-limit) in ${fx.topology.syncsQueue} (earlier failure: source exited with code 1: timeout)`,
      attempts: 2,
      retryable: true,
      firstFailureAt: failedAt.toISOString(),
    });
    expect(Date.parse(letter?.lastFailureAt ?? '')).toBeGreaterThan(failedAt.getTime());
  });
});

describe('dlq usage', () => {
  it('prints usage, and rejects a bad command line with exit 2 before connecting', async () => {
    const env = { TIDEPOOL_AMQP_URL: 'amqp://127.0.0.1:1' };
    const help = capture();
    expect(await dlq(['--help'], env, help.io)).toBe(0);
    expect(help.stdout()).toMatch(/usage: tidepool dlq/);
    for (const argv of [['frob'], ['show'], ['replay'], ['replay', 'x', '--all'], ['list', '--yes'], ['purge', '--older-than', 'soon', '--yes'], ['list', '--limit', '0']]) {
      const c = capture();
      expect(await dlq(argv, env, c.io), argv.join(' ')).toBe(2);
    }
  });

  it('a prefix with no dead queue is "not found" (exit 3), and nothing is declared', async (ctx) => {
    const config = testConfig(ctx.task.name);
    const c = capture();
    expect(await dlq(['list'], { TIDEPOOL_PREFIX: config.prefix }, c.io)).toBe(3);
    expect(c.stderr()).toContain(`dead-letter queue "${config.prefix}.dead-letters" does not exist`);
    await deletePrefix(config);
  });
});

describe('dlq: a quorum dead queue left by an earlier tidepool', () => {
  it('has its letters moved to the classic dead queue by the next process, headers kept, and stops receiving new ones', async (ctx) => {
    const config = testConfig(ctx.task.name);
    const logger = testLogger();
    const topology = topologyFor(config.prefix, config);
    const connection = await connectBroker({ url: config.amqpUrl, logger, timeoutMs: 10_000 });
    try {
      // The topology an earlier tidepool declared: `<prefix>.dead`, quorum, bound to the dead exchange.
      const old = await connection.createConfirmChannel();
      await old.assertExchange(topology.deadExchange, 'direct', { durable: true });
      await old.assertQueue(topology.legacyDeadQueue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      await old.bindQueue(topology.legacyDeadQueue, topology.deadExchange, topology.deadRoutingKey);
      const requests = [newSyncRequest('c1'), newSyncRequest('c2'), newSyncRequest('c3')];
      for (const r of requests) {
        await confirmPublish(old, topology.deadExchange, topology.deadRoutingKey, Buffer.from(JSON.stringify(r)), {
          messageId: r.syncId,
          headers: { [HEADERS.reason]: `failed ${r.connectionId}`, [HEADERS.attempt]: 5, 'x-custom-trace': 'kept' },
        });
      }
      // Read once the old way: the quorum queue counted that as a delivery of each letter.
      const held = await old.get(topology.legacyDeadQueue, { noAck: false });
      if (held) old.nack(held, false, true);
      await old.close();

      // A process of today's tidepool starts: it declares the topology and moves the letters.
      const channel = await openConfirmChannel(connection, topology, logger);
      const listing = await listDeadLetters(connection, topology);
      expect(listing.letters.map((l) => l.id).sort()).toEqual(requests.map((r) => r.syncId).sort());
      for (const letter of listing.letters) {
        expect(letter.reason).toBe(`failed ${letter.connectionId}`);
        expect(letter.attempts).toBe(5);
        expect(letter.deliveryCount).toBe(0);
      }
      const detail = await getDeadLetter(connection, topology, requests[0]!.syncId);
      expect(detail?.headers).toMatchObject({ 'x-custom-trace': 'kept', [HEADERS.reason]: 'failed c1' });
      expect(detail?.headers).not.toHaveProperty('x-delivery-count');
      expect(await depth({ connection }, topology.legacyDeadQueue)).toBe(0);

      // A new letter goes to the classic queue only: the old one is unbound.
      const late = newSyncRequest('c4');
      await confirmPublish(channel, topology.deadExchange, topology.deadRoutingKey, Buffer.from(JSON.stringify(late)), { messageId: late.syncId });
      await waitFor('the late letter', async () => (await depth({ connection }, topology.deadQueue)) === 4);
      expect(await depth({ connection }, topology.legacyDeadQueue)).toBe(0);

      // Another start finds the old queue empty and moves nothing twice.
      await (await openConfirmChannel(connection, topology, logger)).close();
      expect(await depth({ connection }, topology.deadQueue)).toBe(4);
      expect((await listDeadLetters(connection, topology)).warnings).toEqual([]);

      // An older runner, still up in a rolling upgrade, binds the old queue again: the listing
      // says a letter waits there, and the next start moves it.
      const older = await connection.createConfirmChannel();
      await older.bindQueue(topology.legacyDeadQueue, topology.deadExchange, topology.deadRoutingKey);
      const stray = newSyncRequest('c5');
      await confirmPublish(older, topology.deadExchange, topology.deadRoutingKey, Buffer.from(JSON.stringify(stray)), { messageId: stray.syncId });
      await older.close();
      await waitFor('the stray letter', async () => (await depth({ connection }, topology.legacyDeadQueue)) === 1);
      expect((await listDeadLetters(connection, topology)).warnings).toEqual([
        `1 dead letter still in ${topology.legacyDeadQueue}, the queue of an earlier tidepool: the next tidepool process to start moves it here`,
      ]);
      await (await openConfirmChannel(connection, topology, logger)).close();
      const after = await listDeadLetters(connection, topology);
      expect(after.warnings).toEqual([]);
      expect(after.letters.map((l) => l.id)).toContain(stray.syncId);
    } finally {
      await connection.close().catch(() => undefined);
      await deletePrefix(config);
    }
  });
});

