// Least privilege on the real cluster, with the RBAC and admission policies k8s/base ships:
// each account acts with a token of its own (not the tests' admin), and each rule is shown to
// refuse. The runner may create connector pods and their Secrets in the connector namespace
// only, and only pods as the runner makes them: no other Secret, no token, allowed images, the
// restricted security context. The scaler may create runner Jobs only. Then a real sync runs in
// that layout: a runner with its account's token, connectors in their own namespace.
//
// The connector namespace here has no Pod Security label, so that what refuses a privileged pod
// is the policy itself (Pod Security admission would refuse it first; both hold as shipped).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchV1Api, CoreV1Api, KubernetesObjectApi, PatchStrategy, type KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeErrorMessage, loadKubeConfig } from '../../shared/kube.js';
import { newSyncRequest } from '../../shared/messages.js';
import { CLI_PATH, PACKAGE_VERSION } from '../../shared/paths.js';
import { configEnv, type Config } from '../../shared/config.js';
import { connectBroker, openConfirmChannel } from '../../shared/broker/connection.js';
import { publishSync } from '../../shared/broker/publisher.js';
import { topologyFor } from '../../shared/broker/topology.js';
import { KubernetesPodConnectorLauncher, podName } from '../../runner/launch/kubernetes-pod.js';
import { StreamServer } from '../../runner/launch/stream-server.js';
import { FINAL_STATUSES } from '../../shared/store/runs.js';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.js';
import { openTestServices, testConfig, testLogger, waitFor, type TestServices } from '../helpers/services.js';
import { CLUSTER, clusterTestConfig, createSplitLayout, hostRunnerOnCluster, kubeConfigAs, podLauncherOptions, runnerJobLauncher, type SplitLayout } from './cluster.js';

const POD_POLICY = "ValidatingAdmissionPolicy 'tidepool-connector-pods'";
const SECRET_POLICY = "ValidatingAdmissionPolicy 'tidepool-connector-secrets'";
const JOB_POLICY = "ValidatingAdmissionPolicy 'tidepool-runner-jobs'";
const FORBIDDEN_BY_RBAC = /cannot (create|get|list) resource/;

/** The API server's answer to a request: "admitted", or its refusal. */
async function answer(request: Promise<unknown>): Promise<string> {
  try {
    await request;
    return 'admitted';
  } catch (err) {
    return kubeErrorMessage(err);
  }
}

