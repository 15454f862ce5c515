// The setup the Kubernetes tests share. Where the cluster is, the shipped RBAC and admission
// policies and runner Jobs are in bench/support/cluster.ts (the Kubernetes bench uses them
// too), re-exported here.
import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { PACKAGE_VERSION } from '../../shared/paths.js';
import type { KubernetesPodOptions } from '../../runner/launch/kubernetes-pod.js';
import type { StreamServer } from '../../runner/launch/stream-server.js';
import type { Config, ConfigInput } from '../../shared/config.js';
import type { ConnectorStdio } from '../../shared/connections.js';
import { applyShippedAccess, CLUSTER, clusterStdio, inClusterSettings } from '../../bench/support/cluster.js';
import { testConfig } from '../helpers/services.js';

export { applyShippedAccess, CLUSTER, runnerJobLauncher } from '../../bench/support/cluster.js';

export async function createNamespace(kc: KubeConfig, name: string): Promise<string> {
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name, labels: { 'tidepool.io/test': 'true' } } } });
  return name;
}

/**
 * A client that is `serviceAccount` of `namespace`, with a short-lived token the API server
 * issues for it (TokenRequest): what that account may do, RBAC and admission policies checked,
 * not what the tests' admin may.
 */
export async function kubeConfigAs(admin: KubeConfig, namespace: string, serviceAccount: string): Promise<KubeConfig> {
  const request = await admin.makeApiClient(CoreV1Api).createNamespacedServiceAccountToken({
    name: serviceAccount,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 3600 } },
  });
  const cluster = admin.getCurrentCluster();
  if (!cluster || !request.status?.token) throw new Error(`no token for ${namespace}/${serviceAccount}`);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: serviceAccount, token: request.status.token }],
    contexts: [{ name: serviceAccount, cluster: cluster.name, user: serviceAccount }],
    currentContext: serviceAccount,
  });
  return kc;
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
    connectorStdio: clusterStdio(),
  };
}

/** Runners' and connectors' namespaces as k8s/base lays them out, on the test cluster. */
export interface SplitLayout {
  namespace: string;
  connectorNamespace: string;
  /** A client with the runner ServiceAccount's token. */
  asRunner: KubeConfig;
  /** Deletes both namespaces. */
  remove(): Promise<void>;
}

/**
 * Two fresh namespaces, `<name>-<suffix>` for runners and `<name>c-<suffix>` for their
 * connectors, with the shipped RBAC and admission policies (applyShippedAccess).
 */
export async function createSplitLayout(admin: KubeConfig, name: string): Promise<SplitLayout> {
  const suffix = randomBytes(3).toString('hex');
  const namespace = `${name}-${suffix}`;
  const connectorNamespace = `${name}c-${suffix}`;
  const core = admin.makeApiClient(CoreV1Api);
  const remove = async () => {
    for (const ns of [connectorNamespace, namespace]) await core.deleteNamespace({ name: ns }).catch(() => undefined);
  };
  try {
    await createNamespace(admin, namespace);
    await createNamespace(admin, connectorNamespace);
    await applyShippedAccess(admin, namespace, connectorNamespace);
    return { namespace, connectorNamespace, asRunner: await kubeConfigAs(admin, namespace, 'tidepool-runner'), remove };
  } catch (err) {
    await remove(); // the test's afterAll never learns the names
    throw err;
  }
}

/**
 * Connector pods of `runnerId` as a runner makes them, from the local images, dialing `server` at
 * the node address, carrying stdio as `stdio` says (clusterStdio() by default).
 */
export function podLauncherOptions(namespace: string, runnerId: string, server: StreamServer, prefix: string, stdio: ConnectorStdio = clusterStdio()): KubernetesPodOptions {
  return {
    stdio,
    namespace,
    runnerId,
    server,
    advertiseAddress: CLUSTER.nodeIp,
    sidecarImage: `tidepool/socat:${PACKAGE_VERSION}`,
    builtinImage: (name) => `tidepool/${name}:${PACKAGE_VERSION}`,
    imagePullPolicy: 'Never',
    activeDeadlineSeconds: 300,
    selector: { 'tidepool.io/prefix': prefix },
  };
}
