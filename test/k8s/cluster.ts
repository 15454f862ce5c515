// Where the test cluster is (scripts/cluster writes the kubeconfig and creates the node
// address), and the setup the Kubernetes tests share.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { Config, ConfigInput } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { PACKAGE_ROOT, PACKAGE_VERSION } from '../../shared/paths.js';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { runnerEnv } from '../../scaler/runner-env.js';
import { testConfig } from '../helpers/services.js';

export const CLUSTER = {
  kubeconfig: process.env.TIDEPOOL_KUBECONFIG ?? '/var/lib/tidepool-cluster/kubeconfig',
  /** The node's own address (a dummy interface): pods reach the host's services through it. */
  nodeIp: process.env.TIDEPOOL_NODE_IP ?? '10.245.0.1',
};

export async function createNamespace(kc: KubeConfig, name: string): Promise<string> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels: { 'tidepool.io/test': 'true' } } } });
  return name;
}

/** A test config whose runners (in pods) reach RabbitMQ and Redis at the node address. */
export function clusterTestConfig(name: string, overrides: Partial<ConfigInput>): Config {
  return testConfig(name, {
    amqpUrl: `amqp://guest:guest@${CLUSTER.nodeIp}:5672`,
    redisUrl: `redis://${CLUSTER.nodeIp}:6379`,
    runnerLauncher: 'kubernetes',
    connectorLauncher: 'kubernetes',
    imagePullPolicy: 'Never',
    ...overrides,
  });
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

/** The runners' ServiceAccount, Role and RoleBinding exactly as shipped in k8s/base. */
export async function applyRunnerRbac(kc: KubeConfig, namespace: string): Promise<void> {
  const objects = kc.makeApiClient(KubernetesObjectApi);
  const text = await readFile(join(PACKAGE_ROOT, 'k8s/base/rbac.yaml'), 'utf8');
  for (const doc of parseAllDocuments(text).map((d) => d.toJSON() as KubernetesObject)) {
    doc.metadata = doc.metadata ?? {};
    doc.metadata.namespace = namespace;
    await objects.create(doc);
  }
}

/** Runner Jobs as the scaler makes them, from the local images. */
export function runnerJobLauncher(kc: KubeConfig, config: Config, namePrefix: string, logger: Logger): KubernetesJobRunnerLauncher {
  return new KubernetesJobRunnerLauncher(
    kc,
    {
      namespace: config.namespace,
      image: `tidepool/tidepool:${PACKAGE_VERSION}`,
      imagePullPolicy: 'Never',
      serviceAccountName: 'tidepool-runner',
      env: runnerEnv(config, 'pod'),
      selector: { 'tidepool.io/prefix': config.prefix },
      activeDeadlineSeconds: 900,
      ttlSecondsAfterFinished: 600,
      namePrefix,
    },
    logger,
  );
}
