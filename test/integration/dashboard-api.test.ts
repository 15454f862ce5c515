// The dashboard's JSON API and /metrics over real HTTP, on the real broker and store: every
// route, what it refuses (bad filters, unknown ids, missing token, foreign hosts and origins)
// and the dead-letter actions, which must do what `tidepool dlq` does.
import { request as httpRequest } from 'node:http';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker, openConfirmChannel, queueDepth } from '../../shared/broker/connection.js';
import { listDeadLetters } from '../../shared/broker/dead-letters.js';
import { confirmPublish } from '../../shared/broker/publisher.js';
import { topologyFor, type Topology } from '../../shared/broker/topology.js';
import type { Config } from '../../shared/config.js';
import { HEADERS } from '../../shared/broker/envelope.js';
import { newSyncRequest, type SyncRequest } from '../../shared/messages.js';
import { createRegistry } from '../../shared/metrics.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { startDashboard, type Dashboard } from '../../scaler/dashboard/server.js';
import type { ScalerSnapshot } from '../../scaler/loop.js';
import { ScalerMetrics } from '../../scaler/metrics.js';
import { openTestServices, testConfig, type TestServices } from '../helpers/services.js';

const TOKEN = 'a-test-token-of-some-length';

/** A JSON answer as the tests read it: any shape, checked by the assertions. */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Answer {
  status: number;
  headers: Headers;
  body: Json;
  text: string;
}

async function call(base: string, path: string, init: RequestInit & { json?: unknown } = {}): Promise<Answer> {
  const { json, ...rest } = init;
  const res = await fetch(new URL(path, base), {
    ...rest,
    ...(json !== undefined ? { method: 'POST', body: JSON.stringify(json), headers: { 'content-type': 'application/json', ...(rest.headers as Record<string, string> | undefined) } } : {}),
    redirect: 'manual',
  });
  const text = await res.text();
  let body: Json = {};
  try {
    body = JSON.parse(text) as Json;
  } catch {
    // not JSON: the text is what to check
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** A GET with headers fetch will not set (Host). */
function rawGet(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end();
  });
}

function run(connectionId: string, overrides: Partial<RunRecord> = {}): RunRecord {
  const request = newSyncRequest(connectionId);
  const startedAt = new Date(Date.now() - 5_000).toISOString();
  return {
    syncId: request.syncId,
    connectionId,
    status: 'succeeded',
    attempt: 1,
    runnerId: 'runner-test',
    fullRefresh: false,
    requestedAt: request.requestedAt,
    startedAt,
    finishedAt: new Date().toISOString(),
    durationMs: 5_000,
    records: 10,
    bytes: 1000,
    streams: { users: { records: 10, bytes: 1000 } },
    stateCommits: 1,
    ...overrides,
  };
}

