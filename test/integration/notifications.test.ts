// Webhook notifications against a real Redis and a local HTTP receiver that fails each event
// (500), then times out on it, then accepts it: every event reaches the receiver accepted exactly
// once, signed, secrets redacted, through a restart and a crash of the deliverer; and from a real
// runner's failing sync to sync.failed + sync.dead_lettered at the receiver.
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configEnv } from '../../shared/config.js';
import type { Connection } from '../../shared/connections.js';
import type { NotificationEvent } from '../../shared/notifications/events.js';
import { Notifier } from '../../shared/notifications/notify.js';
import { verifySignature } from '../../shared/notifications/signature.js';
import { CLI_PATH } from '../../shared/paths.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { Deliverer } from '../../scaler/notifications/deliverer.js';
import { NotificationMetrics } from '../../scaler/notifications/metrics.js';
import { tidepool } from '../security/cli.js';
import { closeRunnerHarness, deadLetterOf, openRunnerHarness, publishSyncOf, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { freePort } from '../helpers/ports.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

const SECRET = 'whsec-0123456789abcdef';
const PASSWORD = 'hunter2-Pa55word-never-sent';

interface Received {
  eventId: string;
  type: string;
  attempt: number;
  body: string;
  verified: boolean;
  answered: 'failed' | 'hung' | 'accepted';
}

/** A receiver that answers each event's first delivery 500, leaves its second unanswered, accepts its third. */
class FlakyReceiver {
  readonly requests: Received[] = [];
  private server!: Server;
  private readonly seen = new Map<string, number>();
  /** Failures before accepting, per event: 0 accepts at once. */
  constructor(private readonly failures = 2) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => void this.onRequest(req, res));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const eventId = String(req.headers['x-tidepool-event-id']);
    const n = (this.seen.get(eventId) ?? 0) + 1;
    this.seen.set(eventId, n);
    const verified = verifySignature(SECRET, { timestamp: req.headers['x-tidepool-timestamp'] as string, signature: req.headers['x-tidepool-signature'] as string }, body);
    const answered = n > this.failures ? 'accepted' : n === 1 ? 'failed' : 'hung';
    this.requests.push({ eventId, type: String(req.headers['x-tidepool-event']), attempt: Number(req.headers['x-tidepool-delivery-attempt']), body, verified, answered });
    if (answered === 'accepted') res.writeHead(204).end();
    else if (answered === 'failed') res.writeHead(500).end('boom');
    // hung: no answer at all; the deliverer's timeout ends it.
  }

  accepted(): Received[] {
    return this.requests.filter((r) => r.answered === 'accepted');
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const FAST = { pollMs: 50, timeoutMs: 400, backoff: { baseMs: 100, factor: 2, capMs: 400 } };

function failedRun(syncId: string, connectionId: string, status: RunRecord['status']): RunRecord {
  return {
    syncId, connectionId, status, attempt: 1, runnerId: 'r-1', fullRefresh: false, requestedAt: new Date().toISOString(), startedAt: new Date().toISOString(),
    records: 0, bytes: 0, streams: {}, stateCommits: 0,
    // A connector that echoed its DSN into its error: the password must not reach a receiver.
    error: { type: 'config_error', origin: 'destination', message: `could not connect: postgres://app:${PASSWORD}@db/app`, retryable: false },
  };
}

describe('webhook delivery from the outbox', () => {
  let s: TestServices;
  let receiver: FlakyReceiver;
  let url: string;
  const deliverers: Deliverer[] = [];

  beforeAll(async () => {
    s = openTestServices(testConfig('notifications'));
    receiver = new FlakyReceiver();
    url = await receiver.start();
  });
  afterEach(async () => {
    for (const d of deliverers.splice(0)) await d.stop();
  });
  afterAll(async () => {
    await receiver.close();
    await s.cleanup();
  });

  const deliverer = (metrics?: NotificationMetrics) => {
    const d = new Deliverer({ store: s.store, targets: [], logger: s.logger, isLeader: () => true, ...FAST, ...(metrics ? { metrics } : {}) });
    deliverers.push(d);
    return d;
  };

  it('every event reaches the receiver accepted exactly once after a 500 and a timeout, signed and redacted, through a restart and a crash of the deliverer', async () => {
    const connection: Connection = {
      id: 'hooked',
      source: { connector: 'source-faker', config: {} },
      destination: { connector: 'destination-postgres', config: { host: 'db', password: PASSWORD } },
      notifications: [{ url, secret: SECRET, format: 'json', events: ['sync.failed', 'sync.dead_lettered', 'sync.succeeded', 'schedule.missed'] }],
    };
    await s.store.connections.apply(connection);
    const notifier = new Notifier(s.store.outbox, s.logger);
    const events = 12;
    for (let i = 0; i < events / 3; i++) {
      await notifier.runSettled(failedRun(`sync-${i}`, 'hooked', 'dead_lettered')); // sync.failed + sync.dead_lettered
      await notifier.notify({ type: 'schedule.missed', connectionId: 'hooked', data: { slot: `2026-01-01T0${i}:00:00Z`, reason: 'no scaler ran' } });
    }
    expect(await s.store.outbox.pending()).toBe(events);

    // A crash: a deliverer claims four events and dies holding them (their lease, 1 s, runs out).
    const abandoned = await s.store.outbox.claim(4, 1_000);
    expect(abandoned).toHaveLength(4);
    const registry = new Registry();
    const metrics = new NotificationMetrics(registry);
    const first = deliverer(metrics);
    first.start();
    // A restart in the middle: every event failed once, some are hanging or waiting for a retry.
    await waitFor('a first failure of every event', () => new Set(receiver.requests.map((r) => r.eventId)).size === events || undefined, 15_000, 20);
    await first.stop();
    const second = deliverer(metrics);
    second.start();
    await waitFor('every event accepted', () => receiver.accepted().length >= events || undefined, 30_000, 50);
    // Nothing more comes: a late duplicate would show here.
    await new Promise((resolve) => setTimeout(resolve, 1_500));

    const accepted = receiver.accepted();
    const perEvent = new Map<string, number>();
    for (const r of accepted) perEvent.set(r.eventId, (perEvent.get(r.eventId) ?? 0) + 1);
    expect(perEvent.size).toBe(events);
    expect([...perEvent.values()].every((n) => n === 1)).toBe(true);
    expect(receiver.requests.length).toBe(events * 3);
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
    expect(accepted.every((r) => r.attempt === 3)).toBe(true);
    expect(receiver.requests.some((r) => r.body.includes(PASSWORD))).toBe(false);
    const types = accepted.map((r) => r.type).sort();
    expect(types.filter((t) => t === 'sync.failed')).toHaveLength(4);
    expect(types.filter((t) => t === 'sync.dead_lettered')).toHaveLength(4);
    expect(types.filter((t) => t === 'schedule.missed')).toHaveLength(4);
    const body = JSON.parse(accepted.find((r) => r.type === 'sync.dead_lettered')!.body) as NotificationEvent;
    expect(body.run?.error?.message).toContain('[redacted]');
    expect(body.connectionId).toBe('hooked');
    expect(await s.store.outbox.pending()).toBe(0);

    const text = await registry.metrics();
    expect(text).toContain('tidepool_notifications_delivered_total{event="sync.failed"} 4');
    expect(text).toContain('tidepool_notifications_failed_total{event="schedule.missed",reason="http_5xx"} 4');
    expect(text).toContain('tidepool_notifications_failed_total{event="sync.dead_lettered",reason="timeout"} 4');
    expect(text).toContain('tidepool_notifications_pending_messages 0');
    console.log(`webhook deliveries under receiver failures: ${events} events, ${receiver.requests.length} requests (${receiver.requests.filter((r) => r.answered === 'failed').length} answered 500, ${receiver.requests.filter((r) => r.answered === 'hung').length} timed out, ${accepted.length} accepted, ${accepted.length - perEvent.size} duplicates), ${abandoned.length} items abandoned by a crashed deliverer`);
  }, 60_000);

  it('a slack target gets {text}; a follower delivers nothing; successes go only to targets that opted in', async () => {
    const quick = new FlakyReceiver(0);
    const slackUrl = await quick.start();
    try {
      await s.store.connections.apply({
        id: 'slacked',
        source: { connector: 'source-faker', config: {} },
        destination: { connector: 'destination-jsonl', config: {} },
        notifications: [{ url: slackUrl, format: 'slack' }],
      });
      const notifier = new Notifier(s.store.outbox, s.logger);
      const { error: _none, ...succeeded } = failedRun('sync-ok', 'slacked', 'succeeded');
      await notifier.runSettled(succeeded);
      await notifier.runSettled(failedRun('sync-bad', 'slacked', 'retrying'));
      const follower = new Deliverer({ store: s.store, targets: [], logger: s.logger, isLeader: () => false, ...FAST });
      expect(await follower.tick()).toBe(0);
      const leader = deliverer();
      leader.start();
      await waitFor('the failure delivered', () => quick.accepted().length >= 1 || undefined, 10_000, 50);
      await waitFor('the outbox empty', async () => (await s.store.outbox.pending()) === 0 || undefined, 10_000, 50);
      expect(quick.requests).toHaveLength(1);
      const body = JSON.parse(quick.requests[0]!.body) as { text: string };
      expect(Object.keys(body)).toEqual(['text']);
      expect(body.text).toContain('sync failed — connection `slacked`, sync `sync-bad`');
      expect(body.text).not.toContain(PASSWORD);
    } finally {
      await quick.close();
    }
  });

  it('a delivery failing until its event is too old is given up: counted, listed without its secret, gone from the outbox', async () => {
    const never = new FlakyReceiver(Number.MAX_SAFE_INTEGER);
    const neverUrl = await never.start();
    try {
      const registry = new Registry();
      const d = new Deliverer({ store: s.store, targets: [{ url: neverUrl, format: 'json', secret: SECRET }], logger: s.logger, isLeader: () => true, metrics: new NotificationMetrics(registry), ...FAST, maxAgeMs: 1_500 });
      deliverers.push(d);
      await new Notifier(s.store.outbox, s.logger).notify({ type: 'schedule.missed', connectionId: 'nowhere' });
      d.start();
      await waitFor('the delivery given up', async () => (await registry.metrics()).includes('reason="gave_up"} 1') || undefined, 15_000, 100);
      expect(await s.store.outbox.pending()).toBe(0);
      const [givenUp] = await s.store.redis.lrange(s.store.keys.outboxGivenUp(), 0, -1);
      expect(givenUp).toContain(neverUrl);
      expect(givenUp).not.toContain(SECRET);
      expect(never.requests.length).toBeGreaterThanOrEqual(2);
    } finally {
      await never.close();
    }
  });

  it('`tidepool notifications test` sends a signed test event and says what the receiver answered', async () => {
    const quick = new FlakyReceiver(0);
    const hookUrl = await quick.start();
    try {
      const env = { ...configEnv(s.config), TIDEPOOL_NOTIFICATIONS: JSON.stringify([{ url: hookUrl, secret: SECRET }]) };
      const ok = await tidepool(['notifications', 'test', '--json'], env);
      expect(ok.code, ok.stderr).toBe(0);
      const out = JSON.parse(ok.stdout) as { eventId: string; results: Array<{ ok: boolean; status: number; signed: boolean }> };
      expect(out.results).toEqual([expect.objectContaining({ ok: true, status: 204, signed: true })]);
      expect(quick.requests).toHaveLength(1);
      expect(quick.requests[0]).toMatchObject({ eventId: out.eventId, type: 'notification.test', verified: true });
      expect(ok.stdout + ok.stderr).not.toContain(SECRET);

      const closed = new FlakyReceiver(0);
      const closedUrl = await closed.start();
      await closed.close();
      const down = await tidepool(['notifications', 'test', '--url', closedUrl], configEnv(s.config));
      expect(down.code).toBe(1);
      expect(down.stdout).toMatch(/failed: ECONNREFUSED/);
    } finally {
      await quick.close();
    }
  });
});

describe('the scaler delivers', () => {
  it('a `tidepool scaler` with TIDEPOOL_NOTIFICATIONS leads, delivers a queued event, and counts it on /metrics', async () => {
    const s = openTestServices(testConfig('notify-scaler'));
    const receiver = new FlakyReceiver(1);
    const url = await receiver.start();
    const port = await freePort();
    const scaler = spawn(process.execPath, [CLI_PATH, 'scaler'], {
      env: { PATH: process.env.PATH ?? '', ...configEnv(s.config), TIDEPOOL_POLL_INTERVAL: '200ms', TIDEPOOL_METRICS_PORT: String(port), TIDEPOOL_NOTIFICATIONS: JSON.stringify([{ url, secret: SECRET }]) },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      await new Notifier(s.store.outbox, s.logger).notify({ type: 'schedule.missed', connectionId: 'nowhere', data: { slot: '2026-12-05T02:00:00Z' } });
      await waitFor('the event accepted', () => receiver.accepted().length === 1 || undefined, 30_000, 100);
      expect(receiver.requests.map((r) => [r.type, r.answered, r.verified])).toEqual([['schedule.missed', 'failed', true], ['schedule.missed', 'accepted', true]]);
      const text = await waitFor('the delivery counted', async () => {
        const t = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).catch(() => '');
        return t.includes('tidepool_notifications_delivered_total{event="schedule.missed"} 1') ? t : undefined;
      }, 10_000, 200);
      expect(text).toContain('tidepool_notifications_failed_total{event="schedule.missed",reason="http_5xx"} 1');
    } finally {
      scaler.kill('SIGTERM');
      await new Promise((resolve) => scaler.once('exit', resolve));
      await receiver.close();
      await s.cleanup();
    }
  }, 60_000);
});

describe('a real runner notifies', () => {
  let h: RunnerHarness;
  let receiver: FlakyReceiver;
  let deliverer: Deliverer | undefined;

  beforeAll(async () => {
    h = await openRunnerHarness('notify-runner', { maxAttempts: 1 });
    receiver = new FlakyReceiver(1);
    spawnRunner(h, 'notify-runner');
  });
  afterAll(async () => {
    await deliverer?.stop();
    await receiver.close();
    await closeRunnerHarness(h);
  });

  it('a sync that fails for good gives sync.failed and sync.dead_lettered, each delivered once, the password redacted', async () => {
    const url = await receiver.start();
    await h.services.store.connections.apply({
      id: 'doomed',
      source: { connector: 'source-e2e-test', config: { records: 0, then: 'exit', exitCode: 1, failureType: 'config_error', message: `login failed with ${PASSWORD}`, password: PASSWORD } },
      destination: { connector: 'destination-e2e-test', config: {} },
      notifications: [{ url, format: 'json', secretRef: { env: 'TEST_HOOK_SECRET' } }],
    });
    process.env.TEST_HOOK_SECRET = SECRET;
    const syncId = await publishSyncOf(h, 'doomed');
    await deadLetterOf(h, syncId);
    deliverer = new Deliverer({ store: h.services.store, targets: [], logger: h.services.logger, isLeader: () => true, ...FAST });
    deliverer.start();
    await waitFor('both events accepted', () => receiver.accepted().length >= 2 || undefined, 20_000, 50);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const accepted = receiver.accepted();
    expect(accepted.map((r) => r.type).sort()).toEqual(['sync.dead_lettered', 'sync.failed']);
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
    expect(receiver.requests.some((r) => r.body.includes(PASSWORD))).toBe(false);
    const dead = JSON.parse(accepted.find((r) => r.type === 'sync.dead_lettered')!.body) as NotificationEvent;
    expect(dead).toMatchObject({ syncId, connectionId: 'doomed', run: { status: 'dead_lettered', error: { type: 'config_error' } } });
    delete process.env.TEST_HOOK_SECRET;
  }, 60_000);
});
