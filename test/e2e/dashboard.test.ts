// The dashboard in a real browser (Debian's headless Chromium, driven by playwright-core through
// executablePath; scripts/setup installs it), while a scaler with local runners runs real syncs:
// the queue chart moves and the runner count changes as the pool grows and shrinks; a dead
// letter is opened, its connection fixed, the letter replayed from the page, and the replayed
// sync is seen succeeding in recent runs; run records with phases (some hostile) are drawn as
// bars and timelines with nothing injected; a running sync is cancelled from its detail, once
// the confirmation is accepted and not when it is dismissed. A screenshot under load goes to
// test-artifacts/dashboard.png (TIDEPOOL_TEST_ARTIFACTS to put it elsewhere).
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import type { Connection } from '../../shared/connections.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { newSyncRequest } from '../../shared/messages.js';
import { createRegistry } from '../../shared/metrics.js';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { startDashboard, type Dashboard } from '../../scaler/dashboard/server.js';
import { LocalProcessRunnerLauncher } from '../../scaler/local-process.js';
import { Scaler } from '../../scaler/loop.js';
import { ScalerMetrics } from '../../scaler/metrics.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';

const CHROMIUM = process.env.TIDEPOOL_TEST_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = resolve(PACKAGE_ROOT, process.env.TIDEPOOL_TEST_ARTIFACTS ?? 'test-artifacts');

/** A sync of `records` records at `delayMs` each: long enough for the queue to build up. */
function slowConnection(id: string, out: string, records = 30, delayMs = 80): Connection {
  return {
    id,
    source: { connector: 'source-e2e-test', config: { records, delayMs, stateEvery: 10 } },
    destination: { connector: 'destination-jsonl', config: { destination_path: join(out, id) } },
  };
}

