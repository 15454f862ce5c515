// A runner lost in the middle of a sync; the sync, never acked, is redelivered and completed by
// another runner once the dead runner's connection lock expires. Its connector pods:
// - in the runner's own namespace (a runner pod deleted): they go with it, through
//   ownerReferences the garbage collector acts on;
// - in a connector namespace of their own (k8s/base), where no ownerReference can name the
//   runner (a runner process killed): the heartbeat sidecar ends them within 30 s, and a live
//   runner's orphan sweep deletes them and their Secrets.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configEnv, type Config } from '../../shared/config.js';
import { loadKubeConfig } from '../../shared/kube.js';
import { CLI_PATH } from '../../shared/paths.js';
import { newSyncRequest } from '../../shared/messages.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { Scaler } from '../../scaler/loop.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { openTestServices, testConfig, waitFor, type TestServices } from '../helpers/services.js';
import { CLUSTER, applyShippedAccess, clusterTestConfig, createNamespace, createSplitLayout, hostRunnerOnCluster, runnerJobLauncher, type SplitLayout } from './cluster.js';

const USERS = 300_000;

/** The connector pods of one runner in `namespace`. */
async function connectorPods(core: CoreV1Api, namespace: string, runnerId: string) {
  return (await core.listNamespacedPod({ namespace, labelSelector: `app.kubernetes.io/component=connector,tidepool.io/runner=${runnerId}` })).items;
}

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
      const running = (await connectorPods(core, namespace, run.runnerId)).filter((p) => p.status?.phase === 'Running');
      return running.length === 2 ? run.runnerId : undefined;
    }, 120_000, 250);
    // ...then lose its runner.
    const runnerPods = await core.listNamespacedPod({ namespace, labelSelector: `tidepool.io/runner=${first},app.kubernetes.io/component=runner` });
    expect(runnerPods.items).toHaveLength(1);
    const lostAt = Date.now();
    await core.deleteNamespacedPod({ name: runnerPods.items[0]!.metadata!.name!, namespace, gracePeriodSeconds: 0 });

    await waitFor('the lost runner\'s connector pods to be gone', async () => (await connectorPods(core, namespace, first)).length === 0, 30_000, 250);
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

describe('a runner lost mid-sync, connectors in a namespace of their own', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const dir = join(tmpdir(), `tp-loss-${randomBytes(3).toString('hex')}`);
  let layout: SplitLayout;
  let config: Config;
  let services: TestServices;
  let dest: TestDatabase;
  const runners = new Map<string, { process: ChildProcess; log: string }>();

  /** A runner on the host (this tree's code) with the runner ServiceAccount's token only. */
  function startRunner(runnerId: string): void {
    const child = spawn(process.execPath, [CLI_PATH, 'runner', '--runner-id', runnerId], { env: { PATH: process.env.PATH ?? '', ...configEnv(config) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const entry = { process: child, log: '' };
    child.stdout?.on('data', (b: Buffer) => (entry.log += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (entry.log += b.toString()));
    runners.set(runnerId, entry);
  }

  beforeAll(async () => {
    layout = await createSplitLayout(kc, 'tp-lossr');
    await mkdir(dir, { recursive: true });
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, layout.asRunner.exportConfig(), { mode: 0o600 });
    config = testConfig('runner-loss-split-k8s', {
      ...hostRunnerOnCluster(layout.namespace),
      connectorNamespace: layout.connectorNamespace,
      kubeconfig,
      concurrency: 1,
      idleTimeout: '10m',
      heartbeatInterval: '1s',
      heartbeatTtl: '5s',
      lockTtl: '5s',
      logLevel: 'warn',
    });
    services = openTestServices(config);
    dest = await createTestDatabase('k8s_loss_split_dest');
    await services.store.connections.apply({
      id: 'big',
      source: { connector: 'source-faker', config: { count: USERS, stateEvery: 20_000 } },
      destination: { connector: 'destination-postgres', config: { ...dest.config, host: CLUSTER.nodeIp, schema: 'big' } },
      streams: [{ name: 'users' }],
    });
  });

  afterAll(async () => {
    for (const r of runners.values()) r.process.kill('SIGKILL');
    await services?.cleanup();
    await layout?.remove();
    await dest?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('ends the connector pods within 30 s, sweeps them and their Secrets, and completes the sync on another runner', async () => {
    const [lost, survivor] = [`${config.prefix}-lost`, `${config.prefix}-survivor`];
    startRunner(lost);
    const connection = await connectBroker({ url: config.amqpUrl, logger: services.logger });
    const channel = await openConfirmChannel(connection, topologyFor(config.prefix), services.logger);
    const request = newSyncRequest('big');
    await publishSync(channel, topologyFor(config.prefix), request);
    await connection.close();

    await waitFor('the sync to run in connector pods', async () => {
      const run = await services.store.runs.get(request.syncId);
      if (run?.status !== 'running') return undefined;
      const running = (await connectorPods(core, layout.connectorNamespace, lost)).filter((p) => p.status?.phase === 'Running');
      return running.length === 2 ? true : undefined;
    }, 120_000, 250);
    // No ownerReference across namespaces (the garbage collector would delete the pods at once).
    expect((await connectorPods(core, layout.connectorNamespace, lost)).every((p) => (p.metadata?.ownerReferences ?? []).length === 0)).toBe(true);
    startRunner(survivor);
    runners.get(lost)!.process.kill('SIGKILL');
    const lostAt = Date.now();

    // Nothing of the lost runner keeps running: the heartbeat sidecar ends its pods...
    await waitFor('the lost runner\'s connector pods to stop', async () => (await connectorPods(core, layout.connectorNamespace, lost)).every((p) => p.status?.phase !== 'Running' && p.status?.phase !== 'Pending'), 30_000, 250);
    expect(Date.now() - lostAt).toBeLessThan(30_000);
    // ...and the survivor's sweep deletes them and their Secrets (pods a minute old, once a minute).
    await waitFor('the lost runner\'s connector pods and Secrets to be deleted', async () => {
      const secrets = await core.listNamespacedSecret({ namespace: layout.connectorNamespace, labelSelector: `app.kubernetes.io/component=connector,tidepool.io/runner=${lost}` });
      return (await connectorPods(core, layout.connectorNamespace, lost)).length === 0 && secrets.items.length === 0;
    }, 180_000, 1000);

    const done = await waitFor('the survivor to complete the sync', async () => {
      const survivorProcess = runners.get(survivor)!;
      if (survivorProcess.process.exitCode !== null) throw new Error(`runner exited ${survivorProcess.process.exitCode}:\n${survivorProcess.log.slice(-3000)}`);
      const run = await services.store.runs.get(request.syncId);
      return run?.status === 'succeeded' ? run : undefined;
    }, 240_000, 1000);
    expect(done.runnerId).toBe(survivor);
    const { rows } = await dest.pool.query<{ n: string; d: string }>('SELECT count(*) n, count(DISTINCT id) d FROM big.users');
    expect(rows[0]).toEqual({ n: String(USERS), d: String(USERS) });
  });
});
