// Notifications without services: which events a run gives, who wants them, the signature a
// receiver checks, the Slack body, the settings and connection fields that configure them.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { parseConnectionFile } from '../../shared/connections.js';
import { createLogger } from '../../shared/logger.js';
import { newEvent, runEvents, type NotificationEvent } from '../../shared/notifications/events.js';
import { Notifier } from '../../shared/notifications/notify.js';
import { renderBody } from '../../shared/notifications/payload.js';
import { shownUrl } from '../../shared/notifications/send.js';
import { signature, verifySignature } from '../../shared/notifications/signature.js';
import { parseTargets, signingSecret, targetSchema, wants } from '../../shared/notifications/targets.js';
import { redactObject } from '../../shared/redact.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { runnerEnv } from '../../scaler/runner-env.js';

const run = (status: RunRecord['status']): RunRecord => ({
  syncId: 's-1', connectionId: 'c-1', status, attempt: 2, runnerId: 'r', fullRefresh: false, requestedAt: '', startedAt: '', records: 3, bytes: 10, streams: {}, stateCommits: 0,
});

describe('notification events', () => {
  it('a failed attempt is sync.failed, a dead letter also sync.dead_lettered, a success sync.succeeded', () => {
    expect(runEvents(run('retrying'))).toEqual(['sync.failed']);
    expect(runEvents(run('dead_lettered'))).toEqual(['sync.failed', 'sync.dead_lettered']);
    expect(runEvents(run('succeeded'))).toEqual(['sync.succeeded']);
    expect(runEvents(run('requeued'))).toEqual([]);
    expect(runEvents(run('running'))).toEqual([]);
  });

  it('targets get failures by default and successes only when they opt in', () => {
    const plain = targetSchema.parse({ url: 'http://h/x' });
    expect(wants(plain, 'sync.failed')).toBe(true);
    expect(wants(plain, 'schedule.missed')).toBe(true);
    expect(wants(plain, 'sync.succeeded')).toBe(false);
    const opted = targetSchema.parse({ url: 'http://h/x', events: ['sync.succeeded'] });
    expect(wants(opted, 'sync.succeeded')).toBe(true);
    expect(wants(opted, 'sync.failed')).toBe(false);
    expect(wants(opted, 'notification.test')).toBe(true);
  });
});

describe('notify()', () => {
  const logged: string[] = [];
  const logger = createLogger({ level: 'warn', destination: { write: (line: string) => logged.push(line) } as unknown as NodeJS.WritableStream });

  it('queues a settled run’s events with ids and times of their own', async () => {
    const queued: NotificationEvent[] = [];
    await new Notifier({ enqueue: (e) => (queued.push(e), Promise.resolve(true)) }, logger).runSettled(run('dead_lettered'));
    expect(queued.map((e) => [e.type, e.syncId, e.connectionId])).toEqual([['sync.failed', 's-1', 'c-1'], ['sync.dead_lettered', 's-1', 'c-1']]);
    expect(new Set(queued.map((e) => e.id)).size).toBe(2);
    expect(Date.parse(queued[0]!.occurredAt)).toBeGreaterThan(0);
  });

  it('never throws: a store that fails or an outbox that is full is logged, and the caller goes on', async () => {
    logged.length = 0;
    await expect(new Notifier({ enqueue: () => Promise.reject(new Error('redis down')) }, logger).runSettled(run('retrying'))).resolves.toBeUndefined();
    await expect(new Notifier({ enqueue: () => Promise.resolve(false) }, logger).notify({ type: 'schedule.missed', connectionId: 'c-1' })).resolves.toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(logged.join('')).toMatch(/could not queue a notification; the sync result stands/);
    expect(logged.join('')).toMatch(/notification outbox full/);
  });
});

describe('webhook signature', () => {
  const secret = 'a-secret-of-16-chars';
  const body = '{"id":"e-1"}';
  it('verifies with the secret and the timestamp, and with nothing else', () => {
    const now = 1_700_000_000;
    const sig = signature(secret, now, body);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(verifySignature(secret, { timestamp: String(now), signature: sig }, body, now)).toBe(true);
    expect(verifySignature('another-secret-16ch', { timestamp: String(now), signature: sig }, body, now)).toBe(false);
    expect(verifySignature(secret, { timestamp: String(now), signature: sig }, `${body} `, now)).toBe(false);
    expect(verifySignature(secret, { timestamp: String(now + 1), signature: sig }, body, now)).toBe(false);
    // A delivery replayed later than the tolerance is refused.
    expect(verifySignature(secret, { timestamp: String(now), signature: sig }, body, now + 301)).toBe(false);
  });

  it('reads a secretRef from the environment or a file, never quoting it', () => {
    expect(signingSecret({ secretRef: { env: 'HOOK_SECRET' } }, { HOOK_SECRET: 'from-env' })).toBe('from-env');
    expect(() => signingSecret({ secretRef: { env: 'HOOK_SECRET' } }, {})).toThrow(/HOOK_SECRET is not set/);
    expect(() => signingSecret({ secretRef: { file: '/nonexistent/secret' } })).toThrow(/cannot read \/nonexistent\/secret: ENOENT/);
    expect(signingSecret({})).toBeUndefined();
  });
});

