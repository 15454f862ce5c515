// Attack: the dashboard from a browser on another site (headless Chromium, and the headers it sends) and from a token guesser, on a real
// dashboard (real HTTP) with the real broker and Redis.
// - Another site's page reading or driving the API: `<img src=".../api/dead-letters">`, a form,
//   a fetch — the headers below are the ones Chromium sends for each. Refused whatever the
//   method; the dashboard's own page, the address bar and non-browser clients still pass.
// - Listing dead letters again and again (a page refreshing, or another site making the
//   browser do it): the letter stays, its headers unchanged. And why the dead queue is no longer
//   a quorum queue: with a delivery limit (RabbitMQ 4.0–4.2 give every quorum queue 20), the
//   same listings drop the letter.
// - The token in a URL (logged, kept in history): refused, even when right.
// - Guessing the token: after a few wrong ones, the next attempt waits, the right token included.
import { existsSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium } from 'playwright-core';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { getDeadLetter, listDeadLetters } from '../../shared/broker/dead-letters.js';
import { HEADERS } from '../../shared/broker/envelope.js';
import { confirmPublish } from '../../shared/broker/publisher.js';
import { topologyFor, type Topology } from '../../shared/broker/topology.js';
import type { Config } from '../../shared/config.js';
import { newSyncRequest, type SyncRequest } from '../../shared/messages.js';
import { createRegistry } from '../../shared/metrics.js';
import { startDashboard, type Dashboard } from '../../scaler/dashboard/server.js';
import { FREE_FAILURES } from '../../scaler/dashboard/login-throttle.js';
import { deletePrefix, openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

const TOKEN = 'sec-dashboard-token-0123456789';
const CHROMIUM = process.env.TIDEPOOL_TEST_CHROMIUM ?? '/usr/bin/chromium';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One request with exactly these headers (fetch would add or refuse some). */
function raw(url: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(new URL(path, url), { method: init.method ?? 'GET', headers: init.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** What Chromium sends for requests another site's page makes it send. */
const CROSS_SITE = {
  image: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' },
  form: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
  fetch: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'empty', origin: 'http://evil.example' },
  sameSite: { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' },
} as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('dashboard attacks', () => {
  let config: Config;
  let services: TestServices;
  let topology: Topology;
  let broker: ChannelModel;
  let channel: ConfirmChannel;
  let open: Dashboard;
  let secured: Dashboard;
  let letter: SyncRequest;

  const start = (token: string) =>
    startDashboard({ config: { ...config, dashboardPort: 0, dashboardHost: '127.0.0.1', dashboardToken: token }, store: services.store, logger: services.logger, registry: createRegistry(), snapshot: () => undefined });

  beforeAll(async () => {
    config = testConfig('sec-dashboard');
    services = openTestServices(config);
    topology = topologyFor(config.prefix, config);
    broker = await connectBroker({ url: config.amqpUrl, logger: services.logger, timeoutMs: 10_000 });
    channel = await openConfirmChannel(broker, topology, services.logger);
    letter = newSyncRequest('victim');
    const at = new Date().toISOString();
    await confirmPublish(channel, topology.deadExchange, topology.deadRoutingKey, Buffer.from(JSON.stringify(letter)), {
      messageId: letter.syncId,
      headers: { [HEADERS.reason]: 'source exited with code 1', [HEADERS.attempt]: 5, [HEADERS.firstFailureAt]: at, [HEADERS.lastFailureAt]: at, [HEADERS.connectionId]: 'victim', 'x-custom-trace': 'kept' },
    });
    open = await start('');
    secured = await start(TOKEN);
  });

  afterAll(async () => {
    await open?.close();
    await secured?.close();
    await broker?.close().catch(() => undefined);
    await services?.cleanup();
  });

  it('another site cannot make the browser read or drive the API, whatever the method', async () => {
    const attacks: [string, string, Record<string, string>, string?][] = [
      ['GET', '/api/dead-letters', CROSS_SITE.image],
      ['HEAD', '/api/dead-letters', CROSS_SITE.image],
      ['GET', `/api/dead-letters/${letter.syncId}`, CROSS_SITE.image],
      ['GET', '/api/runs', CROSS_SITE.fetch],
      ['GET', '/api/dead-letters', CROSS_SITE.sameSite],
      ['POST', '/api/dead-letters/purge', CROSS_SITE.form, 'all=true'],
      ['POST', '/api/dead-letters/purge', { ...CROSS_SITE.fetch, 'content-type': 'text/plain' }, '{"all":true}'],
      // Browsers without Sec-Fetch-Site: Origin alone decides; a sandboxed frame sends "null".
      ['GET', '/api/dead-letters', { origin: 'http://evil.example' }],
      ['POST', '/api/dead-letters/purge', { origin: 'null', 'content-type': 'application/json' }, '{"all":true}'],
      // Sec-Fetch-Site cannot be talked round by an Origin that looks right.
      ['GET', '/api/dead-letters', { ...CROSS_SITE.image, origin: open.url.replace(/\/$/, '') }],
    ];
    for (const [method, path, headers, body] of attacks) {
      const answer = await raw(open.url, path, { method, headers, ...(body !== undefined ? { body } : {}) });
      const what = `${method} ${path} ${JSON.stringify(headers)}`;
      expect(answer.status, what).toBe(403);
      if (method !== 'HEAD') expect(JSON.parse(answer.text).error, what).toMatch(/^cross-(site|origin) request refused/);
    }
    // With a token too, and before the token is even looked at.
    expect((await raw(secured.url, '/api/dead-letters', { headers: { ...CROSS_SITE.fetch, authorization: `Bearer ${TOKEN}` } })).status).toBe(403);
    expect((await listDeadLetters(broker, topology)).letters.map((l) => l.id)).toEqual([letter.syncId]);
  });

  it('in a real browser, another site\'s <img>, no-cors fetch and form post reach the API only to be refused', async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: scripts/setup installs Debian's chromium (or set TIDEPOOL_TEST_CHROMIUM)`);
    // The victim's dashboard at http://localhost:<port>; the attacker's page at http://127.0.0.1:<other port>: another site.
    const target = `http://localhost:${open.port}`;
    const seen: { path: string; site: string | undefined; status: number }[] = [];
    const record = (req: { url?: string; headers: Record<string, string | string[] | undefined> }, res: { statusCode: number; on(event: 'finish', listener: () => void): unknown }) => {
      res.on('finish', () => seen.push({ path: req.url ?? '', site: req.headers['sec-fetch-site'] as string | undefined, status: res.statusCode }));
    };
    open.server.on('request', record);
    const attacker: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><img src="${target}/api/dead-letters">
<form id="f" method="post" action="${target}/api/dead-letters/purge" enctype="text/plain"><input name='{"all":true,"x":"' value='"}'></form>
<script>fetch('${target}/api/dead-letters/purge', { method: 'POST', mode: 'no-cors', body: '{"all":true}' }).finally(() => document.getElementById('f').submit());</script>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${(attacker.address() as AddressInfo).port}/`);
      await waitFor('the three requests of the page', () => seen.filter((s) => s.path.startsWith('/api/')).length >= 3, 15_000);
      const api = seen.filter((s) => s.path.startsWith('/api/'));
      expect(api.map((s) => s.path).sort()).toEqual(['/api/dead-letters', '/api/dead-letters/purge', '/api/dead-letters/purge']);
      for (const s of api) expect(s).toMatchObject({ site: 'cross-site', status: 403 });
    } finally {
      await browser.close();
      open.server.off('request', record);
      await new Promise((resolve) => attacker.close(resolve));
    }
    expect((await listDeadLetters(broker, topology)).letters.map((l) => l.id)).toEqual([letter.syncId]);
  });

  it('the dashboard\'s own page, the address bar and clients that are not browsers still pass', async () => {
    const own = open.url.replace(/\/$/, '');
    expect((await raw(open.url, '/api/dead-letters', { headers: { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', origin: own } })).status).toBe(200);
    expect((await raw(open.url, '/api/dead-letters', { headers: { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' } })).status).toBe(200);
    expect((await raw(open.url, '/api/dead-letters')).status).toBe(200);
    // A link from another site still opens the page itself (it reads the API same-origin).
    expect((await raw(open.url, '/', { headers: { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' } })).status).toBe(200);
  });

  it('listing a dead letter 25 times leaves it there with the same headers, never counted as a delivery', async () => {
    const before = await getDeadLetter(broker, topology, letter.syncId);
    for (let i = 0; i < 25; i++) {
      const answer = await raw(open.url, '/api/dead-letters', { headers: { 'sec-fetch-site': 'same-origin' } });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text)).toMatchObject({ matched: 1, letters: [{ id: letter.syncId, deliveryCount: 0, attempts: 5 }], warnings: [] });
    }
    const after = await getDeadLetter(broker, topology, letter.syncId);
    expect(after?.headers).toEqual(before?.headers);
    expect(after?.headers).toMatchObject({ [HEADERS.reason]: 'source exited with code 1', 'x-custom-trace': 'kept' });
    expect(after?.headers).not.toHaveProperty('x-delivery-count');
  });

  it('the same listings on a quorum dead queue with a delivery limit of 20 (RabbitMQ 4.0–4.2\'s default) drop the letter', async () => {
    const quorum = testConfig('sec-dashboard-quorum');
    const t = topologyFor(quorum.prefix, quorum);
    try {
      const ch = await broker.createChannel();
      await ch.assertExchange(t.deadExchange, 'direct', { durable: true });
      await ch.assertQueue(t.deadQueue, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 20 } });
      await ch.bindQueue(t.deadQueue, t.deadExchange, t.deadRoutingKey);
      ch.publish(t.deadExchange, t.deadRoutingKey, Buffer.from(JSON.stringify(letter)), { persistent: true, messageId: letter.syncId });
      await ch.close();
      const seen: number[] = [];
      for (let i = 0; i < 25; i++) seen.push((await listDeadLetters(broker, t)).matched);
      expect(seen.slice(0, 20)).toEqual(Array<number>(20).fill(1));
      expect(seen.at(-1)).toBe(0);
    } finally {
      await deletePrefix(quorum);
    }
  });

  it('the token is never taken from a URL, not even the right one', async () => {
    for (const path of [`/api/overview?token=${TOKEN}`, `/?token=${TOKEN}`, `/metrics?token=${TOKEN}`]) {
      const answer = await raw(secured.url, path);
      expect(answer.status, path).toBe(400);
      expect(answer.text).toMatch(/never taken from a URL/);
      expect(answer.text).not.toContain(TOKEN);
    }
    const login = await raw(secured.url, `/login?token=${TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(login.status).toBe(400);
    expect(login.headers['set-cookie']).toBeUndefined();
    // In the form body or a header it works.
    expect((await raw(secured.url, '/api/overview', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  });

  it('guessing the token at /login: after a few wrong ones, every attempt waits — the right one too', async () => {
    const dashboard = await start(TOKEN);
    try {
      const form = (token: string) => raw(dashboard.url, '/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${token}` });
      for (let i = 0; i < FREE_FAILURES; i++) expect((await form(`guess-${i}`)).status).toBe(401);
      const blocked = await form(TOKEN);
      expect(blocked.status).toBe(429);
      expect(blocked.headers['retry-after']).toBe('1');
      expect(blocked.headers['set-cookie']).toBeUndefined();
      // The bearer header and the cookie are the same door.
      expect((await raw(dashboard.url, '/api/overview', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(429);
      await sleep(1_100);
      expect((await form('guess-again')).status).toBe(401);
      expect((await form(TOKEN)).status).toBe(429);
      expect((await form(TOKEN)).headers['retry-after']).toBe('2');
      await sleep(2_100);
      const right = await form(TOKEN);
      expect(right.status).toBe(303);
      expect(right.headers['set-cookie']).toBeDefined();
    } finally {
      await dashboard.close();
    }
  });

  it('guessing through the bearer header or the cookie is slowed down the same way', async () => {
    const dashboard = await start(TOKEN);
    try {
      for (let i = 0; i < FREE_FAILURES - 1; i++) expect((await raw(dashboard.url, '/api/runs', { headers: { authorization: `Bearer guess-${i}` } })).status).toBe(401);
      expect((await raw(dashboard.url, '/api/runs', { headers: { cookie: 'tidepool_dashboard=guess' } })).status).toBe(401);
      const blocked = await raw(dashboard.url, '/api/runs', { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(blocked.status).toBe(429);
      expect(JSON.parse(blocked.text).error).toMatch(/too many wrong tokens from this address/);
      // Asking without any token is no guess: the login page still shows.
      expect((await raw(dashboard.url, '/')).status).toBe(401);
    } finally {
      await dashboard.close();
    }
  });
});