describe('dashboard in a browser', () => {
  const config = testConfig('e2e-dashboard', {
    maxRunners: 3,
    concurrency: 1,
    idleTimeout: '3s',
    pollInterval: '500ms',
    heartbeatInterval: '500ms',
    heartbeatTtl: '5s',
    launchRate: 1,
    launchBurst: 1,
    maxAttempts: 1,
  });
  const out = join(tmpdir(), `${config.prefix}-jsonl`);
  let services: TestServices;
  let scaler: Scaler;
  let dashboard: Dashboard;
  let browser: Browser;
  let page: Page;
  /** Errors the page threw or logged. */
  const problems: string[] = [];
  /** What the page asked to confirm, and whether the next confirmation is accepted. */
  const dialogs: string[] = [];
  let acceptDialogs = true;

  const publish = async (connectionIds: string[], fullRefresh = false): Promise<string[]> => {
    const topology = topologyFor(config.prefix, config);
    const connection = await connectBroker({ url: config.amqpUrl, logger: services.logger, timeoutMs: 10_000 });
    const channel = await openConfirmChannel(connection, topology, services.logger);
    const ids: string[] = [];
    for (const id of connectionIds) {
      const request = newSyncRequest(id, { fullRefresh });
      await publishSync(channel, topology, request);
      ids.push(request.syncId);
    }
    await connection.close();
    return ids;
  };

  /** A tile's number as the page shows it. */
  const stat = async (name: string): Promise<number> => Number(await page.locator(`[data-stat="${name}"]`).getAttribute('data-value'));

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: scripts/setup installs Debian's chromium (or set TIDEPOOL_TEST_CHROMIUM)`);
    services = openTestServices(config);
    for (const id of ['slow-a', 'slow-b', 'slow-c']) await services.store.connections.apply(slowConnection(id, out));
    // A minute long: cancelled well before its end.
    await services.store.connections.apply(slowConnection('long', out, 600, 100));
    // Fails for good at once (a config_error TRACE): dead-lettered on its first attempt. No
    // records, so no state is committed and the replay, once fixed, moves all 5.
    await services.store.connections.apply({
      ...slowConnection('flaky', out, 5, 0),
      source: { connector: 'source-e2e-test', config: { records: 0, then: 'exit', exitCode: 1, failureType: 'config_error', message: 'wrong password for the source' } },
    });

    const metrics = new ScalerMetrics(createRegistry());
    const launcher = metrics.instrument(new LocalProcessRunnerLauncher(config, services.logger));
    scaler = new Scaler({ config, logger: services.logger, launcher, store: services.store, onTick: (s) => metrics.observe(s) });
    await scaler.start();
    dashboard = await startDashboard({ config: { ...config, dashboardPort: 0 }, store: services.store, logger: services.logger, registry: metrics.registry, snapshot: () => scaler.last });

    browser = await chromium.launch({ executablePath: CHROMIUM, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] });
    page = await browser.newPage({ viewport: { width: 1440, height: 1250 } });
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    // Every action the page asks to confirm is confirmed, unless a test says otherwise.
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void (acceptDialogs ? dialog.accept() : dialog.dismiss());
    });
    await page.goto(dashboard.url);
    await page.locator('#scaler-status').filter({ hasText: 'leader' }).waitFor({ timeout: 20_000 });
    expect(problems).toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
    await scaler?.stop();
    await services?.cleanup();
    await rm(out, { recursive: true, force: true });
  });

  it('shows the queue chart move and the runner count change while syncs run, and the runs succeed', async () => {
    expect(await stat('running')).toBe(0);
    const queueChart = page.locator('#chart-queue canvas');
    const before = await queueChart.screenshot();

    // Full refreshes: each one moves every record again (an incremental sync after the first would move none).
    const syncIds = await publish(Array.from({ length: 12 }, (_, i) => ['slow-a', 'slow-b', 'slow-c'][i % 3]!), true);

    // The queue builds up on the page: the tile, and the chart's data drawn from Redis.
    await waitFor('the page to show a backlog', async () => (await stat('ready')) > 0 || (await stat('inFlight')) > 0, 30_000, 200);
    await waitFor('runners to appear on the page', async () => (await stat('running')) > 0, 60_000, 200);
    const underLoad = await page.evaluate(() => {
      const s = (globalThis as unknown as { tidepoolDashboard: { series: Record<string, (number | null)[]> } }).tidepoolDashboard.series;
      return { samples: s.t!.length, maxReady: Math.max(...(s.ready as number[])), maxRunning: Math.max(...(s.running as number[])) };
    });
    expect(underLoad.maxReady).toBeGreaterThan(0);
    expect(underLoad.samples).toBeGreaterThan(1);
    // What a person sees changed, not only the numbers behind it.
    expect(Buffer.compare(before, await queueChart.screenshot())).not.toBe(0);

    // The screenshot once the pool is busy and recent runs are filling in (or as it is, if that never comes).
    await waitFor(
      'a busy pool with runs listed and counted',
      async () =>
        (await stat('running')) >= 2 &&
        (await page.locator('#runs-body tr[data-status="succeeded"]').count()) >= 3 &&
        Number(await page.locator('#chart-syncs').getAttribute('data-total')) >= 3,
      60_000,
      200,
    ).catch(() => undefined);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

    const runs = await waitFor(
      'all 12 syncs to finish',
      async () => {
        const rs = await services.store.runs.getMany(syncIds);
        return rs.every((r) => r && (r.status === 'succeeded' || r.status === 'dead_lettered')) ? rs : undefined;
      },
      180_000,
      500,
    );
    expect(runs.map((r) => r!.status)).toEqual(Array(12).fill('succeeded'));

    // Recent runs on the page say so, and the pool shrinks back to 0 on the page too.
    await waitFor('recent runs to show the syncs succeeded', async () => (await page.locator('#runs-body tr[data-status="succeeded"]').count()) >= 12, 20_000, 250);
    await waitFor('the page to show the pool back at 0', async () => (await stat('running')) === 0 && (await stat('starting')) === 0, 60_000, 250);
    const peak = await page.evaluate(() => Math.max(...((globalThis as unknown as { tidepoolDashboard: { series: { running: number[] } } }).tidepoolDashboard.series.running)));
    expect(peak).toBeGreaterThan(1);
    await waitFor('the syncs-per-minute chart to count them', async () => Number(await page.locator('#chart-syncs').getAttribute('data-total')) >= 12, 10_000, 250);
  });

  it('opens a dead letter, replays it once its connection is fixed, and sees it succeed in recent runs', async () => {
    const [syncId] = await publish(['flaky']);
    const row = page.locator(`#dead-body tr[data-letter-id="${syncId}"]`);
    // The page reads the dead letters again when their count changes.
    await row.waitFor({ timeout: 60_000 });
    await expect.poll(() => row.textContent()).toContain('wrong password for the source');

    await row.click();
    const detail = page.locator('#dead-detail');
    await detail.locator('h3').filter({ hasText: syncId! }).waitFor();
    expect(await detail.textContent()).toContain('source/config_error');
    expect(await detail.textContent()).toContain('(permanent failure)');

    // The operator fixes the connection, then replays from the page (which asks first).
    await services.store.connections.apply(slowConnection('flaky', out, 5, 0));
    await page.locator('#letter-replay').click();
    await waitFor('the page to report the replay', async () => {
      if (await page.locator('#error').isVisible()) throw new Error(`the page shows an error: ${await page.locator('#error').textContent()}`);
      return (await page.locator('#dead-action').textContent())?.includes(`sync ${syncId}: replayed 1`);
    }, 20_000, 200);
    await row.waitFor({ state: 'detached', timeout: 20_000 });

    const runRow = page.locator(`#runs-body tr[data-sync-id="${syncId}"]`);
    await waitFor('the replayed sync to succeed in recent runs', async () => (await runRow.getAttribute('data-status')) === 'succeeded', 90_000, 250);
    // Its detail (opened by the replay) shows the attempt that failed before it.
    const runDetail = page.locator('#run-detail');
    await runDetail.filter({ hasText: 'Earlier attempts' }).waitFor({ timeout: 10_000 });
    expect(await runDetail.textContent()).toContain('wrong password for the source');
    const run = await services.store.runs.get(syncId!);
    expect(run).toMatchObject({ status: 'succeeded', attempt: 1, records: 5 });
  });

  it('draws the phases of each run as a bar with a legend and a timeline; a hostile record gets fewer segments, never markup', async () => {
    const at = new Date().toISOString();
    const base = (syncId: string, connectionId: string) => ({
      syncId, connectionId, status: 'succeeded', attempt: 1, runnerId: 'r-test', fullRefresh: false,
      requestedAt: at, startedAt: at, finishedAt: at, durationMs: 9000, records: 10, bytes: 100, streams: {}, stateCommits: 1,
    });
    const phases = {
      queued: 1200, lockWait: 0, preparing: 800, starting: 2500, reading: 3000, committing: 500, finishing: 1000,
      connectorStart: { source: { startedMs: 300 }, destination: { scheduledMs: 100, startedMs: 1900, connectedMs: 2100 } },
    };
    const markup = '<img src=x onerror="window.__tidepoolInjected = 1">';
    // Anyone who can write to Redis can store this: of its phases only starting and committing are durations.
    const hostilePhases = {
      queued: 'soon', lockWait: -5, preparing: 1e308, starting: 250, reading: markup, committing: 750,
      connectorStart: { source: { scheduledMs: markup, startedMs: 400, connectedMs: Number.NaN }, destination: markup },
    };
    const records = [
      base('phases-none', 'phased'),
      { ...base('phases-odd', 'phased'), phases: markup },
      { ...base('phases-hostile', markup), phases: hostilePhases },
      { ...base('phases-ok', 'phased'), phases },
    ];
    for (const r of records) await services.store.runs.put(r as unknown as RunRecord);

    // The API hands the phases on as stored.
    const fromApi = (await (await fetch(new URL('/api/runs/phases-ok', dashboard.url))).json()) as RunRecord;
    expect(fromApi.phases).toEqual(phases);

    const row = (syncId: string) => page.locator(`#runs-body tr[data-sync-id="${syncId}"]`);
    await row('phases-ok').waitFor({ timeout: 10_000 });
    await row('phases-none').waitFor({ timeout: 10_000 });
    expect(await page.locator('#phase-legend .legend-item').allTextContents()).toEqual(['queued', 'lock wait', 'preparing', 'starting', 'reading', 'committing', 'finishing']);

    /** Each segment's title and its share of the bar's width. */
    const segments = (syncId: string) =>
      row(syncId)
        .locator('.phase')
        .evaluateAll((nodes) => nodes.map((n) => ({ title: n.getAttribute('title'), share: n.getBoundingClientRect().width / n.parentElement!.getBoundingClientRect().width })));
    const ok = await segments('phases-ok');
    expect(ok.map((s) => s.title)).toEqual(['queued: 1.2 s', 'lock wait: 0 ms', 'preparing: 800 ms', 'starting: 2.5 s', 'reading: 3.0 s', 'committing: 500 ms', 'finishing: 1.0 s']);
    [1200, 0, 800, 2500, 3000, 500, 1000].forEach((ms, i) => expect(ok[i]!.share).toBeCloseTo(ms / 9000, 1));
    expect(await row('phases-ok').locator('.phase-total').textContent()).toBe('9.0 s');

    const hostile = await segments('phases-hostile');
    expect(hostile.map((s) => s.title)).toEqual(['starting: 250 ms', 'committing: 750 ms']);
    expect(hostile.map((s) => s.share)).toEqual([expect.closeTo(0.25, 1), expect.closeTo(0.75, 1)]);
    expect(await row('phases-hostile').locator('.phase-total').textContent()).toBe('1.0 s');
    // Its connection id is shown as the text it is.
    expect(await row('phases-hostile').locator('td').nth(1).textContent()).toBe(markup);
    // No phases, or phases that are not an object: no bar, and no error.
    for (const id of ['phases-none', 'phases-odd']) {
      expect(await row(id).locator('.phase-bar').count()).toBe(0);
      expect(await row(id).locator('td').nth(6).textContent()).toBe('–');
    }

    // The detail: the timeline (phase, offset from the start, duration) and the connectors' start steps.
    const detail = page.locator('#run-detail');
    await row('phases-ok').click();
    await detail.locator('h3').filter({ hasText: 'phases-ok' }).waitFor();
    const timeline = () => detail.locator('table.phase-timeline tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent)));
    expect(await timeline()).toEqual([
      ['queued', '+0 ms', '1.2 s'],
      ['lock wait', '+1.2 s', '0 ms'],
      ['preparing', '+1.2 s', '800 ms'],
      ['starting', '+2.0 s', '2.5 s'],
      ['reading', '+4.5 s', '3.0 s'],
      ['committing', '+7.5 s', '500 ms'],
      ['finishing', '+8.0 s', '1.0 s'],
    ]);
    expect(await detail.locator('[data-connector-start="source"]').textContent()).toBe('started +300 ms');
    expect(await detail.locator('[data-connector-start="destination"]').textContent()).toBe('scheduled +100 ms · started +1.9 s · connected +2.1 s');

    await row('phases-hostile').click();
    await detail.locator('h3').filter({ hasText: 'phases-hostile' }).waitFor();
    expect(await timeline()).toEqual([
      ['starting', '+0 ms', '250 ms'],
      ['committing', '+250 ms', '750 ms'],
    ]);
    expect(await detail.locator('[data-connector-start="source"]').textContent()).toBe('started +400 ms');
    expect(await detail.locator('[data-connector-start="destination"]').count()).toBe(0);

    await row('phases-odd').click();
    await detail.locator('h3').filter({ hasText: 'phases-odd' }).waitFor();
    expect(await detail.locator('table.phase-timeline').count()).toBe(0);
    expect(await detail.textContent()).not.toContain('Where the time went');

    // Nothing was injected: no element from the records, no script run, no error.
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __tidepoolInjected?: unknown }).__tidepoolInjected)).toBeUndefined();
    expect(problems).toEqual([]);
    await detail.locator('button.link').click();
  });

  it('cancels a running sync from its detail once the confirmation is accepted, and not when it is dismissed', async () => {
    const cancelPosts: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && r.url().endsWith('/cancel')) cancelPosts.push(r.url());
    });
    const [syncId] = await publish(['long'], true);
    await waitFor('the sync to run', async () => (await services.store.runs.get(syncId!))?.status === 'running', 60_000, 250);
    const row = page.locator(`#runs-body tr[data-sync-id="${syncId}"]`);
    await row.waitFor({ timeout: 20_000 });
    await row.click();
    const detail = page.locator('#run-detail');
    await detail.locator('h3').filter({ hasText: syncId! }).waitFor();
    const marker = () => services.store.redis.get(services.store.keys.syncCancel(syncId!));

    // Dismissed: the API is not called, nothing is marked, the sync runs on.
    acceptDialogs = false;
    dialogs.length = 0;
    await detail.locator('#run-cancel').click();
    await waitFor('the confirmation', () => Promise.resolve(dialogs.length === 1), 5_000, 50);
    expect(dialogs[0]).toContain(`Cancel sync ${syncId}?`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(cancelPosts).toEqual([]);
    expect(await marker()).toBeNull();
    expect((await services.store.runs.get(syncId!))?.status).toBe('running');
    expect(await page.locator('#run-action').isVisible()).toBe(false);

    // Accepted: the page says so, the marker names the dashboard, and the runner stops the sync.
    acceptDialogs = true;
    await detail.locator('#run-cancel').click();
    await page.locator('#run-action').filter({ hasText: `sync ${syncId}: cancelled by dashboard at` }).waitFor({ timeout: 10_000 });
    expect(cancelPosts).toHaveLength(1);
    expect(JSON.parse((await marker())!)).toMatchObject({ by: 'dashboard' });
    const run = await waitFor(
      'the runner to stop the sync',
      async () => {
        const r = await services.store.runs.get(syncId!);
        return r?.status === 'cancelled' ? r : undefined;
      },
      30_000,
      250,
    );
    expect(run.cancelled).toMatchObject({ by: 'dashboard' });
    expect(run.records).toBeLessThan(600);
    await waitFor('recent runs to show it cancelled', async () => (await row.getAttribute('data-status')) === 'cancelled', 10_000, 250);
    await detail.locator('dd').filter({ hasText: /^by dashboard at / }).waitFor({ timeout: 10_000 });
    // Nothing left to cancel: the button is gone.
    expect(await detail.locator('#run-cancel').count()).toBe(0);
    expect(problems).toEqual([]);
  });
});