describe('payloads', () => {
  it('json is the event; slack is one text field saying what, which and why', () => {
    const event = newEvent({ type: 'sync.dead_lettered', connectionId: 'c-1', syncId: 's-1', run: { ...run('dead_lettered'), error: { type: 'config_error', origin: 'source', message: 'bad host', retryable: false } } });
    expect(JSON.parse(renderBody(event, 'json'))).toEqual(event);
    const slack = JSON.parse(renderBody(event, 'slack')) as Record<string, string>;
    expect(Object.keys(slack)).toEqual(['text']);
    expect(slack.text).toContain('sync dead-lettered');
    expect(slack.text).toContain('connection `c-1`');
    expect(slack.text).toContain('config_error (source): bad host');
  });

  it('URLs are shown without what follows their first path segment', () => {
    expect(shownUrl('https://hooks.slack.com/services/T0/B0/XXXXSECRET')).toBe('https://hooks.slack.com/services/…');
    expect(shownUrl('http://127.0.0.1:8080/hook')).toBe('http://127.0.0.1:8080/hook');
  });
});

describe('notification settings', () => {
  const hook = { url: 'https://example.com/hook', secret: 'sixteen-chars-secret!', events: ['sync.failed'] };

  it('TIDEPOOL_NOTIFICATIONS takes a JSON list; a config file the list itself', () => {
    expect(parseTargets(loadConfig({ TIDEPOOL_NOTIFICATIONS: JSON.stringify([hook]) }).notifications)).toEqual([{ ...hook, format: 'json' }]);
    expect(parseTargets(loadConfig({}, undefined, { notifications: [hook] as unknown as string }).notifications)).toHaveLength(1);
    expect(loadConfig({}).notifications).toBe('');
  });

  it('a bad value is refused without being quoted', () => {
    const bad = JSON.stringify([{ ...hook, url: 'ftp://x' }]);
    expect(() => loadConfig({ TIDEPOOL_NOTIFICATIONS: bad })).toThrow(/0\.url: an http:\/\/ or https:\/\/ URL/);
    expect(() => loadConfig({ TIDEPOOL_NOTIFICATIONS: bad })).not.toThrow(/sixteen-chars-secret/);
    expect(() => loadConfig({ TIDEPOOL_NOTIFICATIONS: `[{"secret": "sixteen-chars-secret!"` })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ TIDEPOOL_NOTIFICATIONS: `[{"secret": "sixteen-chars-secret!"` })).not.toThrow(/sixteen-chars/);
  });

  it('is the scaler’s: runners never get the webhooks or their secrets', () => {
    const config = loadConfig({ TIDEPOOL_NOTIFICATIONS: JSON.stringify([hook]) });
    expect(Object.keys(runnerEnv(config, 'local', {}))).not.toContain('TIDEPOOL_NOTIFICATIONS');
    expect(JSON.stringify(runnerEnv(config, 'pod', {}))).not.toContain(hook.secret);
  });

  it('a connection carries its own targets; their secrets are redacted where connections are shown', () => {
    const [connection] = parseConnectionFile({
      id: 'c-1', source: { connector: 'source-faker' }, destination: { connector: 'destination-jsonl' },
      notifications: [{ url: 'https://example.com/a', secret: 'sixteen-chars-secret!', format: 'slack' }, { url: 'https://example.com/b', secretRef: { env: 'HOOK' } }],
    });
    expect(connection!.notifications).toHaveLength(2);
    expect(JSON.stringify(redactObject(connection))).not.toContain('sixteen-chars-secret!');
    expect(() => parseConnectionFile({ id: 'c', source: { connector: 'source-faker' }, destination: { connector: 'destination-jsonl' }, notifications: [{ url: 'https://e/a', secret: 'sixteen-chars-secret!', secretRef: { env: 'X' } }] })).toThrow(/secret or secretRef, not both/);
    expect(() => parseConnectionFile({ id: 'c', source: { connector: 'source-faker' }, destination: { connector: 'destination-jsonl' }, notifications: [{ url: 'https://e/a', events: ['sync.exploded'] }] })).toThrow(/notifications\[0\]\.events/);
  });
});
