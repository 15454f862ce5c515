// The dashboard in a real browser (Debian's headless Chromium, driven by playwright-core through
// executablePath; scripts/setup installs it), while a scaler with local runners runs real syncs:
// the queue chart moves and the runner count changes as the pool grows and shrinks; a dead
// letter is opened, its connection fixed, the letter replayed from the page, and the replayed
// sync is seen succeeding in recent runs. A screenshot under load goes to
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
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    // Every action the page asks to confirm is confirmed.
    page.on('dialog', (dialog) => void dialog.accept());
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
});
