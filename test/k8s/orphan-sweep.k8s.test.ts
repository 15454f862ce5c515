// The orphan sweep a runner does at start and every minute, on the real cluster: connector
// pods (and their Secrets) of a runner that is gone are deleted; those of a live runner, and
// pods too young to judge, are left alone. ownerReferences cover runners in pods whose connectors
// share their namespace; this covers the rest (connectors in a namespace of their own, a runner
// outside the cluster, or one whose pod object survived it). The launchers act with the runner
// ServiceAccount's token, under the RBAC and admission policies k8s/base ships.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../shared/kube.js';
import { PACKAGE_VERSION } from '../../shared/paths.js';
import type { ConnectorProcess } from '../../shared/ports/connector-launcher.js';
import { KubernetesPodConnectorLauncher } from '../../runner/launch/kubernetes-pod.js';
import { StreamServer } from '../../runner/launch/stream-server.js';
import { fakerUsersCatalog } from '../helpers/connector-io.js';
import { testLogger, waitFor } from '../helpers/services.js';
import { CLUSTER, applyShippedAccess, createNamespace, kubeConfigAs } from './cluster.js';

describe('orphan sweep', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const suffix = randomBytes(3).toString('hex');
  const runnerNamespace = `tp-sweep-${suffix}`;
  const namespace = `tp-sweepc-${suffix}`;
  let asRunner: KubeConfig;
  const servers: StreamServer[] = [];
  const launchers: KubernetesPodConnectorLauncher[] = [];

  async function launcherFor(runnerId: string): Promise<KubernetesPodConnectorLauncher> {
    const server = new StreamServer(testLogger(), { host: '0.0.0.0', port: 0 });
    await server.listen();
    servers.push(server);
    const launcher = new KubernetesPodConnectorLauncher(
      asRunner,
      {
        namespace,
        runnerId,
        server,
        advertiseAddress: CLUSTER.nodeIp,
        sidecarImage: `tidepool/socat:${PACKAGE_VERSION}`,
        builtinImage: (name) => `tidepool/${name}:${PACKAGE_VERSION}`,
        imagePullPolicy: 'Never',
        activeDeadlineSeconds: 300,
        selector: { 'tidepool.io/prefix': namespace },
      },
      testLogger(),
    );
    launchers.push(launcher);
    return launcher;
  }

  /** A source that runs until something ends its pod. */
  async function hangingSource(launcher: KubernetesPodConnectorLauncher, runId: string): Promise<ConnectorProcess> {
    const proc = await launcher.start({ runId, role: 'source', connector: { connector: 'source-e2e-test', config: {} }, command: 'read', files: { config: { records: 1, then: 'hang' }, catalog: fakerUsersCatalog() } });
    proc.stdout.resume();
    proc.stderr.resume();
    return proc;
  }

  const connectorPods = async () =>
    (await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/component=connector' })).items.map((p) => p.metadata?.labels?.['tidepool.io/runner']).sort();
  const connectorSecrets = async () => (await core.listNamespacedSecret({ namespace, labelSelector: 'app.kubernetes.io/component=connector' })).items.length;

  beforeAll(async () => {
    await createNamespace(kc, runnerNamespace);
    await createNamespace(kc, namespace);
    await applyShippedAccess(kc, runnerNamespace, namespace);
    asRunner = await kubeConfigAs(kc, runnerNamespace, 'tidepool-runner');
  });

  afterAll(async () => {
    for (const l of launchers) await l.close();
    for (const s of servers) await s.stop();
    for (const ns of [namespace, runnerNamespace]) await core.deleteNamespace({ name: ns }).catch(() => undefined);
  });

  it('deletes the pods and Secrets of runners that are gone, and nothing else', async () => {
    const ghost = await hangingSource(await launcherFor('ghost'), 'sweep-ghost');
    await hangingSource(await launcherFor('alive'), 'sweep-alive');
    expect(await connectorPods()).toEqual(['alive', 'ghost']);
    expect(await connectorSecrets()).toBe(2);

    const sweeper = await launcherFor('sweeper');
    // Too young to judge (a runner that just started may not have sent its first heartbeat).
    expect(await sweeper.sweepOrphans(() => Promise.resolve(new Set(['alive'])))).toBe(0);
    // Old enough: only the pod of the runner without a heartbeat goes.
    expect(await sweeper.sweepOrphans(() => Promise.resolve(new Set(['alive'])), 0)).toBe(1);
    await waitFor('the ghost pod and its Secret to be gone', async () => (await connectorPods()).join() === 'alive' && (await connectorSecrets()) === 1, 30_000, 500);
    // The ghost runner, were it still there, would see its connector killed, not hanging forever.
    expect((await ghost.exit).code).not.toBe(0);
  });
});
