// Cancelling a sync whose connectors run in pods on the real cluster, `tidepool cancel` stopping
// it within seconds, the run record saying cancelled, the launcher's cleanup leaving no connector
// pod or Secret behind: first with a runner on the host (the branch's own code), then as in
// production, with the runner a Job a scaler launched on the cluster (the image of the branch)
// and the cancel asked through `tidepool cancel`.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelSync } from '../../shared/cancel.js';
import { main as cancelMain } from '../../cli/commands/cancel.js';
import { loadKubeConfig } from '../../shared/kube.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { Scaler } from '../../scaler/loop.js';
import { inClusterSettings } from '../../bench/support/cluster.js';
import { percentile } from '../../bench/support/stats.js';
import { closeRunnerHarness, drainDead, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { waitFor } from '../helpers/services.js';
import { applyShippedAccess, CLUSTER, createNamespace, hostRunnerOnCluster, runnerJobLauncher } from './cluster.js';

/** A sync of 5000 records 50 ms apart (four minutes), a STATE every 5, echoed by the destination. */
const SLOW = {
  id: 'slow',
  source: { connector: 'source-e2e-test', config: { records: 5000, delayMs: 50, stateEvery: 5 } },
  destination: { connector: 'destination-e2e-test', config: { mode: 'echo' } },
  streams: [{ name: 'items' }],
};

/** Connector pods and Secrets in `namespace` (runner pods are another component). */
async function connectorObjects(kc: KubeConfig, namespace: string) {
  const core = kc.makeApiClient(CoreV1Api);
  const selector = { namespace, labelSelector: 'app.kubernetes.io/component=connector' };
  const [pods, secrets] = await Promise.all([core.listNamespacedPod(selector), core.listNamespacedSecret(selector)]);
  return { pods: pods.items, secrets: secrets.items };
}

/** How long a cancel took to show: run record cancelled, then every connector pod and Secret deleted (not merely terminating). */
interface CancelTiming {
  run: RunRecord;
  recordedMs: number;
  goneMs: number;
}

/** Asks for the cancel as an operator would: the store API `tidepool cancel` uses, or the command itself. */
type Canceller = (syncId: string, by: string) => Promise<void>;

const throughStore = (h: RunnerHarness): Canceller => async (syncId, by) => {
  expect(await cancelSync(h.services.store, syncId, by)).toMatchObject({ outcome: 'marked', status: 'running' });
};

const throughCli = (h: RunnerHarness): Canceller => async (syncId, by) => {
  const out: string[] = [];
  const env = { TIDEPOOL_PREFIX: h.config.prefix, TIDEPOOL_REDIS_URL: h.config.redisUrl, TIDEPOOL_LOG_LEVEL: 'warn' };
  expect(await cancelMain([syncId, '--by', by, '--json'], env, { out: (t) => out.push(t), err: (t) => out.push(t) })).toBe(0);
  expect(JSON.parse(out.join(''))).toMatchObject({ syncId, outcome: 'marked', status: 'running', marker: { by } });
};

/** Waits until `syncId` runs in two Running connector pods and committed a STATE, then cancels it and times its end. */
async function cancelWhileRunning(h: RunnerHarness, kc: KubeConfig, namespace: string, syncId: string, by: string, cancel: Canceller): Promise<CancelTiming> {
  // What the wait saw last is thrown, so a timeout says which part never came.
  await waitFor('the sync to run in two connector pods and commit a STATE', async () => {
    const run = await h.services.store.runs.get(syncId);
    const { pods } = await connectorObjects(kc, namespace);
    const state = await h.services.store.state.get('slow');
    const running = pods.filter((p) => p.status?.phase === 'Running').length;
    if (run?.status === 'running' && running === 2 && state?.syncId === syncId) return true;
    throw new Error(`run ${run?.status ?? 'not recorded'} (attempt ${run?.attempt ?? '-'}, runner ${run?.runnerId ?? '-'}, phases ${JSON.stringify(run?.phases ?? {})}), ${running} of ${pods.length} connector pods Running, state of ${state?.syncId ?? 'no sync'}`);
  }, 180_000, 250);
  const asked = Date.now();
  await cancel(syncId, by);
  const run = await runUntil(h, syncId, 'the run to be cancelled', (r) => r.status === 'cancelled', 30_000, 100);
  const recordedMs = Date.now() - asked;
  await waitFor('every connector pod and Secret to be gone', async () => {
    const { pods, secrets } = await connectorObjects(kc, namespace);
    return pods.length === 0 && secrets.length === 0;
  }, 30_000, 100);
  return { run, recordedMs, goneMs: Date.now() - asked };
}

/** The cursor of the connection's committed state (0 before any). */
async function committedCursor(h: RunnerHarness): Promise<number> {
  const state = await h.services.store.state.get('slow');
  return (state?.state[0] as { stream: { stream_state: { cursor: number } } } | undefined)?.stream.stream_state.cursor ?? 0;
}

/**
 * The committed state is one the destination echoed (a multiple of stateEvery), no further than
 * the run read from where it started (the stream is incremental: a sync resumes at the cursor).
 */
async function expectStateNotPastEcho(h: RunnerHarness, run: RunRecord, startCursor: number): Promise<void> {
  expect((await h.services.store.state.get('slow'))?.syncId).toBe(run.syncId);
  const cursor = await committedCursor(h);
  expect(cursor % 5).toBe(0);
  expect(cursor).toBeGreaterThan(startCursor);
  expect(cursor).toBeLessThanOrEqual(startCursor + run.records);
}

/** Neither retried nor dead-lettered: a few seconds on, still cancelled at attempt 1, and no message anywhere. */
async function expectNotRetried(h: RunnerHarness, syncIds: string[]): Promise<void> {
  await new Promise((r) => setTimeout(r, 3_000));
  for (const syncId of syncIds) expect(await h.services.store.runs.get(syncId)).toMatchObject({ status: 'cancelled', attempt: 1 });
  for (const queue of [h.topology.syncsQueue, ...h.topology.retryQueues]) expect((await h.channel.checkQueue(queue)).messageCount).toBe(0);
  await drainDead(h);
  for (const syncId of syncIds) expect(h.dead.has(syncId)).toBe(false);
}

describe('cancel with connector pods, runner on the host', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `tp-cancel-${randomBytes(3).toString('hex')}`;
  let h: RunnerHarness;

  beforeAll(async () => {
    await createNamespace(kc, namespace);
    h = await openRunnerHarness('k8s-cancel', { ...hostRunnerOnCluster(namespace), idleTimeout: '10m', concurrency: 1, maxAttempts: 3, logLevel: 'warn' });
    await h.services.store.connections.apply(SLOW);
    spawnRunner(h, `${h.config.prefix}-runner`);
  }, 60_000);

  afterAll(async () => {
    await closeRunnerHarness(h);
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('stops the running sync: record cancelled, connector pods and Secrets deleted, not retried', async () => {
    const syncId = await publishSyncOf(h, 'slow');
    const { run, recordedMs, goneMs } = await cancelWhileRunning(h, kc, namespace, syncId, 'k8s-test', throughStore(h));
    console.log(`host runner: cancel → run recorded cancelled: ${recordedMs} ms; → connector pods and Secrets gone: ${goneMs} ms`);
    expect(goneMs).toBeLessThan(20_000);
    expect(run).toMatchObject({ attempt: 1, cancelled: { by: 'k8s-test' }, error: { type: 'cancelled' } });
    await expectStateNotPastEcho(h, run, 0);
    await expectNotRetried(h, [syncId]);
  }, 240_000);
});

describe('cancel with connector pods, runner a Job of a scaler on the cluster', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `tp-cancelj-${randomBytes(3).toString('hex')}`;
  const SAMPLES = 3;
  let h: RunnerHarness;
  let launcher: KubernetesJobRunnerLauncher;
  let scaler: Scaler;

  beforeAll(async () => {
    await createNamespace(kc, namespace);
    await applyShippedAccess(kc, namespace);
    // One runner Job, kept up across the samples (idle far longer than the test), its connectors in pods.
    h = await openRunnerHarness('k8s-cancel-job', {
      ...inClusterSettings(),
      namespace,
      maxRunners: 1,
      concurrency: 1,
      maxAttempts: 3,
      idleTimeout: '5m',
      heartbeatInterval: '1s',
      heartbeatTtl: '6s',
      pollInterval: '1s',
      logLevel: 'warn',
    });
    await h.services.store.connections.apply(SLOW);
    launcher = runnerJobLauncher(kc, h.config, 'cancel-runner', h.services.logger);
    await launcher.start();
    scaler = new Scaler({ config: h.config, logger: h.services.logger, launcher, store: h.services.store });
  }, 90_000);

  afterAll(async () => {
    await scaler?.stop();
    await closeRunnerHarness(h);
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it(`stops each of ${SAMPLES} running syncs within seconds: cancelled by whom and when, pods and Secrets deleted, state at an echo, not retried`, async () => {
    const timings: CancelTiming[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const startCursor = await committedCursor(h);
      const syncId = await publishSyncOf(h, 'slow');
      if (i === 0) await scaler.start();
      const by = `k8s-test-${i}`;
      const asked = new Date();
      const timing = await cancelWhileRunning(h, kc, namespace, syncId, by, throughCli(h));
      timings.push(timing);
      const { run } = timing;
      // Run by the Job's runner: its pod carries the runner's id.
      expect(run.runnerId.startsWith('cancel-runner-')).toBe(true);
      const runnerPods = await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/component=runner,tidepool.io/runner=${run.runnerId}` });
      expect(runnerPods.items.map((p) => p.status?.phase)).toEqual(['Running']);
      expect(run).toMatchObject({ attempt: 1, cancelled: { by }, error: { type: 'cancelled' } });
      expect(Date.parse(run.cancelled!.at)).toBeGreaterThanOrEqual(asked.getTime() - 1000);
      expect(Date.parse(run.cancelled!.at)).toBeLessThanOrEqual(Date.now());
      await expectStateNotPastEcho(h, run, startCursor);
    }
    const gone = timings.map((t) => t.goneMs);
    const recorded = timings.map((t) => t.recordedMs);
    console.log(
      `runner Job: cancel → run recorded cancelled: ${recorded.join('/')} ms; → connector pods and Secrets gone: ${gone.join('/')} ms ` +
        `(median ${percentile(gone, 0.5)} ms, max ${Math.max(...gone)} ms over ${SAMPLES})`,
    );
    for (const ms of gone) expect(ms).toBeLessThan(20_000);
    // All on one runner that stayed up: a cancel stops the sync, not the runner.
    expect(new Set(timings.map((t) => t.run.runnerId)).size).toBe(1);
    await expectNotRetried(h, timings.map((t) => t.run.syncId));
  }, 280_000);
});
