// Kubernetes mode end to end on the real cluster: a scaler launches runner Jobs, each runner
// runs every connector in a pod of its own, records move into PostgreSQL; the pool returns to
// zero and no connector pod is left behind.
import { randomBytes } from 'node:crypto';
import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../shared/connections.js';
import { loadKubeConfig } from '../../shared/kube.js';
import { newSyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { FINAL_STATUSES, PHASES, type RunRecord } from '../../shared/store/runs.js';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { KubernetesLease } from '../../scaler/leadership/lease.js';
import { Scaler, type ScalerSnapshot } from '../../scaler/loop.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { openTestServices, waitFor, type TestServices } from '../helpers/services.js';
import { CLUSTER, applyShippedAccess, clusterTestConfig, createNamespace, runnerJobLauncher } from './cluster.js';

const USERS = 200;
const ORDERS = 300;

describe('kubernetes mode end to end', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `tp-e2e-${randomBytes(3).toString('hex')}`;
  const config = clusterTestConfig('e2e-k8s', {
    maxRunners: 3,
    concurrency: 2,
    idleTimeout: '5s',
    heartbeatInterval: '1s',
    heartbeatTtl: '6s',
    pollInterval: '1s',
    namespace,
    connectorDeadline: '10m',
    logLevel: (process.env.TEST_RUNNER_LOG_LEVEL ?? 'warn') as 'warn',
  });
  let services: TestServices;
  let source: TestDatabase;
  let dest: TestDatabase;
  let scaler: Scaler;
  let launcher: KubernetesJobRunnerLauncher;
  const snapshots: ScalerSnapshot[] = [];

  beforeAll(async () => {
    services = openTestServices(config);
    await createNamespace(kc, namespace);
    await applyShippedAccess(kc, namespace);

    [source, dest] = await Promise.all([createTestDatabase('k8s_e2e_source'), createTestDatabase('k8s_e2e_dest')]);
    await source.pool.query('CREATE TABLE orders (id bigserial PRIMARY KEY, amount numeric(10,2) NOT NULL, updated_at timestamptz NOT NULL)');
    await source.pool.query(`INSERT INTO orders (amount, updated_at) SELECT g, timestamptz '2026-01-01' + (g || ' s')::interval FROM generate_series(1, $1) g`, [ORDERS]);
    const pg = (db: TestDatabase, schema: string) => ({ ...db.config, host: CLUSTER.nodeIp, schema });
    const connections: Connection[] = [
      ...[1, 2].map((i) => ({
        id: `k8s-faker-${i}`,
        source: { connector: 'source-faker', config: { seed: i, count: USERS } },
        destination: { connector: 'destination-postgres', config: pg(dest, `faker_${i}`) },
        streams: [{ name: 'users' }],
      })),
      ...[1, 2].map((i) => ({
        id: `k8s-pg-${i}`,
        source: { connector: 'source-postgres', config: pg(source, 'public') },
        destination: { connector: 'destination-postgres', config: pg(dest, `mirror_${i}`) },
        streams: [{ name: 'orders', syncMode: 'incremental' as const, cursorField: ['updated_at'], destinationSyncMode: 'append_dedup' as const }],
      })),
    ];
    for (const c of connections) await services.store.connections.apply(c);

    launcher = runnerJobLauncher(kc, config, 'e2e-runner', services.logger);
    await launcher.start();
    scaler = new Scaler({
      config,
      logger: services.logger,
      launcher,
      store: services.store,
      leadership: (id) => new KubernetesLease(kc, namespace, `${config.prefix}-scaler`, id, 10_000),
      onTick: (s) => snapshots.push(s),
    });
  });

  afterAll(async () => {
    await scaler?.stop();
    await services?.cleanup();
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await Promise.all([source?.drop(), dest?.drop()]);
  });

  it('runs 20 syncs through runner Jobs and connector pods, with exact rows and nothing left behind', async () => {
    const connection = await connectBroker({ url: config.amqpUrl, logger: services.logger });
    const channel = await openConfirmChannel(connection, topologyFor(config.prefix), services.logger);
    const ids = ['k8s-faker-1', 'k8s-faker-2', 'k8s-pg-1', 'k8s-pg-2'];
    const syncIds: string[] = [];
    for (let i = 0; i < 20; i++) {
      const request = newSyncRequest(ids[i % ids.length]!);
      await publishSync(channel, topologyFor(config.prefix), request);
      syncIds.push(request.syncId);
    }
    await connection.close();
    await scaler.start();

    const runs = await waitFor('20 syncs to finish', async () => {
      const r = await services.store.runs.getMany(syncIds);
      return r.every((x) => x && FINAL_STATUSES.has(x.status)) ? (r as RunRecord[]) : undefined;
    }, 360_000, 1000);
    expect(runs.filter((r) => r.status !== 'succeeded').map((r) => `${r.connectionId}: ${r.error?.message ?? r.status}`)).toEqual([]);
    expect(new Set(runs.map((r) => r.runnerId)).size).toBeGreaterThanOrEqual(1);
    expect(runs.every((r) => r.runnerId.startsWith('e2e-runner'))).toBe(true);
    // Where the time went, pods included: every phase, and each connector pod's start steps in order.
    for (const r of runs) {
      expect(Object.keys(r.phases ?? {}).filter((k) => k !== 'connectorStart')).toEqual([...PHASES]);
      for (const role of ['source', 'destination'] as const) {
        const start = r.phases?.connectorStart?.[role];
        expect(start?.scheduledMs, `${r.syncId} ${role}`).toBeGreaterThanOrEqual(0);
        expect(start!.startedMs!).toBeGreaterThanOrEqual(start!.scheduledMs!);
        expect(start!.connectedMs).toBeGreaterThanOrEqual(0);
      }
    }

    for (const i of [1, 2]) {
      const users = await dest.pool.query<{ n: string; d: string }>(`SELECT count(*) n, count(DISTINCT id) d FROM faker_${i}.users`);
      expect(users.rows[0]).toEqual({ n: String(USERS), d: String(USERS) });
      const orders = await dest.pool.query<{ n: string; d: string }>(`SELECT count(*) n, count(DISTINCT id) d FROM mirror_${i}.orders`);
      expect(orders.rows[0]).toEqual({ n: String(ORDERS), d: String(ORDERS) });
    }
    // Runners leave when idle (their Jobs complete), and every connector pod and secret is gone.
    await waitFor('every runner Job to finish', async () => {
      const list = await launcher.list();
      return list.length > 0 && list.every((r) => r.phase === 'finished') ? list : undefined;
    }, 120_000, 1000);
    expect(Math.max(...snapshots.map((s) => s.running + s.starting))).toBeLessThanOrEqual(3);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=connector' });
    expect(pods.items.map((p) => p.metadata?.name)).toEqual([]);
    const secrets = await core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/component=connector' });
    expect(secrets.items).toHaveLength(0);
    const jobs = await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace });
    expect(jobs.items.every((j) => (j.status?.succeeded ?? 0) === 1)).toBe(true);
  });
});
