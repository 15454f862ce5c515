// Schedules on the real cluster: a scaler (in the test process) decides the slots of two
// seconds-resolution schedules and launches a runner Job, whose syncs run their connectors in
// pods. Left running for a bounded time, with a pause and a resume in the middle: every slot of
// the window is decided exactly once, each published sync runs once to `succeeded` in the runner
// pod, `overlap: skip` never has two of its connection's syncs running at once, and a paused
// connection publishes nothing until it is resumed.
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConnectionFile } from '../../shared/connections.js';
import { loadKubeConfig } from '../../shared/kube.js';
import { FINAL_STATUSES, type RunRecord } from '../../shared/store/runs.js';
import type { SlotRecord } from '../../shared/store/schedules.js';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { Scaler } from '../../scaler/loop.js';
import type { SlotDecision } from '../../scaler/schedules/planner.js';
import { main as connectionsMain } from '../../cli/commands/connections.js';
import { main as schedulesMain } from '../../cli/commands/schedules.js';
import { percentile } from '../../bench/support/stats.js';
import { openTestServices, waitFor, type TestServices } from '../helpers/services.js';
import { applyShippedAccess, CLUSTER, clusterTestConfig, createNamespace, runnerJobLauncher } from './cluster.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every second, skipping while one runs or waits; every five seconds, overlapping allowed. */
const SCHEDULES = {
  'tick-skip': { cron: '* * * * * *', overlap: 'skip', period: 1000 },
  'tick-allow': { cron: '*/5 * * * * *', overlap: 'allow', period: 5000 },
} as const;
type Scheduled = keyof typeof SCHEDULES;
const IDS = Object.keys(SCHEDULES) as Scheduled[];

/** Running, paused, running again (seconds): the window the slots are checked over. */
const RUN_MS = 30_000;
const PAUSE_MS = 7_000;
const RESUMED_MS = 12_000;
/** A slot this close to a pause or resume may fall either side of it (the planner polls every 500 ms). */
const EDGE_MS = 1_500;

