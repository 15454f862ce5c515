// Where the test cluster is (scripts/cluster writes the kubeconfig and creates the node address).
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

export const CLUSTER = {
  kubeconfig: process.env.TIDEPOOL_KUBECONFIG ?? '/var/lib/tidepool-cluster/kubeconfig',
  /** The node's own address (a dummy interface): pods reach the host's services through it. */
  nodeIp: process.env.TIDEPOOL_NODE_IP ?? '10.245.0.1',
};

export async function createNamespace(kc: KubeConfig, name: string): Promise<string> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels: { 'tidepool.io/test': 'true' } } } });
  return name;
}