describe('dashboard API', () => {
  let config: Config;
  let services: TestServices;
  let topology: Topology;
  let broker: ChannelModel;
  let channel: ConfirmChannel;
  let dashboard: Dashboard;
  let secured: Dashboard;
  let base: string;
  let snapshot: ScalerSnapshot | undefined;
  const runs: Record<string, RunRecord> = {};
  const letters: Record<string, SyncRequest> = {};

  /** A dead letter as runner/delivery/dead-letter.ts publishes it. */
  const deadLetter = async (request: SyncRequest, reason: string, stderr: string[] = []) => {
    const now = new Date().toISOString();
    await confirmPublish(channel, topology.deadExchange, topology.deadRoutingKey, Buffer.from(JSON.stringify(request)), {
      messageId: request.syncId,
      headers: {
        [HEADERS.attempt]: 1,
        [HEADERS.reason]: reason,
        [HEADERS.origin]: 'source',
        [HEADERS.type]: 'config_error',
        [HEADERS.retryable]: false,
        [HEADERS.runner]: 'runner-test',
        [HEADERS.firstFailureAt]: now,
        [HEADERS.lastFailureAt]: now,
        [HEADERS.syncId]: request.syncId,
        [HEADERS.connectionId]: request.connectionId,
        [HEADERS.stderrSource]: JSON.stringify(stderr),
        [HEADERS.stderrDestination]: JSON.stringify([]),
      },
    });
  };

  beforeAll(async () => {
    config = testConfig('dashboard-api', { pollInterval: '500ms' });
    services = openTestServices(config);
    topology = topologyFor(config.prefix, config);
    broker = await connectBroker({ url: config.amqpUrl, logger: services.logger, timeoutMs: 10_000 });
    channel = await openConfirmChannel(broker, topology, services.logger);

    const { store } = services;
    for (const id of ['orders', 'users']) {
      await store.connections.apply({
        id,
        source: { connector: 'source-faker', config: { count: 10, password: 'not-for-the-page' } },
        destination: { connector: 'destination-jsonl', config: { destination_path: '/tmp/nowhere' } },
        // orders runs on a schedule, paused; users only on request.
        ...(id === 'orders' ? { schedule: { cron: '0 * * * *', timezone: 'Europe/Berlin', overlap: 'skip' as const, catchUp: 'latest' as const } } : {}),
      });
    }
    await store.schedules.setPaused('orders', true);
    const lock = await store.locks.tryAcquire('orders', 'test', 10_000);
    await store.state.commit(lock!, [{ type: 'STREAM', stream: { stream_descriptor: { name: 'users' }, stream_state: { cursor: 10 } } }], 'sync-x');
    await store.locks.release(lock!);

    runs.ok = run('orders', { startedAt: new Date(Date.now() - 10_000).toISOString() });
    runs.failed = run('users', {
      status: 'dead_lettered',
      records: 0,
      bytes: 0,
      streams: {},
      stateCommits: 0,
      error: { message: 'source exited with code 1: bad password', retryable: false, origin: 'source', type: 'config_error', stderr: { source: ['connecting…', 'FATAL: password authentication failed'] } },
    });
    runs.running = run('orders', { status: 'running', startedAt: new Date().toISOString() });
    for (const r of Object.values(runs)) {
      delete r.finishedAt;
      if (r.status !== 'running') r.finishedAt = new Date().toISOString();
      await store.runs.put(r);
    }
    const t = Date.now();
    for (let i = 0; i < 5; i++) await store.series.add({ t: t - (5 - i) * 1000, ready: i, inFlight: 1, dead: 2, running: 1, starting: 0, launched: 0 });

    letters.a = newSyncRequest('users');
    letters.b = newSyncRequest('users');
    letters.c = newSyncRequest('orders');
    letters.d = newSyncRequest('orders');
    await deadLetter(letters.a, 'source exited with code 1: bad password', ['FATAL: password authentication failed']);
    await deadLetter(letters.b, 'source exited with code 1: bad password');
    await deadLetter(letters.c, 'destination: disk full');
    await deadLetter(letters.d, 'destination: disk full');

    snapshot = { at: t, leader: true, ready: 4, deadLetters: 4, inFlight: 1, running: 1, starting: 0, launched: 0, reason: 'test' };
    const metrics = new ScalerMetrics(createRegistry());
    metrics.observe(snapshot, t + 12);
    const dashboardConfig = { ...config, dashboardPort: 0, dashboardHost: '127.0.0.1' };
    dashboard = await startDashboard({ config: { ...dashboardConfig, dashboardToken: '' }, store, logger: services.logger, registry: metrics.registry, snapshot: () => snapshot });
    secured = await startDashboard({ config: { ...dashboardConfig, dashboardToken: TOKEN }, store, logger: services.logger, registry: metrics.registry, snapshot: () => snapshot });
    base = dashboard.url;
  });

  afterAll(async () => {
    await dashboard?.close();
    await secured?.close();
    await broker?.close().catch(() => undefined);
    await services?.cleanup();
  });

  describe('reads', () => {
    it('GET /api/overview: the prefix, queues and the scaler\'s last tick', async () => {
      const a = await call(base, '/api/overview');
      expect(a.status).toBe(200);
      expect(a.body).toMatchObject({ prefix: config.prefix, queues: { syncs: topology.syncsQueue, dead: topology.deadQueue }, scaler: { ready: 4, deadLetters: 4, leader: true } });
    });

    it('GET /api/series: the recorded samples and syncs per minute, and only newer samples with since', async () => {
      const a = await call(base, '/api/series');
      expect(a.status).toBe(200);
      expect(a.body.samples.map((s: { ready: number }) => s.ready)).toEqual([0, 1, 2, 3, 4]);
      expect(a.body.samples[0]).toMatchObject({ inFlight: 1, dead: 2, running: 1, starting: 0 });
      expect(a.body.syncsPerMinute.length).toBeGreaterThanOrEqual(60);
      const minutes = a.body.syncsPerMinute as { succeeded: number; dead_lettered: number }[];
      const counted = { succeeded: minutes.reduce((n, m) => n + m.succeeded, 0), dead_lettered: minutes.reduce((n, m) => n + m.dead_lettered, 0) };
      expect(counted).toEqual({ succeeded: 1, dead_lettered: 1 });
      const last = a.body.samples[3].t as number;
      const newer = await call(base, `/api/series?since=${last + 1}`);
      expect(newer.body.samples.map((s: { ready: number }) => s.ready)).toEqual([4]);
    });

    it('GET /api/series: a malformed parameter is a 400 that says which', async () => {
      const a = await call(base, '/api/series?minutes=lots');
      expect(a.status).toBe(400);
      expect(a.body.error).toMatch(/minutes/);
      expect((await call(base, '/api/series?minutes=600')).status).toBe(400);
    });

    it('GET /api/runs: most recent first, filtered by connection and status, limited', async () => {
      const all = await call(base, '/api/runs');
      expect(all.status).toBe(200);
      expect(all.body.runs.map((r: RunRecord) => r.syncId)).toEqual([runs.running!.syncId, runs.failed!.syncId, runs.ok!.syncId]);
      const orders = await call(base, '/api/runs?connection=orders');
      expect(orders.body.runs.map((r: RunRecord) => r.connectionId)).toEqual(['orders', 'orders']);
      const dead = await call(base, '/api/runs?status=dead_lettered');
      expect(dead.body.runs.map((r: RunRecord) => r.syncId)).toEqual([runs.failed!.syncId]);
      const one = await call(base, '/api/runs?limit=1');
      expect(one.body.runs).toHaveLength(1);
      const none = await call(base, '/api/runs?connection=orders&status=dead_lettered');
      expect(none.body.runs).toEqual([]);
    });

    it('GET /api/runs: a malformed filter is a 400 with a message', async () => {
      const status = await call(base, '/api/runs?status=exploded');
      expect(status.status).toBe(400);
      expect(status.body.error).toMatch(/status: must be one of running, succeeded/);
      const limit = await call(base, '/api/runs?limit=ten');
      expect(limit.status).toBe(400);
      expect(limit.body.error).toMatch(/limit/);
      expect((await call(base, '/api/runs?limit=0')).status).toBe(400);
      const unknown = await call(base, '/api/runs?conection=orders');
      expect(unknown.status).toBe(400);
      expect(unknown.body.error).toMatch(/unknown parameter "conection"/);
      const twice = await call(base, '/api/runs?status=running&status=failed');
      expect(twice.status).toBe(400);
    });

    it('GET /api/runs/<syncId>: the run with its error and stderr tail; 404 for an unknown sync id', async () => {
      const a = await call(base, `/api/runs/${runs.failed!.syncId}`);
      expect(a.status).toBe(200);
      expect(a.body.error).toMatchObject({ message: 'source exited with code 1: bad password', origin: 'source', stderr: { source: ['connecting…', 'FATAL: password authentication failed'] } });
      const missing = await call(base, '/api/runs/00000000-0000-0000-0000-000000000000');
      expect(missing.status).toBe(404);
      expect(missing.body.error).toMatch(/no run of sync "00000000-0000-0000-0000-000000000000"/);
    });

    it('GET /api/connections: each with its committed state, last run and schedule, and no connector config', async () => {
      const a = await call(base, '/api/connections');
      expect(a.status).toBe(200);
      const byId = Object.fromEntries(a.body.connections.map((c: { id: string }) => [c.id, c]));
      expect(byId.orders).toMatchObject({ source: 'source-faker', destination: 'destination-jsonl', state: { version: 1, syncId: 'sync-x', streams: 1 }, lastRun: { syncId: runs.running!.syncId, status: 'running' } });
      expect(byId.users).toMatchObject({ state: null, lastRun: { syncId: runs.failed!.syncId, status: 'dead_lettered', error: 'source exited with code 1: bad password' } });
      expect(a.text).not.toContain('not-for-the-page');
      // The schedule column: next run and pause state; none for a connection synced on request.
      expect(byId.orders.schedule).toMatchObject({ schedule: { cron: '0 * * * *', timezone: 'Europe/Berlin' }, paused: true, nextRun: expect.stringMatching(/:00:00\.000Z$/), lastSlot: null });
      expect(byId.users.schedule).toBeNull();
    });

    it('GET /api/dead-letters: the letters with reason and attempts, filtered by connection; a letter in full; 404 for an unknown one', async () => {
      const all = await call(base, '/api/dead-letters');
      expect(all.status).toBe(200);
      expect(all.body).toMatchObject({ queue: topology.deadQueue, matched: 4, depth: 4 });
      const users = await call(base, '/api/dead-letters?connection=users');
      expect(users.body.letters.map((l: { id: string }) => l.id).sort()).toEqual([letters.a!.syncId, letters.b!.syncId].sort());
      expect(users.body.letters[0]).toMatchObject({ connectionId: 'users', reason: 'source exited with code 1: bad password', attempts: 1, origin: 'source', type: 'config_error', replayable: true });
      const one = await call(base, `/api/dead-letters/${letters.a!.syncId}`);
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ id: letters.a!.syncId, stderr: { source: ['FATAL: password authentication failed'], destination: [] } });
      expect(JSON.parse(one.body.body)).toMatchObject({ syncId: letters.a!.syncId });
      const missing = await call(base, '/api/dead-letters/no-such-letter');
      expect(missing.status).toBe(404);
      expect(missing.body.error).toMatch(/no dead letter "no-such-letter"/);
      expect((await call(base, '/api/dead-letters?limit=-1')).status).toBe(400);
      // Reading removed nothing.
      expect((await queueDepth(broker, topology.deadQueue)).ready).toBe(4);
    });

    it('GET /metrics: the scaler\'s metrics in the Prometheus text format', async () => {
      const a = await call(base, '/metrics');
      expect(a.status).toBe(200);
      expect(a.headers.get('content-type')).toMatch(/text\/plain/);
      for (const name of [
        'tidepool_queue_ready_messages 4',
        'tidepool_queue_in_flight_messages 1',
        'tidepool_dead_letter_messages 4',
        'tidepool_runners{state="running"} 1',
        'tidepool_runners{state="starting"} 0',
        'tidepool_scaler_tick_duration_seconds_count 1',
        'tidepool_runner_launches_total 0',
        'tidepool_runner_launch_failures_total 0',
        'tidepool_queue_backlog_age_seconds 0',
        'tidepool_broker_reconnects_total 0',
        'tidepool_store_reconnects_total 0',
      ]) {
        expect(a.text).toContain(name);
      }
    });

    it('unknown routes are 404 and wrong methods 405, with a message', async () => {
      const route = await call(base, '/api/nothing');
      expect(route.status).toBe(404);
      expect(route.body.error).toMatch(/no such API route/);
      const method = await call(base, '/api/runs', { method: 'DELETE' });
      expect(method.status).toBe(405);
      expect((await call(base, '/api/runs', { json: {} })).status).toBe(405);
      expect((await call(base, '/nothing-here')).status).toBe(404);
    });

    it('serves the page and uPlot', async () => {
      const page = await call(base, '/');
      expect(page.status).toBe(200);
      expect(page.text).toContain('<title>tidepool</title>');
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect((await call(base, '/assets/app.js')).status).toBe(200);
      const uplot = await call(base, '/assets/uPlot.iife.min.js');
      expect(uplot.status).toBe(200);
      expect(uplot.text).toContain('uPlot');
    });
  });

  describe('dead-letter actions', () => {
    it('POST /api/dead-letters/<id>/replay: back to the syncs queue, gone from the dead one; 404 for an unknown id', async () => {
      const before = (await queueDepth(broker, topology.syncsQueue)).ready;
      const a = await call(base, `/api/dead-letters/${letters.a!.syncId}/replay`, { json: {} });
      expect(a.status).toBe(200);
      expect(a.body).toMatchObject({ replayed: [{ id: letters.a!.syncId, connectionId: 'users', replayed: 1 }], failed: [], notFound: [] });
      expect((await queueDepth(broker, topology.syncsQueue)).ready).toBe(before + 1);
      const listing = await listDeadLetters(broker, topology);
      expect(listing.letters.map((l) => l.id)).not.toContain(letters.a!.syncId);
      const missing = await call(base, '/api/dead-letters/no-such-letter/replay', { json: {} });
      expect(missing.status).toBe(404);
      expect(missing.body.error).toMatch(/no dead letter "no-such-letter"/);
    });

    it('POST /api/dead-letters/replay: every letter of one connection; an empty body is refused', async () => {
      const empty = await call(base, '/api/dead-letters/replay', { json: {} });
      expect(empty.status).toBe(400);
      expect(empty.body.error).toMatch(/give connectionId, or "all": true/);
      const a = await call(base, '/api/dead-letters/replay', { json: { connectionId: 'users' } });
      expect(a.status).toBe(200);
      expect(a.body.replayed.map((r: { id: string }) => r.id)).toEqual([letters.b!.syncId]);
      const left = await listDeadLetters(broker, topology);
      expect(left.letters.map((l) => l.connectionId)).toEqual(['orders', 'orders']);
    });

    it('POST bodies must be JSON objects, sent as JSON, from this origin', async () => {
      const form = await call(base, '/api/dead-letters/replay', { method: 'POST', body: 'connectionId=orders', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(form.status).toBe(415);
      const bare = await call(base, `/api/dead-letters/${letters.c!.syncId}/replay`, { method: 'POST' });
      expect(bare.status).toBe(415);
      const notJson = await call(base, '/api/dead-letters/purge', { method: 'POST', body: '{oops', headers: { 'content-type': 'application/json' } });
      expect(notJson.status).toBe(400);
      expect(notJson.body.error).toMatch(/not JSON/);
      const unknownField = await call(base, '/api/dead-letters/purge', { json: { connection: 'orders' } });
      expect(unknownField.status).toBe(400);
      expect(unknownField.body.error).toMatch(/unknown field "connection"/);
      const foreign = await call(base, '/api/dead-letters/purge', { json: { all: true }, headers: { origin: 'http://evil.example' } });
      expect(foreign.status).toBe(403);
      expect((await listDeadLetters(broker, topology)).matched).toBe(2);
    });

    it('POST /api/dead-letters/purge: removes the letters of a connection; an empty body is refused', async () => {
      const empty = await call(base, '/api/dead-letters/purge', { json: {} });
      expect(empty.status).toBe(400);
      const bad = await call(base, '/api/dead-letters/purge', { json: { olderThan: 'a while' } });
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatch(/olderThan: must be a duration/);
      const young = await call(base, '/api/dead-letters/purge', { json: { olderThan: '7d' } });
      expect(young.body).toEqual({ purged: [], matched: 0 });
      const a = await call(base, '/api/dead-letters/purge', { json: { connectionId: 'orders' } });
      expect(a.status).toBe(200);
      expect(a.body.purged.sort()).toEqual([letters.c!.syncId, letters.d!.syncId].sort());
      expect((await queueDepth(broker, topology.deadQueue)).ready).toBe(0);
    });
  });

  describe('access', () => {
    it('without a token, answers only requests to a loopback host name (DNS rebinding)', async () => {
      const a = await rawGet(dashboard.port, '/api/overview', { host: `attacker.example:${dashboard.port}` });
      expect(a.status).toBe(403);
      expect(a.body.error).toMatch(/not allowed/);
      expect((await rawGet(dashboard.port, '/api/overview', { host: `localhost:${dashboard.port}` })).status).toBe(200);
      expect((await rawGet(dashboard.port, '/api/overview', { host: `127.0.0.1:${dashboard.port + 1}` })).status).toBe(403);
    });

    it('with a token: 401 with a message without it or with a wrong one, 200 with it', async () => {
      for (const path of ['/api/overview', '/api/runs', `/api/runs/${runs.ok!.syncId}`, '/api/dead-letters', '/api/connections', '/api/series']) {
        const none = await call(secured.url, path);
        expect(none.status, path).toBe(401);
        expect(none.body.error).toMatch(/unauthorized: this dashboard needs its token/);
        expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
      const wrong = await call(secured.url, '/api/overview', { headers: { authorization: 'Bearer not-the-token' } });
      expect(wrong.status).toBe(401);
      const post = await call(secured.url, '/api/dead-letters/purge', { json: { all: true } });
      expect(post.status).toBe(401);
      const metrics = await call(secured.url, '/metrics');
      expect(metrics.status).toBe(401);
      expect(metrics.text).toMatch(/unauthorized/);
      const ok = await call(secured.url, '/api/overview', { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
      expect((await call(secured.url, '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    });

    it('with a token, the page asks for it, and the login form sets a cookie that opens the page and the API', async () => {
      const page = await call(secured.url, '/');
      expect(page.status).toBe(401);
      expect(page.text).toContain('<form method="post" action="/login">');
      expect((await call(secured.url, '/assets/app.js')).status).toBe(401);
      const wrong = await call(secured.url, '/login', { method: 'POST', body: 'token=nope', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(wrong.status).toBe(401);
      const login = await call(secured.url, '/login', { method: 'POST', body: `token=${TOKEN}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(login.status).toBe(303);
      const cookie = login.headers.get('set-cookie')!;
      expect(cookie).toMatch(/HttpOnly; SameSite=Strict/);
      const withCookie = { headers: { cookie: cookie.split(';')[0]! } };
      expect((await call(secured.url, '/', withCookie)).status).toBe(200);
      expect((await call(secured.url, '/api/runs', withCookie)).status).toBe(200);
    });
  });
});
