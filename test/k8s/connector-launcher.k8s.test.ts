// The ConnectorLauncher conformance suite, unchanged, against connector pods on the real
// cluster, with direct stdio and with the sidecar (scripts/cluster up; images from scripts/images). Pods reach this test's stream
// server and PostgreSQL through the node address scripts/cluster creates. The launcher acts as
// a runner does in k8s/base: with the runner ServiceAccount's token, in a connector namespace
// of its own, under the shipped RBAC and admission policies, so every pod the suite makes (each
// role, command and failure) is one the policies admit.
import { CONNECTOR_STDIO } from '../../shared/connections.js';
import { loadKubeConfig } from '../../shared/kube.js';
import { KubernetesPodConnectorLauncher } from '../../runner/launch/kubernetes-pod.js';
import { StreamServer } from '../../runner/launch/stream-server.js';
import { describeConnectorLauncherConformance } from '../conformance/connector-launcher.js';
import { createTestDatabase } from '../helpers/pg.js';
import { testLogger } from '../helpers/services.js';
import { CLUSTER, createSplitLayout, podLauncherOptions } from './cluster.js';

// Both ways a pod carries stdio, whichever the installation's default is: the same suite, unchanged.
for (const stdio of CONNECTOR_STDIO) {
  describeConnectorLauncherConformance(`kubernetes pod, ${stdio} stdio`, async () => {
    const kc = loadKubeConfig(CLUSTER.kubeconfig);
    const layout = await createSplitLayout(kc, `tp-conf-${stdio}`);
    const server = new StreamServer(testLogger(), { host: '0.0.0.0', port: 0 });
    await server.listen();
    const adapter = new KubernetesPodConnectorLauncher(layout.asRunner, podLauncherOptions(layout.connectorNamespace, 'conformance', server, layout.connectorNamespace, stdio), testLogger());
    const db = await createTestDatabase(`conformance_k8s_${stdio}`);
    return {
      launcher: adapter,
      database: { connectorConfig: { ...db.config, host: CLUSTER.nodeIp }, pool: db.pool },
      cleanup: async () => {
        await adapter.close();
        await server.stop();
        await layout.remove();
        await db.drop();
      },
    };
  });
}
