// The orphan sweep a runner does at start and every minute, on the real cluster: connector
// pods (and their Secrets) of a runner that is gone are deleted; those of a live runner, and
// pods too young to judge, are left alone. ownerReferences cover runners in pods whose connectors
// share their namespace; this covers the rest (connectors in a namespace of their own, a runner
// outside the cluster, or one whose pod object survived it). The launchers act with the runner
// ServiceAccount's token, under the RBAC and admission policies k8s/base ships.
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../shared/kube.js';
import type { ConnectorProcess } from '../../shared/ports/connector-launcher.js';
import { KubernetesPodConnectorLauncher } from '../../runner/launch/kubernetes-pod.js';
import { StreamServer } from '../../runner/launch/stream-server.js';
import { fakerUsersCatalog } from '../helpers/connector-io.js';
import { testLogger, waitFor } from '../helpers/services.js';
import { CLUSTER, createSplitLayout, podLauncherOptions, type SplitLayout } from './cluster.js';

describe('orphan sweep', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  let layout: SplitLayout;
  const servers: StreamServer[] = [];
  const launchers: KubernetesPodConnectorLauncher[] = [];

  async function launcherFor(runnerId: string): Promise<KubernetesPodConnectorLauncher> {
    const server = new StreamServer(testLogger(), { host: '0.0.0.0', port: 0 });
    await server.listen();
    servers.push(server);
    const launcher = new KubernetesPodConnectorLauncher(layout.asRunner, podLauncherOptions(layout.connectorNamespace, runnerId, server, layout.connectorNamespace), testLogger());
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
    (await core.listNamespacedPod({ namespace: layout.connectorNamespace, labelSelector: 'app.kubernetes.io/component=connector' })).items.map((p) => p.metadata?.labels?.['tidepool.io/runner']).sort();
  const connectorSecrets = async () => (await core.listNamespacedSecret({ namespace: layout.connectorNamespace, labelSelector: 'app.kubernetes.io/component=connector' })).items.length;

  beforeAll(async () => {
    layout = await createSplitLayout(kc, 'tp-sweep');
  });

  afterAll(async () => {
    for (const l of launchers) await l.close();
    for (const s of servers) await s.stop();
    await layout?.remove();
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
