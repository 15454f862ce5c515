// No credential in any Job or pod spec (issue 11, M1), and secretRef from a Kubernetes Secret,
// on the real cluster, with a runner on the host and with a runner Job: a runner Job takes the broker and store URLs from the credentials Secret
// by secretKeyRef; its connector pods take the stream token from their run's Secret; the
// destination's username, password and schema are references resolved by the runner from a
// Secret of the namespace. While the sync runs, every Job and Pod of the namespace is listed
// (as `kubectl get job,pod -o json` would) and none holds the broker's password, a stream token
// or a resolved value.
import { randomBytes } from 'node:crypto';
import { BatchV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { loadKubeConfig } from '../../shared/kube.js';
import { newSyncRequest } from '../../shared/messages.js';
import { FINAL_STATUSES } from '../../shared/store/runs.js';
import type { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { openTestServices, waitFor, type TestServices } from '../helpers/services.js';
import { closeRunnerHarness, openRunnerHarness, spawnRunner, type RunnerHarness } from '../helpers/runner-harness.js';
import { CLUSTER, applyShippedAccess, clusterTestConfig, createNamespace, hostRunnerOnCluster, runnerJobLauncher } from './cluster.js';

describe('credentials only in Secrets on the cluster', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const namespace = `tp-sec-${randomBytes(3).toString('hex')}`;
  const config = clusterTestConfig('secrets-k8s', {
    namespace,
    credentialsSecret: 'tidepool-credentials',
    maxAttempts: 1,
    idleTimeout: '5s',
    heartbeatInterval: '1s',
    heartbeatTtl: '6s',
    connectorDeadline: '10m',
  });
  // Values that no spec could hold by chance: the schemas the destination writes into.
  const schema = `zq9ref_${randomBytes(5).toString('hex')}`;
  const hostSchema = `zq9host_${randomBytes(5).toString('hex')}`;
  let services: TestServices;
  let hostHarness: RunnerHarness;
  let dest: TestDatabase;
  let launcher: KubernetesJobRunnerLauncher;

  beforeAll(async () => {
    services = openTestServices(config);
    await createNamespace(kc, namespace);
    await applyShippedAccess(kc, namespace);
    dest = await createTestDatabase('k8s_secret_refs');
    const stringData = (data: Record<string, string>) => ({ type: 'Opaque', stringData: data });
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'tidepool-credentials' }, ...stringData({ 'amqp-url': config.amqpUrl, 'redis-url': config.redisUrl }) } });
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: 'pg-creds', labels: { 'tidepool.io/connection-secret': 'true' } }, ...stringData({ username: dest.config.username, password: dest.config.password, schema, 'host-schema': hostSchema }) } });
    const refs = (id: string, schemaKey: string) => ({
      id,
      source: { connector: 'source-faker', config: { seed: 3, count: 40 } },
      destination: {
        connector: 'destination-postgres',
        config: { host: CLUSTER.nodeIp, port: dest.config.port, database: dest.config.database, username: { secretRef: 'pg-creds/username' }, password: { secretRef: 'pg-creds/password' }, schema: { secretRef: `pg-creds/${schemaKey}` } },
      },
      streams: [{ name: 'users' }],
    });
    await services.store.connections.apply(refs('k8s-refs', 'schema'));
    await services.store.connections.apply(refs('k8s-refs-host', 'host-schema'));
    // The installation's own credentials are in the namespace too, but not labelled for connections.
    const stolen = refs('k8s-refs-stolen', 'schema');
    await services.store.connections.apply({ ...stolen, destination: { ...stolen.destination, config: { ...stolen.destination.config, password: { secretRef: 'tidepool-credentials/amqp-url' } } } });
    // The same installation's runner on the host (the broker and store at the node address), its connectors in pods of the namespace.
    hostHarness = await openRunnerHarness('secrets-k8s', { ...hostRunnerOnCluster(namespace), prefix: config.prefix, amqpUrl: config.amqpUrl, redisUrl: config.redisUrl, maxAttempts: 1, idleTimeout: '5s', logLevel: 'debug' });
    launcher = runnerJobLauncher(kc, config, 'sec-runner', services.logger);
    await launcher.start();
  });

  afterAll(async () => {
    await closeRunnerHarness(hostHarness);
    await launcher?.close();
    await services?.cleanup();
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
    await dest?.drop();
  });

  /**
   * Publishes a sync of `connectionId`, starts its runner, and samples what `kubectl get job,pod
   * -o json` shows until the sync ends; the connector runs' Secrets give the stream tokens.
   */
  async function syncWatchingSpecs(connectionId: string, startRunner: () => Promise<unknown>) {
    const broker = await connectBroker({ url: config.amqpUrl, logger: services.logger });
    const channel = await openConfirmChannel(broker, topologyFor(config.prefix), services.logger);
    const request = newSyncRequest(connectionId);
    await publishSync(channel, topologyFor(config.prefix), request);
    await broker.close();
    await startRunner();
    const specs: string[] = [];
    const tokens = new Set<string>();
    let connectorPods = 0;
    const sample = async () => {
      const [jobs, pods, secrets] = await Promise.all([
        batch.listNamespacedJob({ namespace }),
        core.listNamespacedPod({ namespace }),
        core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/component=connector' }),
      ]);
      specs.push(JSON.stringify(jobs.items), JSON.stringify(pods.items));
      connectorPods = Math.max(connectorPods, pods.items.filter((p) => p.metadata?.labels?.['app.kubernetes.io/component'] === 'connector').length);
      for (const s of secrets.items) if (s.data?.token) tokens.add(Buffer.from(s.data.token, 'base64').toString('utf8'));
    };
    const ended = await waitFor('the sync to end', async () => {
      await sample();
      // A runner Job that failed will not end the sync: say so at once (an image older than this code refuses its settings).
      const failed = (await launcher.list()).find((r) => r.phase === 'finished' && r.exitCode !== 0);
      if (failed) return { failed: failed.runnerId };
      const r = await services.store.runs.get(request.syncId);
      return r && FINAL_STATUSES.has(r.status) ? { run: r } : undefined;
    }, 240_000, 500);
    if ('failed' in ended) throw new Error(`runner Job ${ended.failed} failed: kubectl -n ${namespace} logs job/${ended.failed}`);
    const { run } = ended;
    await sample();
    return { run, specs: specs.join('\n'), tokens, connectorPods };
  }

  /** The credentials found in the sampled specs: the broker URL and password, the Redis URL, a resolved value, a stream token. */
  function credentialsIn(specs: string, tokens: Set<string>, schema: string): string[] {
    const brokerPassword = new URL(config.amqpUrl).password;
    expect(brokerPassword.length).toBeGreaterThan(0);
    expect(tokens.size).toBeGreaterThan(0);
    return [
      ...[config.amqpUrl, `:${brokerPassword}@`, config.redisUrl, schema].filter((v) => specs.includes(v)),
      ...[...tokens].filter((t) => specs.includes(t)).map((t) => `stream token ${t.slice(0, 8)}…`),
    ];
  }

  async function expectRows(schema: string, n: number): Promise<void> {
    const rows = await dest.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}"."users"`);
    expect(rows.rows[0]?.n).toBe(n);
  }

  it('a runner on the host resolves the references from the Secret; its connector pods hold no credential', async () => {
    const runner = spawnRunner(hostHarness, 'sec-host-runner');
    const { run, specs, tokens, connectorPods } = await syncWatchingSpecs('k8s-refs-host', () => Promise.resolve(runner));
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    await expectRows(hostSchema, 40);
    expect(connectorPods).toBeGreaterThan(0);
    expect(credentialsIn(specs, tokens, hostSchema)).toEqual([]);
    expect(hostHarness.runners.map((r) => r.log.join('')).join('')).not.toContain(hostSchema);
  });

  it('refuses a reference to a Secret not labelled for connections (the broker credentials)', async () => {
    const runner = spawnRunner(hostHarness, 'sec-host-runner-2');
    const { run } = await syncWatchingSpecs('k8s-refs-stolen', () => Promise.resolve(runner));
    expect(run).toMatchObject({ status: 'dead_lettered', attempt: 1, error: { type: 'config_error' } });
    expect(run.error?.message).toMatch(/destination\.config\.password: secretRef "tidepool-credentials\/amqp-url": secret "tidepool-credentials" is not labelled tidepool\.io\/connection-secret=true/);
    expect(JSON.stringify(run)).not.toContain(new URL(config.amqpUrl).password + '@');
  });

  it('syncs through a runner Job and connector pods whose specs hold no credential', async () => {
    // The host runners consume the same queue: this sync is for the runner Job alone. They leave
    // by themselves once idle (5 s).
    await Promise.all(hostHarness.runners.map((r) => r.exited));
    const { run, specs, tokens, connectorPods } = await syncWatchingSpecs('k8s-refs', () => launcher.launch(1));
    expect(run.error?.message).toBeUndefined();
    expect(run.status).toBe('succeeded');
    expect(run.runnerId).toMatch(/^sec-runner/);
    await expectRows(schema, 40);
    expect(connectorPods).toBeGreaterThan(0);
    expect(credentialsIn(specs, tokens, schema)).toEqual([]);
    // The runner Job says where its URLs come from.
    const jobs = await batch.listNamespacedJob({ namespace });
    const env = jobs.items[0]?.spec?.template.spec?.containers[0]?.env ?? [];
    expect(env.find((e) => e.name === 'TIDEPOOL_AMQP_URL')).toEqual({ name: 'TIDEPOOL_AMQP_URL', valueFrom: { secretKeyRef: { name: 'tidepool-credentials', key: 'amqp-url' } } });
    // The store kept the references only.
    expect((await services.store.connections.get('k8s-refs'))?.destination.config.password).toEqual({ secretRef: 'pg-creds/password' });
  });
});
