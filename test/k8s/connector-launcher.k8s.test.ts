// The ConnectorLauncher conformance suite, unchanged, against connector pods on the real
// cluster (scripts/cluster up; images from scripts/images). Pods reach this test's stream
// server and PostgreSQL through the node address scripts/cluster creates. The launcher acts as
// a runner does in k8s/base: with the runner ServiceAccount's token, in a connector namespace
// of its own, under the shipped RBAC and admission policies, so every pod the suite makes (each
// role, command and failure) is one the policies admit.
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../shared/kube.js';
import { PACKAGE_VERSION } from '../../shared/paths.js';
import { KubernetesPodConnectorLauncher } from '../../runner/launch/kubernetes-pod.js';
import { StreamServer } from '../../runner/launch/stream-server.js';
import { describeConnectorLauncherConformance } from '../conformance/connector-launcher.js';
import { createTestDatabase } from '../helpers/pg.js';
import { testLogger } from '../helpers/services.js';
import { CLUSTER, applyShippedAccess, createNamespace, kubeConfigAs } from './cluster.js';

describeConnectorLauncherConformance('kubernetes pod', async () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const suffix = randomBytes(3).toString('hex');
  const runnerNamespace = await createNamespace(kc, `tp-conf-${suffix}`);
  const namespace = await createNamespace(kc, `tp-confc-${suffix}`);
  await applyShippedAccess(kc, runnerNamespace, namespace);
  const server = new StreamServer(testLogger(), { host: '0.0.0.0', port: 0 });
  await server.listen();
  const adapter = new KubernetesPodConnectorLauncher(
    await kubeConfigAs(kc, runnerNamespace, 'tidepool-runner'),
    {
      namespace,
      runnerId: 'conformance',
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
  const db = await createTestDatabase('conformance_k8s');
  return {
    launcher: adapter,
    database: { connectorConfig: { ...db.config, host: CLUSTER.nodeIp }, pool: db.pool },
    cleanup: async () => {
      await adapter.close();
      await server.stop();
      for (const ns of [namespace, runnerNamespace]) await kc.makeApiClient(CoreV1Api).deleteNamespace({ name: ns }).catch(() => undefined);
      await db.drop();
    },
  };
});
