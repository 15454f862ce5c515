// Schedules against the real store (and, in the last test, the real broker with two scalers):
// the planner's rules driven on a clock of the test's own (overlap, catch-up, pause), the CLI
// (validation at apply, `schedules --json`, pause/resume), then a seconds pattern run for real
// with two scalers, one crashing and one restarted, and a broker outage at a slot.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConnectionFile } from '../../shared/connections.js';
import type { SyncRequest } from '../../shared/messages.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { scheduleKeys } from '../../shared/store/schedules.js';
import { connectBroker } from '../../shared/broker/connection.js';
import { topologyFor } from '../../shared/broker/topology.js';
import type { RunnerLauncher } from '../../shared/ports/runner-launcher.js';
import { LeaderLock } from '../../scaler/leadership/redis-lock.js';
import { Scaler } from '../../scaler/loop.js';
import { Notifier } from '../../shared/notifications/notify.js';
import { DEFAULT_PLANNER_SETTINGS, SchedulePlanner, type SlotDecision } from '../../scaler/schedules/planner.js';
import { main as connectionsMain } from '../../cli/commands/connections.js';
import { main as schedulesMain } from '../../cli/commands/schedules.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { percentile } from '../../bench/support/stats.js';

const MINUTE = 60_000;
/** A whole minute, so that minute patterns fall on the test's clock predictably. */
const T0 = Date.parse('2026-12-05T01:00:00Z');

function connection(id: string, schedule: Record<string, unknown>) {
  return parseConnectionFile({ id, source: { connector: 'source-faker' }, destination: { connector: 'destination-jsonl', config: { path: '/tmp' } }, schedule })[0]!;
}

function runRecord(syncId: string, connectionId: string, status: RunRecord['status']): RunRecord {
  const at = new Date().toISOString();
  return { syncId, connectionId, status, attempt: 1, runnerId: 'r', fullRefresh: false, requestedAt: at, startedAt: at, records: 0, bytes: 0, streams: {}, stateCommits: 0 };
}

/** A planner on the test's clock, publishing into a list. */
function plannerFor(services: TestServices, options: { scanMax?: number; failPublish?: () => boolean } = {}) {
  const clock = { now: T0 };
  const published: SyncRequest[] = [];
  const decided: SlotDecision[] = [];
  const planner = new SchedulePlanner({
    store: services.store,
    logger: services.logger,
    owner: 'test-scaler',
    publish: (request) => {
      if (options.failPublish?.()) return Promise.reject(new Error('broker away'));
      published.push(request);
      return Promise.resolve();
    },
    settings: { ...DEFAULT_PLANNER_SETTINGS, lateAfterMs: 5_000, leaseMs: 10_000, ...(options.scanMax ? { scanMax: options.scanMax } : {}) },
    onDecided: (d) => decided.push(d),
    notifier: new Notifier(services.store.outbox, services.logger),
    now: () => clock.now,
  });
  /** Steps until nothing is left to do at the clock's time (a truncated scan takes several). */
  const settle = async () => {
    for (let i = 0; i < 100; i++) {
      const next = await planner.step();
      if (next === undefined || next > clock.now) return;
    }
  };
  return { clock, published, decided, planner, settle };
}

