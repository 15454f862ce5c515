// The orphan sweep a runner does at start, on the real cluster: connector pods (and their
// Secrets) of a runner that is gone are deleted; those of a live runner, and pods too young to
// judge, are left alone. ownerReferences cover runners in pods; this covers the rest (a runner
// outside the cluster, or one whose pod object survived it).
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../shared/kube.js';
import { PACKAGE_VERSION } from '../../shared/paths.js';
import type { ConnectorProcess } from '../../shared/ports/connector-launcher.js';
import { KubernetesPodConnectorLauncher } from '../../runner/launch/kubernetes-pod.js';
import { StreamServer } from '../../runner/launch/stream-server.js';
import { fakerUsersCatalog } from '../helpers/connector-io.js';
import { testLogger, waitFor } from '../helpers/services.js';
import { CLUSTER, createNamespace } from './cluster.js';

describe('orphan sweep', () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const namespace = `tp-sweep-${randomBytes(3).toString('hex')}`;
  const servers: StreamServer[] = [];
  const launchers: KubernetesPodConnectorLauncher[] = [];

  async function launcherFor(runnerId: string): Promise<KubernetesPodConnectorLauncher> {
    const server = new StreamServer(testLogger(), { host: '0.0.0.0', port: 0 });
    await server.listen();
    servers.push(server);
    const launcher = new KubernetesPodConnectorLauncher(
      kc,
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
    await createNamespace(kc, namespace);
  });

  afterAll(async () => {
    for (const l of launchers) await l.close();
    for (const s of servers) await s.stop();
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
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
