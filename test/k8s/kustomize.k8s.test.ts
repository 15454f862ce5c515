// The shipped manifests, applied as a user would: `kubectl apply -k k8s/overlays/test-cluster`
// (k8s/base plus this cluster's broker/store addresses) brings up the scaler Deployment in the
// restricted `tidepool` namespace; published syncs then run in runner Jobs the scaler creates
// with its own ServiceAccount, whose connector pods run in `tidepool-connectors`, under the
// shipped RBAC and admission policies, and land in PostgreSQL.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, BatchV1Api, CoordinationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../shared/kube.js';
import { newSyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { PACKAGE_ROOT } from '../../shared/paths.js';
import { FINAL_STATUSES, type RunRecord } from '../../shared/store/runs.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';
import { inClusterSettings } from '../../bench/support/cluster.js';
import { CLUSTER } from './cluster.js';

const run = promisify(execFile);
const OVERLAY = join(PACKAGE_ROOT, 'k8s/overlays/test-cluster');
const kubectl = (...args: string[]) => run(join(PACKAGE_ROOT, 'scripts/cluster'), ['kubectl', ...args], { timeout: 120_000 });
const NAMESPACE = 'tidepool';
const CONNECTOR_NAMESPACE = 'tidepool-connectors';
const USERS = 150;

describe('kubectl apply -k: tidepool as shipped', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  // The overlay's settings, as the scaler in the cluster reads them.
  const config = testConfig('kustomize', { prefix: 'tidepool-k8s', namespace: NAMESPACE });
  let services: TestServices;
  let dest: TestDatabase;

  async function namespacesGone() {
    for (const name of [NAMESPACE, CONNECTOR_NAMESPACE]) {
      await core.deleteNamespace({ name }).catch(() => undefined);
      await waitFor(`namespace ${name} to be gone`, async () => {
        try {
          await core.readNamespace({ name });
          return false;
        } catch {
          return true;
        }
      }, 120_000, 1000);
    }
  }

  beforeAll(async () => {
    await namespacesGone(); // an earlier run's leftovers
    // The overlay's credentials Secret comes from files: this machine's generated credentials, at the node address.
    const pods = inClusterSettings();
    await mkdir(join(OVERLAY, 'credentials'), { recursive: true, mode: 0o700 });
    await writeFile(join(OVERLAY, 'credentials/amqp-url'), String(pods.amqpUrl), { mode: 0o600 });
    await writeFile(join(OVERLAY, 'credentials/redis-url'), String(pods.redisUrl), { mode: 0o600 });
    services = openTestServices(config);
    dest = await createTestDatabase('k8s_kustomize');
    for (const i of [1, 2]) {
      await services.store.connections.apply({
        id: `kustomize-${i}`,
        source: { connector: 'source-faker', config: { seed: i, count: USERS } },
        destination: { connector: 'destination-postgres', config: { ...dest.config, host: CLUSTER.nodeIp, schema: `users_${i}` } },
        streams: [{ name: 'users' }],
      });
    }
  });

  afterAll(async () => {
    await kubectl('delete', '-k', OVERLAY, '--ignore-not-found', '--wait=false').catch(() => undefined);
    await namespacesGone().catch(() => undefined);
    await services?.cleanup();
    await dest?.drop();
  });

  it('brings up a scaler that runs published syncs in runner Jobs', async () => {
    const applied = await kubectl('apply', '-k', OVERLAY);
    expect(applied.stdout).toContain('deployment.apps/tidepool-scaler created');

    const apps = kc.makeApiClient(AppsV1Api);
    await waitFor('the scaler Deployment to be available', async () => {
      const d = await apps.readNamespacedDeployment({ namespace: NAMESPACE, name: 'tidepool-scaler' });
      return (d.status?.availableReplicas ?? 0) >= 1;
    }, 120_000, 1000);

    const broker = await connectBroker({ url: config.amqpUrl, logger: services.logger });
    const channel = await openConfirmChannel(broker, topologyFor(config.prefix), services.logger);
    const syncIds: string[] = [];
    for (let i = 0; i < 6; i++) {
      const request = newSyncRequest(`kustomize-${(i % 2) + 1}`);
      await publishSync(channel, topologyFor(config.prefix), request);
      syncIds.push(request.syncId);
    }
    await broker.close();

    const runs = await waitFor('6 syncs to finish', async () => {
      const r = await services.store.runs.getMany(syncIds);
      return r.every((x) => x && FINAL_STATUSES.has(x.status)) ? (r as RunRecord[]) : undefined;
    }, 300_000, 1000);
    expect(runs.filter((r) => r.status !== 'succeeded').map((r) => `${r.connectionId}: ${r.error?.message ?? r.status}`)).toEqual([]);
    for (const i of [1, 2]) {
      const { rows } = await dest.pool.query<{ n: string }>(`SELECT count(DISTINCT id) n FROM users_${i}.users`);
      expect(rows[0]?.n).toBe(String(USERS));
    }

    // The work ran where the manifests say: Jobs made by the scaler, which holds the Lease, and
    // connector pods in their own namespace (their events outlive them), none beside the runners.
    const scheduled = async (namespace: string) => (await core.listNamespacedEvent({ namespace })).items.filter((e) => e.reason === 'Scheduled' && e.involvedObject.name?.startsWith('tp-')).length;
    expect(await scheduled(CONNECTOR_NAMESPACE)).toBeGreaterThanOrEqual(2);
    expect(await scheduled(NAMESPACE)).toBe(0);
    const jobs = await kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: NAMESPACE, labelSelector: 'tidepool.io/prefix=tidepool-k8s' });
    expect(jobs.items.length).toBeGreaterThanOrEqual(1);
    expect(new Set(runs.map((r) => r.runnerId)).size).toBeLessThanOrEqual(3);
    const lease = await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ namespace: NAMESPACE, name: 'tidepool-k8s-scaler' });
    expect(lease.spec?.holderIdentity).toMatch(/^scaler-tidepool-scaler-/);
  });
});