describe('schedule planner (real store, the test\'s clock)', () => {
  const config = testConfig('sched-plan');
  let services: TestServices;
  beforeAll(() => {
    services = openTestServices(config);
  });
  afterAll(async () => {
    await services.cleanup();
  });

  it('catch-up after a downtime: none records every slot missed, latest publishes the last, all the last catchUpMax (bounded scan)', async () => {
    for (const catchUp of ['none', 'latest', 'all']) await services.store.connections.apply(connection(`catch-${catchUp}`, { cron: '* * * * *', catchUp, overlap: 'allow' }));
    const p = plannerFor(services, { scanMax: 12 });
    await p.settle(); // first sight: the schedules start now
    p.clock.now = T0 + 30 * MINUTE + 10_000; // 30 slots passed with no scaler
    await p.settle();
    const byConnection = (id: string) => p.decided.filter((d) => d.connectionId === id);
    const outcomes = (id: string) => byConnection(id).map((d) => d.outcome);
    expect(outcomes('catch-none')).toEqual(Array(30).fill('missed'));
    expect(outcomes('catch-latest')).toEqual([...Array(29).fill('missed'), 'published']);
    expect(outcomes('catch-all')).toEqual([...Array(20).fill('missed'), ...Array(10).fill('published')]);
    // Each missed slot is a schedule.missed event in the webhooks' outbox (30 + 29 + 20).
    await waitFor('the schedule.missed events', async () => (await services.store.outbox.pending()) === 79);
    const [first] = await services.store.outbox.claim(1, 60_000);
    expect(first).toMatchObject({ event: { type: 'schedule.missed', data: { reason: expect.stringMatching(/^no scaler led at the slot/) } } });
    // The slots, in order, each once; what was published is the slots' own sync ids.
    expect(byConnection('catch-all').map((d) => d.record.slot)).toEqual(Array.from({ length: 30 }, (_, i) => T0 + (i + 1) * MINUTE));
    expect(p.published.filter((r) => r.connectionId === 'catch-latest').map((r) => r.syncId)).toEqual(['sched-20261205T013000Z-catch-latest']);
    // A second planner (another scaler) finds nothing left to decide.
    const other = plannerFor(services);
    other.clock.now = p.clock.now;
    await other.settle();
    expect(other.decided).toEqual([]);
    const status = await services.store.schedules.status('catch-none');
    expect(status.last).toMatchObject({ outcome: 'missed', slot: T0 + 30 * MINUTE, reason: expect.stringContaining('catchUp none') });
  });

  it('keeps the latest slot records only, deciding a long downtime in bounded scans', async () => {
    await services.store.connections.apply(connection('long-downtime', { cron: '* * * * *', catchUp: 'none' }));
    const p = plannerFor(services, { scanMax: 40 });
    p.clock.now = T0 + 1000 * MINUTE;
    await p.settle();
    p.clock.now = T0 + 1400 * MINUTE + 10_000; // 400 slots, 10 scans
    await p.settle();
    expect(p.decided.filter((d) => d.connectionId === 'long-downtime')).toHaveLength(400);
    const kept = await services.store.schedules.recentSlots('long-downtime', 1000);
    expect(kept.length).toBeGreaterThanOrEqual(200);
    expect(kept.length).toBeLessThanOrEqual(250);
    expect(kept[0]!.slot).toBe(T0 + 1400 * MINUTE);
    expect((await services.store.schedules.status('long-downtime')).cursor).toBe(T0 + 1400 * MINUTE);
  });

  it('overlap skip publishes nothing while a sync of the connection is queued or running; buffer_one keeps one waiting', async () => {
    await services.store.connections.apply(connection('ov-skip', { cron: '* * * * *', overlap: 'skip' }));
    await services.store.connections.apply(connection('ov-buffer', { cron: '* * * * *', overlap: 'buffer_one' }));
    const p = plannerFor(services);
    p.clock.now = T0 + 100 * MINUTE;
    await p.settle();
    const at = async (minute: number) => {
      p.clock.now = T0 + (100 + minute) * MINUTE + 500;
      await p.settle();
      return p.decided.filter((d) => d.record.slot === T0 + (100 + minute) * MINUTE);
    };
    const outcomeOf = (ds: SlotDecision[], id: string) => ds.find((d) => d.connectionId === id)?.outcome;
    // Slot 1: both publish. Slot 2: skip has one queued; buffer_one has one waiting already.
    let ds = await at(1);
    expect([outcomeOf(ds, 'ov-skip'), outcomeOf(ds, 'ov-buffer')]).toEqual(['published', 'published']);
    const first = (id: string) => p.published.filter((r) => r.connectionId === id)[0]!.syncId;
    ds = await at(2);
    expect([outcomeOf(ds, 'ov-skip'), outcomeOf(ds, 'ov-buffer')]).toEqual(['skipped', 'skipped']);
    expect(ds.find((d) => d.connectionId === 'ov-skip')!.record.reason).toMatch(/queued/);
    // Both first syncs start running: skip still skips, buffer_one queues one behind it.
    await services.store.runs.put(runRecord(first('ov-skip'), 'ov-skip', 'running'));
    await services.store.runs.put(runRecord(first('ov-buffer'), 'ov-buffer', 'running'));
    ds = await at(3);
    expect([outcomeOf(ds, 'ov-skip'), outcomeOf(ds, 'ov-buffer')]).toEqual(['skipped', 'published']);
    expect(ds.find((d) => d.connectionId === 'ov-skip')!.record.reason).toMatch(/running/);
    ds = await at(4);
    expect(outcomeOf(ds, 'ov-buffer')).toBe('skipped');
    // A sync on request running (the connection's lock held) counts too.
    await services.store.runs.put(runRecord(first('ov-skip'), 'ov-skip', 'succeeded'));
    const lock = await services.store.locks.tryAcquire('ov-skip', 'someone', 60_000);
    ds = await at(5);
    expect(outcomeOf(ds, 'ov-skip')).toBe('skipped');
    await services.store.locks.release(lock!);
    ds = await at(6);
    expect(outcomeOf(ds, 'ov-skip')).toBe('published');
  });

  it('a slot whose publish fails stays claimed and is published once the broker is back, with the slots after it', async () => {
    await services.store.connections.apply(connection('outage', { cron: '* * * * *', catchUp: 'none', overlap: 'allow' }));
    let brokerDown = true;
    const p = plannerFor(services, { failPublish: () => brokerDown });
    p.clock.now = T0 + 200 * MINUTE;
    await p.settle();
    // The broker is away for 3 slots (3 minutes, far beyond lateAfterMs): each is claimed on time.
    for (const m of [1, 2, 3]) {
      p.clock.now = T0 + (200 + m) * MINUTE + 100;
      await p.planner.step();
    }
    expect(p.decided.filter((d) => d.connectionId === 'outage')).toEqual([]);
    brokerDown = false;
    p.clock.now += 1000;
    await p.settle();
    const decided = p.decided.filter((d) => d.connectionId === 'outage');
    expect(decided.map((d) => d.outcome)).toEqual(['published', 'published', 'published']);
    expect(decided[0]!.record.lagMs).toBeGreaterThan(2 * MINUTE);
  });

  it('a paused connection has its slots recorded as skipped, and publishes again once resumed', async () => {
    await services.store.connections.apply(connection('pausable', { cron: '* * * * *' }));
    const env = { TIDEPOOL_PREFIX: config.prefix, TIDEPOOL_REDIS_URL: config.redisUrl, TIDEPOOL_LOG_LEVEL: 'warn' };
    const out: string[] = [];
    const io = { out: (t: string) => out.push(t), err: (t: string) => out.push(t) };
    const p = plannerFor(services);
    p.clock.now = T0 + 300 * MINUTE;
    await p.settle();
    expect(await connectionsMain(['pause', 'pausable'], env, io)).toBe(0);
    p.clock.now = T0 + 301 * MINUTE + 100;
    await p.settle();
    expect(p.decided.filter((d) => d.connectionId === 'pausable').map((d) => [d.outcome, d.record.reason])).toEqual([['skipped', 'paused']]);
    // The pause survives an apply of the same connection.
    await services.store.connections.apply(connection('pausable', { cron: '* * * * *', jitter: '1s' }));
    out.length = 0;
    expect(await schedulesMain(['--json'], env, io)).toBe(0);
    const listed = (JSON.parse(out[0]!) as Array<{ connectionId: string; paused: boolean; lastSlot: { outcome: string } }>).find((o) => o.connectionId === 'pausable');
    expect(listed).toMatchObject({ paused: true, lastSlot: { outcome: 'skipped', reason: 'paused' } });
    expect(await connectionsMain(['resume', 'pausable'], env, io)).toBe(0);
    p.clock.now = T0 + 302 * MINUTE + 1500;
    await p.settle();
    expect(p.decided.filter((d) => d.connectionId === 'pausable').map((d) => d.outcome)).toEqual(['skipped', 'published']);
    expect(await connectionsMain(['pause', 'no-such-connection'], env, io)).toBe(3);
  });
});

