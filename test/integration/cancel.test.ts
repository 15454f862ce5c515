// Cancellation against a real broker, store and runner process: a sync cancelled while queued or
// in a delay queue is acked without running; a running one is stopped within a few seconds (its
// connectors gone, state committed only as far as the destination echoed it); either way the
// run record says `cancelled`, by whom and when, and nothing is retried or dead-lettered. Also
// `--connection`, the dashboard's POST /api/runs/<id>/cancel, and a per-connection syncTimeout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main as cancelMain } from '../../cli/commands/cancel.js';
import { configEnv } from '../../shared/config.js';
import type { Connection } from '../../shared/connections.js';
import { createRegistry } from '../../shared/metrics.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { startDashboard, type Dashboard } from '../../scaler/dashboard/server.js';
import { closeRunnerHarness, drainDead, openRunnerHarness, processesOf, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { waitFor } from '../helpers/services.js';

const source = (config: Record<string, unknown>) => ({ connector: 'source-e2e-test', config });
const destination = { connector: 'destination-e2e-test', config: { mode: 'echo' } };
/** A source that takes minutes: a record every 50 ms, a STATE every 5. */
const slowSource = source({ records: 5000, delayMs: 50, stateEvery: 5 });

/** `tidepool cancel …` as the CLI runs it; its exit code and output. */
async function cancel(h: RunnerHarness, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await cancelMain(argv, { ...configEnv(h.config), PATH: process.env.PATH ?? '' }, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A dashboard over the harness's store, on a free loopback port; `token` '' for none. */
const dashboardOver = (h: RunnerHarness, token: string): Promise<Dashboard> =>
  startDashboard({ config: { ...h.config, dashboardPort: 0, dashboardHost: '127.0.0.1', dashboardToken: token }, store: h.services.store, logger: h.services.logger, registry: createRegistry(), snapshot: () => undefined });

describe('cancellation', () => {
  let h: RunnerHarness;
  let dashboard: Dashboard | undefined;

  beforeAll(async () => {
    // Concurrency 2: a second sync of a busy connection waits for its lock while the first runs.
    h = await openRunnerHarness('cancel', { idleTimeout: '10m', concurrency: 2, maxAttempts: 3, retryBaseDelay: '3s', retryMaxDelay: '5s' });
  }, 60_000);
  afterAll(async () => {
    await dashboard?.close();
    await closeRunnerHarness(h);
  });

  const apply = (connection: Connection) => h.services.store.connections.apply(connection);
  const ended = (syncId: string, timeoutMs = 30_000): Promise<RunRecord> => runUntil(h, syncId, `the run of ${syncId} to end`, (r) => r.status !== 'running' && r.status !== 'failed', timeoutMs);
  /** Running, its connectors up, and a STATE of it echoed and committed (the record's counts come at its end). */
  const running = (syncId: string): Promise<unknown> =>
    waitFor(`${syncId} to run and commit a STATE`, async () => {
      const r = await h.services.store.runs.get(syncId);
      return r?.status === 'running' && processesOf(syncId).length > 0 && (await h.services.store.state.get(r.connectionId))?.syncId === syncId;
    }, 30_000, 50);

  /** Nothing of the sync left in any queue, and no dead letter of it. */
  async function nothingLeft(syncId: string): Promise<void> {
    for (const queue of [h.topology.syncsQueue, ...h.topology.retryQueues]) expect((await h.channel.checkQueue(queue)).messageCount, queue).toBe(0);
    await drainDead(h);
    expect(h.dead.has(syncId)).toBe(false);
  }

  it('a sync cancelled while queued is acked without running, recorded cancelled by whom and when', async () => {
    await apply({ id: 'queued', source: source({ records: 10 }), destination });
    const syncId = await publishSyncOf(h, 'queued');
    const result = await cancel(h, syncId, '--by', 'alice');
    expect(result).toMatchObject({ code: 0 });
    expect(result.out).toMatch(new RegExp(`^${syncId} cancelled by alice at .* \\(still queued: it will not run\\)$`));

    // Only now a runner: the message is delivered to it with the marker standing.
    spawnRunner(h, 'cancel-runner');
    const run = await ended(syncId);
    expect(run).toMatchObject({ status: 'cancelled', attempt: 1, records: 0, stateCommits: 0, cancelled: { by: 'alice' } });
    expect(Date.parse(run.cancelled!.at)).toBeLessThanOrEqual(Date.parse(run.finishedAt!));
    expect(await h.services.store.state.get('queued')).toBeUndefined();
    await nothingLeft(syncId);

    // Cancelling it again: it already ended.
    expect(await cancel(h, syncId)).toMatchObject({ code: 1, err: `${syncId} already ended (cancelled): nothing to cancel` });
  }, 60_000);

  it('a running sync is stopped within seconds: connectors gone, state as far as the destination echoed it, not retried', async () => {
    await apply({ id: 'slow', source: slowSource, destination });
    const syncId = await publishSyncOf(h, 'slow');
    await running(syncId);

    const asked = Date.now();
    expect(await cancel(h, syncId, '--by', 'bob')).toMatchObject({ code: 0 });
    await waitFor('the connectors to be gone', () => processesOf(syncId).length === 0, 10_000, 20);
    const goneMs = Date.now() - asked;
    console.log(`cancel → connector processes gone: ${goneMs} ms`);
    expect(goneMs).toBeLessThan(5_000);

    const run = await ended(syncId);
    expect(run).toMatchObject({ status: 'cancelled', attempt: 1, cancelled: { by: 'bob' }, error: { type: 'cancelled', retryable: false, origin: 'runner' } });
    expect(run.error!.message).toBe(`sync cancelled by bob at ${run.cancelled!.at}`);
    // What was committed is a STATE the destination echoed (one every 5 records), no further
    // than what was read, and recorded by this sync.
    const state = await h.services.store.state.get('slow');
    const cursor = (state?.state[0] as { stream: { stream_state: { cursor: number } } } | undefined)?.stream.stream_state.cursor ?? 0;
    expect(cursor % 5).toBe(0);
    expect(cursor).toBeGreaterThanOrEqual(5);
    expect(cursor).toBeLessThanOrEqual(run.records);
    expect(state?.version).toBe(run.stateVersion);
    // Neither retried nor dead-lettered: a while later it is still the same cancelled attempt.
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await h.services.store.runs.get(syncId)).toMatchObject({ status: 'cancelled', attempt: 1 });
    await nothingLeft(syncId);
  }, 60_000);

  it('a sync cancelled while it prepares (a slow discover) is stopped there: the discover killed, no connector started', async () => {
    // spec and check give nothing (no SPEC, no verdict: allowed); discover takes a minute.
    const script = 'case "$0" in discover) sleep 60 ;; *) exit 0 ;; esac';
    await apply({ id: 'slow-discover', source: { command: ['/bin/sh', '-c', script], config: {} }, destination });
    const syncId = await publishSyncOf(h, 'slow-discover');
    await waitFor('the discover to run', async () => (await h.services.store.runs.get(syncId))?.status === 'running' && processesOf(syncId).length > 0, 20_000, 50);
    // spec and check end at once; what is left running is the discover.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(processesOf(syncId).length).toBeGreaterThan(0);

    const asked = Date.now();
    expect(await cancel(h, syncId)).toMatchObject({ code: 0 });
    await waitFor('the discover to be gone', () => processesOf(syncId).length === 0, 5_000, 20);
    expect(Date.now() - asked).toBeLessThan(3_000);
    const run = await ended(syncId);
    expect(run).toMatchObject({ status: 'cancelled', attempt: 1, records: 0, error: { type: 'cancelled' } });
    expect(await h.services.store.connections.getCatalog('slow-discover')).toBeUndefined();
    await nothingLeft(syncId);
  }, 60_000);

  it('per-connection syncTimeout: the sync ends as timeout with the same clean stop; cancelled in its delay queue it does not run again', async () => {
    await apply({ id: 'short', source: slowSource, destination, syncTimeout: 2_000 });
    const syncId = await publishSyncOf(h, 'short');
    const retrying = await runUntil(h, syncId, `${syncId} to time out`, (r) => r.status === 'retrying', 30_000);
    expect(retrying.error).toMatchObject({ type: 'timeout', origin: 'runner', retryable: true, message: 'sync exceeded syncTimeout (2.0s)' });
    expect(retrying.durationMs).toBeGreaterThanOrEqual(2_000);
    expect(retrying.durationMs).toBeLessThan(10_000);
    await waitFor('the connectors to be gone', () => processesOf(syncId).length === 0, 5_000, 20);
    const state = await h.services.store.state.get('short');
    const cursor = (state?.state[0] as { stream: { stream_state: { cursor: number } } } | undefined)?.stream.stream_state.cursor ?? 0;
    expect(cursor % 5).toBe(0);
    expect(cursor).toBeLessThanOrEqual(retrying.records);

    // Now in a delay queue, due in about 3 s: cancelled there, it is acked at its next delivery.
    expect(await cancel(h, syncId)).toMatchObject({ code: 0, out: expect.stringContaining('(was retrying)') as unknown });
    const run = await runUntil(h, syncId, `${syncId} to be cancelled`, (r) => r.status === 'cancelled', 30_000);
    expect(run).toMatchObject({ attempt: 2, records: 0, previousAttempts: [{ attempt: 1, status: 'retrying' }] });
    await nothingLeft(syncId);
  }, 60_000);

  it('--connection cancels the running sync and the one waiting for its lock', async () => {
    await apply({ id: 'busy', source: slowSource, destination });
    const first = await publishSyncOf(h, 'busy');
    await running(first);
    const second = await publishSyncOf(h, 'busy');
    // Delivered (concurrency 2) and waiting for the lock the first holds: the queue is empty.
    await waitFor('the second to be delivered', async () => (await h.channel.checkQueue(h.topology.syncsQueue)).messageCount === 0, 10_000);

    const result = await cancel(h, '--connection', 'busy', '--json');
    expect(result.code).toBe(0);
    expect((JSON.parse(result.out) as { unfinished: { syncId: string }[] }).unfinished.map((u) => u.syncId)).toContain(first);
    const [a, b] = await Promise.all([ended(first), ended(second)]);
    expect(a).toMatchObject({ status: 'cancelled', attempt: 1 });
    expect(b).toMatchObject({ status: 'cancelled', attempt: 1, records: 0 });
    await waitFor('the connectors to be gone', () => processesOf(first).length === 0, 5_000);
    // A sync requested after the cancel runs as usual (incremental: from the committed cursor on).
    await apply({ id: 'busy', source: source({ records: 10 }), destination });
    const later = await publishSyncOf(h, 'busy');
    expect(await ended(later)).toMatchObject({ status: 'succeeded' });
    expect(await cancel(h, '--connection', 'nope')).toMatchObject({ code: 3 });
  }, 60_000);

  it('POST /api/runs/<id>/cancel stops a running sync as `dashboard`; refused cross-site, without the token, and for a sync that ended', async () => {
    dashboard = await dashboardOver(h, '');
    await apply({ id: 'from-page', source: slowSource, destination });
    const syncId = await publishSyncOf(h, 'from-page');
    await running(syncId);
    const post = (headers: Record<string, string> = {}) =>
      fetch(new URL(`/api/runs/${syncId}/cancel`, dashboard!.url), { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', ...headers } });

    const foreign = await post({ origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    // With a token configured, none (or a wrong one) is a 401.
    const secured = await dashboardOver(h, 'a-test-token-of-some-length');
    try {
      const url = new URL(`/api/runs/${syncId}/cancel`, secured.url);
      const init = (token?: string) => ({ method: 'POST', body: '{}', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } });
      expect((await fetch(url, init())).status).toBe(401);
      expect((await fetch(url, init('not-the-token'))).status).toBe(401);
    } finally {
      await secured.close();
    }
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await h.services.store.runs.get(syncId)).toMatchObject({ status: 'running' });

    const asked = await post();
    expect(asked.status).toBe(200);
    expect(await asked.json()).toMatchObject({ syncId, cancelled: { by: 'dashboard' }, status: 'running' });
    expect(await ended(syncId)).toMatchObject({ status: 'cancelled', cancelled: { by: 'dashboard' } });
    await waitFor('the connectors to be gone', () => processesOf(syncId).length === 0, 5_000);

    const again = await post();
    expect(again.status).toBe(409);
    const get = await fetch(new URL(`/api/runs/${syncId}/cancel`, dashboard.url));
    expect(get.status).toBe(405);
  }, 60_000);
});