describe('schedules on the cluster: runner Jobs, connector pods, pause and resume', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `tp-sched-${randomBytes(3).toString('hex')}`;
  const config = clusterTestConfig('sched-k8s', {
    namespace,
    // One runner Job, up for the whole test, with room for an allow sync beside a skip one.
    maxRunners: 1,
    concurrency: 3,
    idleTimeout: '2m',
    heartbeatInterval: '1s',
    heartbeatTtl: '6s',
    pollInterval: '500ms',
    leaderTtl: '2s',
    logLevel: (process.env.TEST_RUNNER_LOG_LEVEL ?? 'warn') as 'warn',
  });
  const cli = { TIDEPOOL_PREFIX: config.prefix, TIDEPOOL_REDIS_URL: config.redisUrl, TIDEPOOL_LOG_LEVEL: 'warn' };
  const io = { out: () => undefined, err: () => undefined };
  let services: TestServices;
  let launcher: KubernetesJobRunnerLauncher;
  let scaler: Scaler;
  const decisions: SlotDecision[] = [];

  beforeAll(async () => {
    services = openTestServices(config);
    await createNamespace(kc, namespace);
    await applyShippedAccess(kc, namespace);
    for (const id of IDS) {
      const { cron, overlap } = SCHEDULES[id];
      const [connection] = parseConnectionFile({
        id,
        // About a second of reading (10 records 100 ms apart) once both pods are up.
        source: { connector: 'source-e2e-test', config: { records: 10, delayMs: 100, stateEvery: 5 } },
        destination: { connector: 'destination-e2e-test', config: { mode: 'echo' } },
        streams: [{ name: 'items' }],
        schedule: { cron, overlap },
      });
      await services.store.connections.apply(connection!);
    }
    launcher = runnerJobLauncher(kc, config, 'sched-runner', services.logger);
    await launcher.start();
    scaler = new Scaler({ config, logger: services.logger, launcher, store: services.store, onScheduleSlot: (d) => decisions.push(d) });
  }, 90_000);

  afterAll(async () => {
    await scaler?.stop();
    await services?.cleanup();
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  const pauseAll = async (pause: boolean) => {
    for (const id of IDS) expect(await connectionsMain([pause ? 'pause' : 'resume', id], cli, io)).toBe(0);
    return Date.now();
  };

  it('decides every slot once, runs each published sync once to succeeded in the runner pod, skips overlaps, and pauses', async () => {
    await scaler.start();
    const startedAt = Date.now();
    await sleep(RUN_MS);
    const pausedAt = await pauseAll(true);
    await sleep(PAUSE_MS / 2);
    const listed: Array<{ connectionId: string; paused: boolean }> = [];
    expect(await schedulesMain(['--json'], cli, { out: (t) => listed.push(...(JSON.parse(t) as typeof listed)), err: () => undefined })).toBe(0);
    expect(listed.map((l) => [l.connectionId, l.paused]).sort()).toEqual(IDS.map((id) => [id, true]).sort());
    await sleep(PAUSE_MS / 2);
    const resumedAt = await pauseAll(false);
    await sleep(RESUMED_MS);
    // The window ends with a pause: nothing is published after it, and what was runs out.
    const endedAt = await pauseAll(true);
    await sleep(EDGE_MS);

    const publishedSoFar = async () => {
      const all = await Promise.all(IDS.map((id) => services.store.schedules.recentSlots(id, 500)));
      return all.flat().filter((r) => r.outcome === 'published');
    };
    const toRun = await publishedSoFar();
    const runs = await waitFor('every published sync to finish', async () => {
      const r = await services.store.runs.getMany(toRun.map((p) => p.syncId!));
      return r.every((x) => x && FINAL_STATUSES.has(x.status)) ? (r as RunRecord[]) : undefined;
    }, 60_000, 500);
    // Paused meanwhile, the scaler kept deciding slots (skipped): the window's slots are all it decided.
    await scaler.stop();
    const slots = new Map<Scheduled, SlotRecord[]>();
    for (const id of IDS) slots.set(id, (await services.store.schedules.recentSlots(id, 500)).reverse());
    const published = await publishedSoFar();
    expect(published.map((r) => r.syncId).sort()).toEqual(toRun.map((r) => r.syncId).sort());

    for (const id of IDS) {
      const { period } = SCHEDULES[id];
      const records = slots.get(id)!;
      const times = records.map((r) => r.slot);
      // Every slot from the first to the last of the window, each once, each decided.
      expect(times[0]! - startedAt).toBeLessThanOrEqual(period + EDGE_MS);
      expect(times).toEqual(Array.from({ length: times.length }, (_, i) => times[0]! + i * period));
      expect(records.filter((r) => r.outcome !== 'published' && r.outcome !== 'skipped')).toEqual([]);
      // Decided once across the run (the scaler's own count, what the metrics count).
      expect(decisions.filter((d) => d.connectionId === id).map((d) => d.record.slot).sort((a, b) => a - b)).toEqual(times);
      // Paused: every slot skipped as paused; after the resume, published again.
      const inPause = records.filter((r) => r.slot > pausedAt + EDGE_MS && r.slot < resumedAt - EDGE_MS);
      expect(inPause.length).toBeGreaterThanOrEqual(Math.floor((PAUSE_MS - 2 * EDGE_MS) / period));
      expect(inPause.map((r) => [r.outcome, r.reason])).toEqual(inPause.map(() => ['skipped', 'paused']));
      const afterResume = records.filter((r) => r.slot > resumedAt + EDGE_MS && r.slot < endedAt - EDGE_MS);
      expect(afterResume.filter((r) => r.outcome === 'published').length).toBeGreaterThanOrEqual(1);
      // Paused again at the end: nothing published after it.
      expect(records.filter((r) => r.slot > endedAt + EDGE_MS && r.outcome === 'published')).toEqual([]);
      // Each published slot is one sync of this connection, under the slot's own id.
      const ids = records.filter((r) => r.outcome === 'published').map((r) => r.syncId);
      expect(new Set(ids).size).toBe(ids.length);
      const listedRuns = await services.store.runs.list({ connectionId: id, limit: 500 });
      expect(listedRuns.map((r) => r.syncId).sort()).toEqual([...ids].sort());
    }
    // overlap allow publishes every slot it does not find paused.
    const allow = slots.get('tick-allow')!;
    expect(allow.filter((r) => r.outcome === 'skipped' && r.reason !== 'paused')).toEqual([]);
    expect(allow.filter((r) => r.outcome === 'published').length).toBeGreaterThanOrEqual(6);
    // overlap skip: the slots it skipped say why, and it did publish more than once.
    const skip = slots.get('tick-skip')!;
    expect(skip.filter((r) => r.outcome === 'skipped' && r.reason !== 'paused').every((r) => /^overlap skip: /.test(r.reason ?? ''))).toBe(true);
    expect(skip.filter((r) => r.outcome === 'published').length).toBeGreaterThanOrEqual(3);

    // Every published sync ran once, to succeeded, in the runner Job's pod.
    expect(runs.filter((r) => r.status !== 'succeeded').map((r) => `${r.syncId}: ${r.error?.message ?? r.status}`)).toEqual([]);
    for (const runnerId of new Set(runs.map((r) => r.runnerId))) {
      expect(runnerId.startsWith('sched-runner-')).toBe(true);
      const pods = await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/component=runner,tidepool.io/runner=${runnerId}` });
      expect(pods.items).toHaveLength(1);
    }
    // overlap skip: no two of the connection's syncs ever ran at once.
    const skipRuns = runs.filter((r) => r.connectionId === 'tick-skip').sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
    for (let i = 1; i < skipRuns.length; i++) expect(Date.parse(skipRuns[i]!.startedAt)).toBeGreaterThanOrEqual(Date.parse(skipRuns[i - 1]!.finishedAt!));

    const lags = published.map((r) => r.lagMs ?? NaN);
    const durations = runs.map((r) => r.durationMs ?? NaN);
    console.log(
      `schedules on the cluster: ${IDS.map((id) => `${id} ${slots.get(id)!.length} slots, ${slots.get(id)!.filter((r) => r.outcome === 'published').length} published`).join('; ')}; ` +
        `publish lag p50 ${percentile(lags, 0.5)} ms, p95 ${percentile(lags, 0.95)} ms, max ${Math.max(...lags)} ms; ` +
        `sync duration in pods p50 ${percentile(durations, 0.5)} ms, max ${Math.max(...durations)} ms`,
    );
  }, 180_000);
});