describe('a deleted connection takes its schedule with it', () => {
  const config = testConfig('sched-delete');
  let services: TestServices;
  beforeAll(() => {
    services = openTestServices(config);
  });
  afterAll(async () => {
    await services.cleanup();
  });

  it('deletes the cursor, pause, slot records and open syncs; applied again, its schedule starts afresh', async () => {
    const scheduled = connection('doomed', { cron: '* * * * *', catchUp: 'all', overlap: 'allow' });
    await services.store.connections.apply(scheduled);
    const p = plannerFor(services);
    await p.settle(); // first sight: the schedule starts at T0
    p.clock.now = T0 + 2 * MINUTE + 500;
    await p.settle();
    expect(p.published.map((r) => r.connectionId)).toEqual(['doomed', 'doomed']);
    await services.store.schedules.setPaused('doomed', true);
    const keys = scheduleKeys(services.store.keys, 'doomed');
    expect(await services.store.redis.exists(...keys)).toBe(keys.length);

    expect(await services.store.connections.delete('doomed')).toBe('deleted');
    expect(await services.store.redis.exists(...keys)).toBe(0);
    expect(await services.store.schedules.status('doomed')).toEqual({ paused: false });

    // Left behind, the old cursor would have the 8 slots since counted (catchUp all) and the pause kept.
    await services.store.connections.apply(scheduled);
    p.clock.now = T0 + 10 * MINUTE + 500;
    await p.settle();
    expect(p.decided.filter((d) => d.record.slot > T0 + 2 * MINUTE)).toEqual([]);
    p.clock.now = T0 + 11 * MINUTE + 500;
    await p.settle();
    expect(p.decided.filter((d) => d.record.slot > T0 + 2 * MINUTE).map((d) => [d.record.slot, d.outcome])).toEqual([[T0 + 11 * MINUTE, 'published']]);
  });

  it('makes no schedule keys again for a connection deleted after a scaler listed it', async () => {
    const scheduled = connection('raced', { cron: '* * * * *', catchUp: 'all', overlap: 'allow' });
    await services.store.connections.apply(scheduled);
    const schedules = services.store.schedules;
    const begun = await schedules.begin('raced', 'spec-1', T0);
    expect(begun).toEqual({ cursor: T0, paused: false });
    const claim = await schedules.claim('raced', T0 + MINUTE, T0 + MINUTE, 'on_time', 'scaler-a', T0 + MINUTE, 10_000);
    expect(claim.status).toBe('claimed');
    // Deleted between the scaler's list and its next steps: begin, claim and decide all find it
    // gone and write nothing.
    expect(await services.store.connections.delete('raced')).toBe('deleted');
    expect(await schedules.begin('raced', 'spec-1', T0 + MINUTE)).toBeUndefined();
    expect(await schedules.claim('raced', T0 + 2 * MINUTE, T0 + 2 * MINUTE, 'on_time', 'scaler-a', T0 + 2 * MINUTE, 10_000)).toEqual({ status: 'gone' });
    if (claim.status !== 'claimed') throw new Error('unreachable');
    expect(await schedules.decide('raced', { ...claim.record, outcome: 'published', syncId: 'sync-x', decidedAt: T0 + MINUTE })).toBe(false);
    const keys = scheduleKeys(services.store.keys, 'raced');
    expect(await services.store.redis.exists(...keys)).toBe(0);
  });
});