describe('least privilege on Kubernetes', () => {
  const admin = loadKubeConfig(CLUSTER.kubeconfig);
  const core = admin.makeApiClient(CoreV1Api);
  let layout: SplitLayout;
  let namespace: string;
  let connectorNamespace: string;
  /** What the scaler would hand its runners, for runner Jobs as it makes them. */
  let config: Config;
  let asRunner: KubeConfig;
  let asScaler: KubeConfig;
  let server: StreamServer;
  let services: TestServices | undefined;
  let dest: TestDatabase | undefined;
  let runner: ChildProcess | undefined;

  beforeAll(async () => {
    layout = await createSplitLayout(admin, 'tp-lp');
    ({ namespace, connectorNamespace, asRunner } = layout);
    config = clusterTestConfig('least-privilege-k8s', { namespace, connectorNamespace });
    await admin
      .makeApiClient(KubernetesObjectApi)
      .patch({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: connectorNamespace, labels: { 'pod-security.kubernetes.io/enforce': null as unknown as string } } }, undefined, undefined, undefined, undefined, PatchStrategy.MergePatch);
    asScaler = await kubeConfigAs(admin, namespace, 'tidepool-scaler');
    server = new StreamServer(testLogger(), { host: '0.0.0.0', port: 0 });
    await server.listen();
  });

  afterAll(async () => {
    runner?.kill('SIGKILL');
    await services?.cleanup();
    await server?.stop();
    await layout?.remove();
    await dest?.drop();
  });

  describe("the runner's ServiceAccount", () => {
    /** A source's pod exactly as the runner makes it, and the Secret it mounts (same name). */
    function connectorPod(): V1Pod {
      const launcher = new KubernetesPodConnectorLauncher(asRunner, podLauncherOptions(connectorNamespace, 'lp-runner', server, config.prefix), testLogger());
      const run = { runId: `lp-${randomBytes(4).toString('hex')}`, role: 'source' as const, connector: { connector: 'source-faker', config: {} }, command: 'read' as const, files: { config: {} } };
      const labels = { 'tidepool.io/prefix': config.prefix, 'app.kubernetes.io/component': 'connector', 'tidepool.io/runner': 'lp-runner', 'tidepool.io/role': 'source' };
      return launcher.podManifest(run, podName(run), labels);
    }
    const create = (pod: V1Pod, ns = connectorNamespace) => answer(asRunner.makeApiClient(CoreV1Api).createNamespacedPod({ namespace: ns, body: pod, dryRun: 'All' }));
    const main = (pod: V1Pod) => pod.spec!.containers.find((c) => c.name === 'connector')!;

    it('may create a connector pod as the runner makes it, and its Secret', async () => {
      expect(await create(connectorPod())).toBe('admitted');
      const secret = { metadata: { name: 'tp-src-own', labels: { 'app.kubernetes.io/component': 'connector' } }, type: 'Opaque', stringData: { 'config.json': '{}' } };
      expect(await answer(asRunner.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: connectorNamespace, body: secret, dryRun: 'All' }))).toBe('admitted');
    });

    it('is refused a pod that mounts another Secret, by volume, envFrom or secretKeyRef', async () => {
      const byVolume = connectorPod();
      byVolume.spec!.volumes!.push({ name: 'loot', secret: { secretName: 'tidepool-credentials' } });
      expect(await create(byVolume)).toContain(`${POD_POLICY} with binding 'tidepool-connector-pods' denied request: a connector pod's volumes are`);

      const byEnvFrom = connectorPod();
      main(byEnvFrom).envFrom = [{ secretRef: { name: 'tidepool-credentials' } }];
      expect(await create(byEnvFrom)).toContain(`${POD_POLICY} with binding 'tidepool-connector-pods' denied request: a connector pod's environment reads no Secret`);

      const byKeyRef = connectorPod();
      main(byKeyRef).env!.push({ name: 'LOOT', valueFrom: { secretKeyRef: { name: 'tidepool-credentials', key: 'password' } } });
      expect(await create(byKeyRef)).toContain(`${POD_POLICY} with binding 'tidepool-connector-pods' denied request: a connector pod's environment reads no Secret`);
    });

    it('is refused a pod with a service-account token', async () => {
      const automount = connectorPod();
      automount.spec!.automountServiceAccountToken = true;
      expect(await create(automount)).toContain(`${POD_POLICY} with binding 'tidepool-connector-pods' denied request: a connector pod mounts no service-account token`);

      const projected = connectorPod();
      projected.spec!.volumes!.push({ name: 'token', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } });
      expect(await create(projected)).toContain(`${POD_POLICY} with binding 'tidepool-connector-pods' denied request: a connector pod's volumes are`);
    });

    it('is refused a pod with an image that is not allowed', async () => {
      const pod = connectorPod();
      main(pod).image = 'busybox:1.36';
      expect(await create(pod)).toContain(`${POD_POLICY} with binding 'tidepool-connector-pods' denied request: image not allowed in a connector pod (annotation tidepool.io/connector-images of its namespace): busybox:1.36`);
      // A repository that only begins like an allowed one is another repository.
      main(pod).image = `tidepool-evil/source-faker:${PACKAGE_VERSION}`;
      expect(await create(pod)).toContain('image not allowed in a connector pod');
    });

    it('is refused a pod without the restricted security context, or on the host', async () => {
      const privileged = connectorPod();
      main(privileged).securityContext = { privileged: true, allowPrivilegeEscalation: true };
      expect(await create(privileged)).toContain(`${POD_POLICY} with binding 'tidepool-connector-pods' denied request: a connector pod runs with the restricted security context`);

      const root = connectorPod();
      root.spec!.securityContext = { runAsUser: 0 };
      expect(await create(root)).toContain('a connector pod runs with the restricted security context');

      const host = connectorPod();
      host.spec!.hostNetwork = true;
      expect(await create(host)).toContain(`${POD_POLICY} with binding 'tidepool-connector-pods' denied request: a connector pod shares no host namespace`);

      const hostPath = connectorPod();
      hostPath.spec!.volumes!.push({ name: 'root', hostPath: { path: '/' } });
      expect(await create(hostPath)).toContain("a connector pod's volumes are");
    });

    it('is refused a pod outside the NetworkPolicy and the sweep (no connector labels)', async () => {
      const pod = connectorPod();
      pod.metadata!.labels = { 'tidepool.io/prefix': config.prefix };
      expect(await create(pod)).toContain(`${POD_POLICY} with binding 'tidepool-connector-pods' denied request: a connector pod carries app.kubernetes.io/component=connector`);
    });

    it('is refused a Secret that Kubernetes would fill with a token', async () => {
      const secret = { metadata: { name: 'minted', annotations: { 'kubernetes.io/service-account.name': 'default' } }, type: 'kubernetes.io/service-account-token' };
      expect(await answer(asRunner.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: connectorNamespace, body: secret, dryRun: 'All' }))).toContain(
        `${SECRET_POLICY} with binding 'tidepool-connector-secrets' denied request: a connector Secret is of type Opaque`,
      );
    });

    it("is refused anything in its own (the scaler's) namespace but reading a Secret by name, and any Secret of the connector namespace", async () => {
      const pod = connectorPod();
      pod.metadata!.namespace = namespace;
      expect(await create(pod, namespace)).toMatch(FORBIDDEN_BY_RBAC);
      const runnerCore = asRunner.makeApiClient(CoreV1Api);
      // secretRefs name Secrets of its own namespace: get by name, never list.
      expect(await answer(runnerCore.listNamespacedSecret({ namespace }))).toMatch(FORBIDDEN_BY_RBAC);
      expect(await answer(runnerCore.readNamespacedSecret({ namespace, name: 'anything' }))).toMatch(/not ?found/i);
      expect(await answer(runnerCore.readNamespacedSecret({ namespace: connectorNamespace, name: 'anything' }))).toMatch(FORBIDDEN_BY_RBAC);
      expect(await answer(runnerCore.listNamespacedSecret({ namespace: connectorNamespace }))).toMatch(FORBIDDEN_BY_RBAC);
      expect(await answer(asRunner.makeApiClient(BatchV1Api).listNamespacedJob({ namespace }))).toMatch(FORBIDDEN_BY_RBAC);
    });
  });

  describe("the scaler's ServiceAccount", () => {
    const runnerJob = (): V1Job => runnerJobLauncher(asScaler, config, 'lp-runner', testLogger()).jobManifest(`lp-runner-${randomBytes(3).toString('hex')}`);
    const create = (job: V1Job) => answer(asScaler.makeApiClient(BatchV1Api).createNamespacedJob({ namespace, body: job, dryRun: 'All' }));
    const runner = (job: V1Job) => job.spec!.template.spec!.containers[0]!;

    it('may create a runner Job as the scaler makes it', async () => {
      expect(await create(runnerJob())).toBe('admitted');
    });

    it('is refused a Job with another image, another ServiceAccount or another command', async () => {
      const image = runnerJob();
      runner(image).image = 'busybox:1.36';
      expect(await create(image)).toContain(`${JOB_POLICY} with binding 'tidepool-runner-jobs' denied request: a runner Job runs the runner image only (annotation tidepool.io/runner-image of its namespace: tidepool/tidepool)`);

      const account = runnerJob();
      account.spec!.template.spec!.serviceAccountName = 'tidepool-scaler';
      expect(await create(account)).toContain(`${JOB_POLICY} with binding 'tidepool-runner-jobs' denied request: a runner Job runs as the tidepool-runner ServiceAccount`);

      const command = runnerJob();
      runner(command).command = ['sh', '-c', 'cat /var/run/secrets/kubernetes.io/serviceaccount/token'];
      expect(await create(command)).toContain(`${JOB_POLICY} with binding 'tidepool-runner-jobs' denied request: a runner Job runs \`runner\``);

      const host = runnerJob();
      host.spec!.template.spec!.volumes!.push({ name: 'root', hostPath: { path: '/' } });
      expect(await create(host)).toContain(`${JOB_POLICY} with binding 'tidepool-runner-jobs' denied request: a runner Job shares no host namespace`);
    });

    it('is refused pods, Secrets and the connector namespace', async () => {
      const scalerCore = asScaler.makeApiClient(CoreV1Api);
      expect(await answer(scalerCore.listNamespacedSecret({ namespace }))).toMatch(FORBIDDEN_BY_RBAC);
      expect(await answer(scalerCore.listNamespacedPod({ namespace }))).toMatch(FORBIDDEN_BY_RBAC);
      expect(await answer(scalerCore.createNamespacedPod({ namespace, body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: `tidepool/tidepool:${PACKAGE_VERSION}` }] } }, dryRun: 'All' }))).toMatch(FORBIDDEN_BY_RBAC);
      expect(await answer(asScaler.makeApiClient(BatchV1Api).createNamespacedJob({ namespace: connectorNamespace, body: runnerJob(), dryRun: 'All' }))).toMatch(FORBIDDEN_BY_RBAC);
    });
  });

  it("still runs a real sync with the runner's own account, connector pods in their own namespace", async () => {
    // The runner on the host (this tree's code: the cluster's tidepool image may be older),
    // with nothing but the runner ServiceAccount's token.
    const dir = await mkdtemp(join(tmpdir(), 'tp-lp-'));
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, asRunner.exportConfig(), { mode: 0o600 });
    const runnerConfig = testConfig('least-privilege-k8s', { ...hostRunnerOnCluster(namespace), connectorNamespace, kubeconfig, prefix: config.prefix, logLevel: 'warn' });
    services = openTestServices(runnerConfig);
    dest = await createTestDatabase('k8s_least_privilege');
    await services.store.connections.apply({
      id: 'least-privilege',
      source: { connector: 'source-faker', config: { seed: 1, count: 100 } },
      destination: { connector: 'destination-postgres', config: { ...dest.config, host: CLUSTER.nodeIp, schema: 'lp' } },
      streams: [{ name: 'users' }],
    });
    let log = '';
    runner = spawn(process.execPath, [CLI_PATH, 'runner', '--runner-id', `${config.prefix}-runner`], { env: { PATH: process.env.PATH ?? '', ...configEnv(runnerConfig) }, stdio: ['ignore', 'pipe', 'pipe'] });
    runner.stdout?.on('data', (b: Buffer) => (log += b.toString()));
    runner.stderr?.on('data', (b: Buffer) => (log += b.toString()));

    const broker = await connectBroker({ url: runnerConfig.amqpUrl, logger: services.logger });
    const channel = await openConfirmChannel(broker, topologyFor(runnerConfig.prefix), services.logger);
    const request = newSyncRequest('least-privilege');
    await publishSync(channel, topologyFor(runnerConfig.prefix), request);
    await broker.close();

    const run = await waitFor('the sync to finish', async () => {
      if (runner?.exitCode !== null) throw new Error(`runner exited ${String(runner?.exitCode)}:\n${log.slice(-3000)}`);
      const r = await services!.store.runs.get(request.syncId);
      return r && FINAL_STATUSES.has(r.status) ? r : undefined;
    }, 180_000, 1000);
    expect(run.error?.message ?? run.status).toBe('succeeded');
    const { rows } = await dest.pool.query<{ n: string }>('SELECT count(DISTINCT id) n FROM lp.users');
    expect(rows[0]?.n).toBe('100');

    // The connector pods ran in the connector namespace (their events outlive them), none in the
    // runners', and none is left behind.
    const scheduled = async (ns: string) => (await core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.reason === 'Scheduled' && e.involvedObject.name?.startsWith('tp-')).length;
    expect(await scheduled(connectorNamespace)).toBeGreaterThanOrEqual(2);
    expect(await scheduled(namespace)).toBe(0);
    await waitFor('connector pods and Secrets to be gone', async () => {
      const [pods, secrets] = await Promise.all([
        core.listNamespacedPod({ namespace: connectorNamespace, labelSelector: 'app.kubernetes.io/component=connector' }),
        core.listNamespacedSecret({ namespace: connectorNamespace, labelSelector: 'app.kubernetes.io/component=connector' }),
      ]);
      return pods.items.length === 0 && secrets.items.length === 0;
    }, 60_000, 1000);
    await rm(dir, { recursive: true, force: true });
  });
});
