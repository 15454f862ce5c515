// The local cluster of scripts/cluster, for the Kubernetes tests and bench: where it is (the
// script writes the kubeconfig and gives the node an address of its own), how runners in its
// pods reach the host's RabbitMQ and Redis, and the runner RBAC and Jobs as tidepool ships them.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { Config, ConfigInput } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { PACKAGE_ROOT, PACKAGE_VERSION } from '../../shared/paths.js';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { runnerEnv, runnerSecretEnv } from '../../scaler/runner-env.js';

export const CLUSTER = {
  kubeconfig: process.env.TIDEPOOL_KUBECONFIG || '/var/lib/tidepool-cluster/kubeconfig',
  /** The node's own address (a dummy interface): pods reach the host's services through it. */
  nodeIp: process.env.TIDEPOOL_NODE_IP || '10.245.0.1',
};

/** Settings for runners and connectors in pods of the cluster, on the host's RabbitMQ and Redis. */
export function inClusterSettings(): Partial<ConfigInput> {
  return {
    amqpUrl: `amqp://guest:guest@${CLUSTER.nodeIp}:5672`,
    redisUrl: `redis://${CLUSTER.nodeIp}:6379`,
    runnerLauncher: 'kubernetes',
    connectorLauncher: 'kubernetes',
    // The images are imported into the node's containerd (scripts/images): there is no registry.
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
      secretEnv: runnerSecretEnv(config),
      selector: { 'tidepool.io/prefix': config.prefix },
      activeDeadlineSeconds: 900,
      ttlSecondsAfterFinished: 600,
      namePrefix,
    },
    logger,
  );
}