describe('schedules at the CLI', () => {
  const config = testConfig('sched-cli');
  let services: TestServices;
  let dir: string;
  const env = () => ({ TIDEPOOL_PREFIX: config.prefix, TIDEPOOL_REDIS_URL: config.redisUrl, TIDEPOOL_LOG_LEVEL: 'warn' });
  beforeAll(async () => {
    services = openTestServices(config);
    dir = await mkdtemp(join(tmpdir(), 'tidepool-sched-'));
  });
  afterAll(async () => {
    await services.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a bad schedule at apply, naming the connection and the field, and applies nothing', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      [
        'connections:',
        '  - id: fine',
        '    source: { connector: source-faker }',
        '    destination: { connector: destination-jsonl }',
        '    schedule: { cron: "0 * * * *" }',
        '  - id: nightly',
        '    source: { connector: source-faker }',
        '    destination: { connector: destination-jsonl }',
        '    schedule: { cron: "0 25 * * *", timezone: "Europe/Berlln", overlap: sometimes, jitter: 30s }',
      ].join('\n'),
    );
    const err: string[] = [];
    const code = await connectionsMain(['apply', '-f', file], env(), { out: () => undefined, err: (t) => err.push(t) });
    expect(code).not.toBe(0);
    const text = err.join('\n');
    expect(text).toMatch(/connections\[1\]\.schedule\.timezone: timezone "Europe\/Berlln" is not an IANA time zone.*\(connection "nightly"\)/);
    expect(text).toMatch(/connections\[1\]\.schedule\.overlap: .*\(connection "nightly"\)/);
    expect(text).toMatch(/connections\[1\]\.schedule\.cron: cron "0 25 \* \* \*" is not a cron pattern.*\(connection "nightly"\)/);
    expect(await services.store.connections.list()).toEqual([]);
  });

  it('schedules --json lists each scheduled connection with its next run; an unscheduled one is not listed', async () => {
    await services.store.connections.apply(connection('hourly', { cron: '0 * * * *', timezone: 'Europe/Berlin' }));
    await services.store.connections.apply(parseConnectionFile({ id: 'manual', source: { connector: 'source-faker' }, destination: { connector: 'destination-jsonl' } })[0]!);
    const out: string[] = [];
    expect(await schedulesMain(['--json'], env(), { out: (t) => out.push(t), err: (t) => out.push(t) })).toBe(0);
    const listed = JSON.parse(out[0]!) as Array<{ connectionId: string; nextRun: string; paused: boolean; lastSlot: unknown }>;
    expect(listed.map((l) => l.connectionId)).toEqual(['hourly']);
    const next = Date.parse(listed[0]!.nextRun);
    expect(next).toBeGreaterThan(Date.now());
    expect(next - Date.now()).toBeLessThanOrEqual(3_600_000);
    expect(new Date(next).getUTCMinutes()).toBe(0);
    expect(listed[0]).toMatchObject({ paused: false, lastSlot: null });
    out.length = 0;
    expect(await schedulesMain([], env(), { out: (t) => out.push(t), err: (t) => out.push(t) })).toBe(0);
    expect(out[0]).toMatch(/^CONNECTION\s+CRON\s+TIMEZONE\s+STATE\s+NEXT RUN\s+LAST SLOT\nhourly\s+0 \* \* \* \*\s+Europe\/Berlin\s+active\s+\S+Z\s+none yet$/);
  });
});

