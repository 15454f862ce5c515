// Cancelling a sync whose connectors run in pods on the real cluster: a runner on the host (the
// branch's own code) runs both connectors in pods; `tidepool cancel` stops the sync within
// seconds, the run record says cancelled, and the launcher's cleanup leaves no connector pod or
// Secret behind.
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelSync } from '../../shared/cancel.js';
import { loadKubeConfig } from '../../shared/kube.js';
import { closeRunnerHarness, drainDead, openRunnerHarness, publishSyncOf, runUntil, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { waitFor } from '../helpers/services.js';
import { CLUSTER, createNamespace, hostRunnerOnCluster } from './cluster.js';

describe('cancel with connector pods', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `tp-cancel-${randomBytes(3).toString('hex')}`;
  let h: RunnerHarness;

  const connectorObjects = async () => {
    const selector = { namespace, labelSelector: 'app.kubernetes.io/component=connector' };
    const [pods, secrets] = await Promise.all([core.listNamespacedPod(selector), core.listNamespacedSecret(selector)]);
    return { pods: pods.items, secrets: secrets.items };
  };

  beforeAll(async () => {
    await createNamespace(kc, namespace);
    h = await openRunnerHarness('k8s-cancel', { ...hostRunnerOnCluster(namespace), idleTimeout: '10m', concurrency: 1, maxAttempts: 3, logLevel: 'warn' });
    await h.services.store.connections.apply({
      id: 'slow',
      source: { connector: 'source-e2e-test', config: { records: 5000, delayMs: 50, stateEvery: 5 } },
      destination: { connector: 'destination-e2e-test', config: { mode: 'echo' } },
      streams: [{ name: 'items' }],
    });
    spawnRunner(h, `${h.config.prefix}-runner`);
  }, 60_000);

  afterAll(async () => {
    await closeRunnerHarness(h);
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  it('stops the running sync: record cancelled, connector pods and Secrets deleted, not retried', async () => {
    const syncId = await publishSyncOf(h, 'slow');
    await waitFor('the sync to run in two connector pods and commit a STATE', async () => {
      const run = await h.services.store.runs.get(syncId);
      if (run?.status !== 'running') return false;
      const { pods } = await connectorObjects();
      const state = await h.services.store.state.get('slow');
      return pods.filter((p) => p.status?.phase === 'Running').length === 2 && state?.syncId === syncId;
    }, 180_000, 250);

    const asked = Date.now();
    expect(await cancelSync(h.services.store, syncId, 'k8s-test')).toMatchObject({ outcome: 'marked', status: 'running' });
    const run = await runUntil(h, syncId, 'the run to be cancelled', (r) => r.status === 'cancelled', 30_000, 100);
    const recordedMs = Date.now() - asked;
    await waitFor('every connector pod and Secret to be gone', async () => {
      const { pods, secrets } = await connectorObjects();
      return pods.length === 0 && secrets.length === 0;
    }, 30_000, 100);
    const goneMs = Date.now() - asked;
    console.log(`cancel → run recorded cancelled: ${recordedMs} ms; → connector pods and Secrets gone: ${goneMs} ms`);
    expect(goneMs).toBeLessThan(20_000);
    expect(run).toMatchObject({ attempt: 1, cancelled: { by: 'k8s-test' }, error: { type: 'cancelled' } });
    const state = await h.services.store.state.get('slow');
    const cursor = (state?.state[0] as { stream: { stream_state: { cursor: number } } } | undefined)?.stream.stream_state.cursor ?? 0;
    expect(cursor % 5).toBe(0);
    expect(cursor).toBeLessThanOrEqual(run.records);

    // Neither retried nor dead-lettered.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await h.services.store.runs.get(syncId)).toMatchObject({ status: 'cancelled', attempt: 1 });
    for (const queue of [h.topology.syncsQueue, ...h.topology.retryQueues]) expect((await h.channel.checkQueue(queue)).messageCount).toBe(0);
    await drainDead(h);
    expect(h.dead.has(syncId)).toBe(false);
  }, 240_000);
});
