// A runner pod deleted in the middle of a sync: its connector pods go with it (ownerReferences,
// garbage-collected by Kubernetes) and the sync, never acked, is redelivered and completed by
// another runner once the dead runner's connection lock expires.
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../shared/kube.js';
import { newSyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { Scaler } from '../../scaler/loop.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { openTestServices, waitFor, type TestServices } from '../helpers/services.js';
import { CLUSTER, applyShippedAccess, clusterTestConfig, createNamespace, runnerJobLauncher } from './cluster.js';

const USERS = 300_000;

describe('a runner pod lost mid-sync', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `tp-loss-${randomBytes(3).toString('hex')}`;
  const config = clusterTestConfig('runner-loss-k8s', {
    maxRunners: 2,
    concurrency: 1,
    idleTimeout: '5s',
    heartbeatInterval: '1s',
    heartbeatTtl: '5s',
    lockTtl: '5s',
    namespace,
  });
  let services: TestServices;
  let dest: TestDatabase;
  let scaler: Scaler;

  beforeAll(async () => {
    services = openTestServices(config);
    await createNamespace(kc, namespace);
    await applyShippedAccess(kc, namespace);
    dest = await createTestDatabase('k8s_loss_dest');
    await services.store.connections.apply({
      id: 'big',
      source: { connector: 'source-faker', config: { count: USERS, stateEvery: 20_000 } },
      destination: { connector: 'destination-postgres', config: { ...dest.config, host: CLUSTER.nodeIp, schema: 'big' } },
      streams: [{ name: 'users' }],
    });
    const launcher = runnerJobLauncher(kc, config, 'loss-runner', services.logger);
    scaler = new Scaler({ config, logger: services.logger, launcher, store: services.store });
  });

  afterAll(async () => {
    await scaler?.stop();
    await services?.cleanup();
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await dest?.drop();
  });

  it('takes the connector pods down within 30 s and completes the sync on another runner', async () => {
    const connection = await connectBroker({ url: config.amqpUrl, logger: services.logger });
    const channel = await openConfirmChannel(connection, topologyFor(config.prefix), services.logger);
    const request = newSyncRequest('big');
    await publishSync(channel, topologyFor(config.prefix), request);
    await connection.close();
    await scaler.start();

    // Wait until the sync is moving records through its two connector pods...
    const first = await waitFor('the sync to run in connector pods', async () => {
      const run = await services.store.runs.get(request.syncId);
      if (run?.status !== 'running') return undefined;
      const pods = await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/component=connector,tidepool.io/runner=${run.runnerId}` });
      const running = pods.items.filter((p) => p.status?.phase === 'Running');
      return running.length === 2 ? run.runnerId : undefined;
    }, 120_000, 250);
    // ...then lose its runner.
    const runnerPods = await core.listNamespacedPod({ namespace, labelSelector: `tidepool.io/runner=${first},app.kubernetes.io/component=runner` });
    expect(runnerPods.items).toHaveLength(1);
    const lostAt = Date.now();
    await core.deleteNamespacedPod({ name: runnerPods.items[0]!.metadata!.name!, namespace, gracePeriodSeconds: 0 });

    await waitFor('the lost runner\'s connector pods to be gone', async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/component=connector,tidepool.io/runner=${first}` });
      return pods.items.length === 0;
    }, 30_000, 250);
    const goneAfterMs = Date.now() - lostAt;
    expect(goneAfterMs).toBeLessThan(30_000);

    const done = await waitFor('another runner to complete the sync', async () => {
      const run = await services.store.runs.get(request.syncId);
      return run?.status === 'succeeded' ? run : undefined;
    }, 240_000, 1000);
    expect(done.runnerId).not.toBe(first);
    const { rows } = await dest.pool.query<{ n: string; d: string }>('SELECT count(*) n, count(DISTINCT id) d FROM big.users');
    expect(rows[0]).toEqual({ n: String(USERS), d: String(USERS) });
  });
});
