// The setup the Kubernetes tests share. Where the cluster is, the runner RBAC and runner Jobs
// are in bench/support/cluster.ts (the Kubernetes bench uses them too), re-exported here.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Config, ConfigInput } from '../../shared/config.js';
import { CLUSTER, inClusterSettings } from '../../bench/support/cluster.js';
import { testConfig } from '../helpers/services.js';

export { applyRunnerRbac, CLUSTER, runnerJobLauncher } from '../../bench/support/cluster.js';

export async function createNamespace(kc: KubeConfig, name: string): Promise<string> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels: { 'tidepool.io/test': 'true' } } } });
  return name;
}

/** A test config whose runners (in pods) reach RabbitMQ and Redis at the node address. */
export function clusterTestConfig(name: string, overrides: Partial<ConfigInput>): Config {
  return testConfig(name, { ...inClusterSettings(), ...overrides });
}

/** Settings of a runner on the host whose connectors run in pods of `namespace` on the test cluster. */
export function hostRunnerOnCluster(namespace: string): Partial<ConfigInput> {
  return {
    connectorLauncher: 'kubernetes',
    kubeconfig: CLUSTER.kubeconfig,
    namespace,
    advertiseAddress: CLUSTER.nodeIp,
    streamPort: 0,
    imagePullPolicy: 'Never',
  };
}