/** Launches nothing: what is measured here is what the scalers publish. */
const noRunners: RunnerLauncher = { kind: 'none', launch: () => Promise.resolve([]), list: () => Promise.resolve([]), close: () => Promise.resolve() };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a seconds schedule, two scalers, a crash, a restart and a broker outage', () => {
  const base = testConfig('sched-live');
  let services: TestServices;
  let proxy: TcpProxy;
  beforeAll(async () => {
    services = openTestServices(base);
    const target = new URL(base.amqpUrl);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) });
  });
  afterAll(async () => {
    await proxy.close();
    await services.cleanup();
  });

  it('publishes every slot exactly once, late by a handover or an outage but never twice nor lost', async () => {
    const viaProxy = new URL(base.amqpUrl);
    viaProxy.port = String(proxy.port);
    const config = testConfig('sched-live', { prefix: base.prefix, amqpUrl: viaProxy.toString(), pollInterval: '500ms', leaderTtl: '2s' });
    await services.store.connections.apply(connection('every-second', { cron: '* * * * * *', overlap: 'allow', catchUp: 'all' }));
    const decisions: Array<SlotDecision & { by: string }> = [];
    const make = (name: string, crashable = false) => {
      const scaler: Scaler = new Scaler({
        config,
        logger: services.logger,
        launcher: noRunners,
        store: services.store,
        onScheduleSlot: (d) => decisions.push({ ...d, by: name }),
        // A crash: stopped without resigning, its leadership (and its claims) left to expire.
        ...(crashable
          ? {
              leadership: (id: string) => {
                const lock = new LeaderLock(services.store.redis, services.store.keys.leader('scaler'), id, 2000);
                return { acquireOrRenew: () => lock.acquireOrRenew(), resign: () => Promise.resolve() };
              },
            }
          : {}),
      });
      return scaler;
    };
    const a = make('a', true);
    const b = make('b');
    await a.start();
    // A leads (it decides the slots), B follows.
    await waitFor('the first scaler to lead', () => decisions.some((d) => d.by === 'a'), 10_000, 50);
    await b.start();
    await sleep(15_000);
    await a.stop(); // crashes
    const crashedAt = Date.now();
    await sleep(12_000);
    const a2 = make('a2');
    await a2.start(); // restarted
    await sleep(10_000);
    // The broker goes away between two slots and stays away across four of them.
    await sleep(1500 - (Date.now() % 1000));
    const downAt = Date.now();
    await proxy.down();
    await sleep(4000);
    await proxy.up();
    const upAt = Date.now();
    await waitFor(
      'the slots of the outage to be published',
      async () => {
        const status = await services.store.schedules.status('every-second');
        return status.cursor !== undefined && status.cursor >= upAt;
      },
      30_000,
      200,
    );
    await sleep(3000);
    await a2.stop();
    await b.stop();

    const records = (await services.store.schedules.recentSlots('every-second', 500)).reverse();
    const slots = records.map((r) => r.slot);
    // Every second from the first slot to the last, each once, and each published.
    expect(slots.length).toBeGreaterThan(40);
    expect(slots).toEqual(Array.from({ length: slots.length }, (_, i) => slots[0]! + i * 1000));
    expect(records.filter((r) => r.outcome !== 'published')).toEqual([]);
    // Decided (and counted in the metrics) once each, whichever scaler did it.
    expect(decisions.map((d) => d.record.slot).sort((x, y) => x - y)).toEqual(slots);
    // B took over from the crashed A: the slots after the crash are B's (or A2's), none A's.
    expect(decisions.filter((d) => d.by === 'a' && d.record.slot > crashedAt)).toEqual([]);
    expect(decisions.filter((d) => d.by === 'b').length).toBeGreaterThan(20);
    const ofHandover = records.filter((r) => r.slot > crashedAt - 1000 && r.slot < crashedAt + 4000).map((r) => r.lagMs);
    // On the queue: one message per slot, under the slot's sync id.
    const connection_ = await connectBroker({ url: base.amqpUrl, logger: services.logger });
    const channel = await connection_.createChannel();
    const ids: string[] = [];
    for (;;) {
      const message = await channel.get(topologyFor(base.prefix).syncsQueue, { noAck: true });
      if (message === false) break;
      ids.push(String(message.properties.messageId));
    }
    await connection_.close();
    expect(ids.sort()).toEqual(records.map((r) => r.syncId).sort());
    // The outage's slots were published after it, once.
    const ofOutage = records.filter((r) => r.slot > downAt && r.slot < upAt);
    expect(ofOutage.length).toBeGreaterThanOrEqual(3);
    for (const r of ofOutage) expect(r.decidedAt).toBeGreaterThanOrEqual(upAt);
    const lags = records.map((r) => r.lagMs ?? NaN);
    const onTime = records.filter((r) => !(r.slot > downAt - 1000 && r.slot < upAt)).map((r) => r.lagMs ?? NaN);
    console.log(
      `schedule lag over ${records.length} slots: p50 ${percentile(lags, 0.5)} ms, p95 ${percentile(lags, 0.95)} ms, max ${Math.max(...lags)} ms; ` +
        `handover after the crash: ${ofHandover.join('/')} ms; outside the outage: p50 ${percentile(onTime, 0.5)} ms, p95 ${percentile(onTime, 0.95)} ms; outage ${upAt - downAt} ms, its slots published ${ofOutage.map((r) => r.lagMs).join('/')} ms late`,
    );
  }, 120_000);
});
