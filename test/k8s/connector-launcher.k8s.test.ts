// The ConnectorLauncher conformance suite, unchanged, against connector pods on the real
// cluster (scripts/cluster up; images from scripts/images). Pods reach this test's stream
// server and PostgreSQL through the node address scripts/cluster creates.
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../shared/kube.js';
import { PACKAGE_VERSION } from '../../shared/paths.js';
import { KubernetesPodConnectorLauncher } from '../../runner/launch/kubernetes-pod.js';
import { StreamServer } from '../../runner/launch/stream-server.js';
import { describeConnectorLauncherConformance } from '../conformance/connector-launcher.js';
import { createTestDatabase } from '../helpers/pg.js';
import { testLogger } from '../helpers/services.js';
import { CLUSTER, createNamespace } from './cluster.js';

describeConnectorLauncherConformance('kubernetes pod', async () => {
  const kc = loadKubeConfig(CLUSTER.kubeconfig);
  const namespace = await createNamespace(kc, `tp-conf-${randomBytes(3).toString('hex')}`);
  const server = new StreamServer(testLogger(), { host: '0.0.0.0', port: 0 });
  await server.listen();
  const adapter = new KubernetesPodConnectorLauncher(
    kc,
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
      await kc.makeApiClient(CoreV1Api).deleteNamespace({ name: namespace }).catch(() => undefined);
      await db.drop();
    },
  };
});
