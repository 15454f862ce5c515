// The local cluster of scripts/cluster, for the Kubernetes tests and bench: where it is (the
// script writes the kubeconfig and gives the node an address of its own), how runners in its
// pods reach the host's RabbitMQ and Redis, and the RBAC, admission policies and runner Jobs as
// tidepool ships them.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BatchV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, type KubernetesObject, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { loadConfig, type Config, type ConfigInput } from '../../shared/config.js';
import type { ConnectorStdio } from '../../shared/connections.js';
import { isNotFound, kubeErrorMessage } from '../../shared/kube.js';
import type { Logger } from '../../shared/logger.js';
import { PACKAGE_ROOT, PACKAGE_VERSION } from '../../shared/paths.js';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { runnerEnv, runnerSecretEnv } from '../../scaler/runner-env.js';
import { waitFor } from './wait.js';

export const CLUSTER = {
  kubeconfig: process.env.TIDEPOOL_KUBECONFIG || '/var/lib/tidepool-cluster/kubeconfig',
  /** The node's own address (a dummy interface): pods reach the host's services through it. */
  nodeIp: process.env.TIDEPOOL_NODE_IP || '10.245.0.1',
};

/**
 * Settings for runners and connectors in pods of the cluster, on the host's RabbitMQ and Redis:
 * the host's URLs (with the credentials scripts/setup generated) with the node's address for
 * 127.0.0.1, where scripts/cluster forwards the same ports to the host's loopback.
 */
export function inClusterSettings(host: Pick<Config, 'amqpUrl' | 'redisUrl'> = loadConfig({})): Partial<ConfigInput> {
  return {
    amqpUrl: onNode(host.amqpUrl),
    redisUrl: onNode(host.redisUrl),
    runnerLauncher: 'kubernetes',
    connectorLauncher: 'kubernetes',
    // The images are imported into the node's containerd (scripts/images): there is no registry.
    imagePullPolicy: 'Never',
    connectorStdio: clusterStdio(),
  };
}

/**
 * How connector pods carry stdio in the tests and benches on the cluster: TIDEPOOL_CONNECTOR_STDIO
 * when it is set (so the whole Kubernetes suite runs with either layout), else the default.
 */
export function clusterStdio(env: NodeJS.ProcessEnv = process.env): ConnectorStdio {
  const value = env.TIDEPOOL_CONNECTOR_STDIO;
  return loadConfig(value === undefined ? {} : { TIDEPOOL_CONNECTOR_STDIO: value }).connectorStdio;
}

/** A URL of a host service as pods reach it: the same credentials and port, on the node address. */
export function onNode(url: string): string {
  const u = new URL(url);
  u.hostname = CLUSTER.nodeIp;
  return u.toString();
}

/** The connector namespace of k8s/base; everything else there is in the runners' (tidepool). */
const BASE_CONNECTOR_NAMESPACE = 'tidepool-connectors';

/** What applyShippedAccess takes from k8s/base: all but the settings, the scaler Deployment and the NetworkPolicies. */
const ACCESS_MANIFESTS = ['namespace.yaml', 'rbac.yaml', 'admission-connectors.yaml', 'admission-runners.yaml'];

/**
 * Who may do what, exactly as shipped in k8s/base, for runners in `namespace` whose connector
 * pods go to `connectorNamespace` (the same one unless given): the ServiceAccounts, Roles and
 * RoleBindings, the namespaces' labels (Pod Security, and those the admission policies bind
 * by) and annotations (the images the policies allow), and the policies themselves. The policies are cluster-wide and the same for every test: applied, not
 * created, so tests that run at once share them. Everything else lands in the given namespaces.
 */
export async function applyShippedAccess(kc: KubeConfig, namespace: string, connectorNamespace = namespace): Promise<void> {
  const objects = kc.makeApiClient(KubernetesObjectApi);
  const moved = (ns: string | undefined) => (ns === BASE_CONNECTOR_NAMESPACE ? connectorNamespace : namespace);
  for (const file of ACCESS_MANIFESTS) {
    const text = await readFile(join(PACKAGE_ROOT, 'k8s/base', file), 'utf8');
    for (const doc of parseAllDocuments(text).map((d) => d.toJSON() as KubernetesObject & { subjects?: { namespace?: string }[] })) {
      doc.metadata = doc.metadata ?? {};
      // One field manager per object of the base: when both namespaces are one, applying the
      // second Namespace under the first's manager would take the first's labels away.
      const manager = `tidepool-tests-${doc.kind ?? ''}-${doc.metadata.name ?? ''}`.slice(0, 128);
      if (doc.kind === 'Namespace') doc.metadata.name = moved(doc.metadata.name);
      else if (!doc.kind?.startsWith('ValidatingAdmissionPolicy')) doc.metadata.namespace = moved(doc.metadata.namespace);
      for (const subject of doc.subjects ?? []) subject.namespace = moved(subject.namespace);
      await objects.patch(doc, undefined, undefined, manager, true, PatchStrategy.ServerSideApply);
    }
  }
  await policiesInForce(kc, namespace, connectorNamespace);
}

/**
 * Waits until the admission policies act in these namespaces. The API server loads policies
 * and the new Roles through caches: just applied, a request may meet neither yet (RBAC's
 * "cannot create", or no check at all). So each account in turn (impersonated, dry-run) is
 * asked for something its policy refuses, until the refusal comes from that policy.
 */
async function policiesInForce(kc: KubeConfig, namespace: string, connectorNamespace: string): Promise<void> {
  const as = (serviceAccount: string) => {
    const impersonating = new KubeConfig();
    impersonating.loadFromOptions({
      clusters: kc.clusters,
      contexts: kc.contexts,
      currentContext: kc.currentContext,
      users: kc.users.map((u) => ({ ...u, impersonateUser: `system:serviceaccount:${namespace}:${serviceAccount}` })),
    });
    return impersonating;
  };
  const restricted = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
  const container = { name: 'probe', image: 'policy.invalid/probe', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } };
  // Pod Security would refuse an unrestricted pod first; this one lacks only what the policy asks.
  const pod: V1Pod = { metadata: { generateName: 'policy-probe-' }, spec: { securityContext: restricted, containers: [container] } };
  const job: V1Job = { metadata: { generateName: 'policy-probe-' }, spec: { template: { spec: { restartPolicy: 'Never', securityContext: restricted, containers: [container] } } } };
  const probes = [
    { policy: 'tidepool-connector-pods', ask: () => as('tidepool-runner').makeApiClient(CoreV1Api).createNamespacedPod({ namespace: connectorNamespace, body: pod, dryRun: 'All' }) },
    { policy: 'tidepool-runner-jobs', ask: () => as('tidepool-scaler').makeApiClient(BatchV1Api).createNamespacedJob({ namespace, body: job, dryRun: 'All' }) },
  ];
  for (const { policy, ask } of probes) {
    await waitFor(`admission policy ${policy} in force`, async () => {
      const refusal = await ask().then(
        () => 'admitted',
        (err: unknown) => kubeErrorMessage(err),
      );
      if (!refusal.includes(`ValidatingAdmissionPolicy '${policy}' with binding '${policy}' denied request: a `)) throw new Error(refusal);
      return true;
    }, 60_000, 250);
  }
}

/**
 * A namespace for a bench's runners, labelled as a bench's, with the access k8s/base ships
 * (applyShippedAccess) and, when `config` names a credentials Secret, that Secret holding its
 * broker and store URLs: runner Jobs then read them from it, as shipped, never from their spec.
 */
export async function createRunnerNamespace(kc: KubeConfig, namespace: string, config?: Pick<Config, 'credentialsSecret' | 'amqpUrl' | 'redisUrl'>): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace, labels: { 'tidepool.io/bench': 'true' } } } });
  await applyShippedAccess(kc, namespace);
  if (config?.credentialsSecret) {
    await core.createNamespacedSecret({ namespace, body: { metadata: { name: config.credentialsSecret }, stringData: { 'amqp-url': config.amqpUrl, 'redis-url': config.redisUrl } } });
  }
}

/** Namespaces of the cluster itself: anything else on it is someone's work (a bench's, a test's). */
export const SYSTEM_NAMESPACES: ReadonlySet<string> = new Set(['default', 'kube-system', 'kube-public', 'kube-node-lease']);

/**
 * Deletes a namespace and waits until it is gone (its Jobs and pods with it), so that what the
 * namespace controller does next is in no later measurement. Throws a WaitTimeout after `timeoutMs`.
 */
export async function deleteNamespaceAndWait(kc: KubeConfig, namespace: string, timeoutMs = 180_000): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.deleteNamespace({ name: namespace }).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
  await waitFor(`namespace ${namespace} to be deleted`, () => core.readNamespace({ name: namespace }).then(() => false, (err: unknown) => {
    if (isNotFound(err)) return true;
    throw err;
  }), timeoutMs, 1000);
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

/**
 * What a namespace holds, in a few lines a failed wait can carry: its Jobs, each pod's phase and
 * why a container waits or ended, the latest Warning events and the last log lines of the runner
 * pods. A test on the cluster that times out otherwise says only that it waited; the cluster is
 * torn down with the run, so this is what is left to tell a slow node from a stuck runner.
 */
export async function describeNamespace(kc: KubeConfig, namespace: string, logLines = 15): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const lines: string[] = [`namespace ${namespace}:`];
  const attempt = async (what: string, read: () => Promise<void>) => {
    await read().catch((err: unknown) => lines.push(`  (${what}: ${kubeErrorMessage(err)})`));
  };
  await attempt('jobs', async () => {
    for (const job of (await batch.listNamespacedJob({ namespace })).items) {
      const s = job.status ?? {};
      const conditions = (s.conditions ?? []).map((c) => `${c.type}=${c.status}${c.reason ? `(${c.reason})` : ''}`).join(',');
      lines.push(`  job ${job.metadata?.name}: active ${s.active ?? 0}, succeeded ${s.succeeded ?? 0}, failed ${s.failed ?? 0} ${conditions}`);
    }
  });
  const runnerPods: string[] = [];
  await attempt('pods', async () => {
    for (const pod of (await core.listNamespacedPod({ namespace })).items) {
      const containers = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].map((c) => {
        const st = c.state?.waiting ? `waiting ${c.state.waiting.reason ?? ''}` : c.state?.terminated ? `exited ${c.state.terminated.exitCode} ${c.state.terminated.reason ?? ''}` : 'running';
        return `${c.name} ${st}${c.restartCount ? ` restarts ${c.restartCount}` : ''}`;
      });
      const component = pod.metadata?.labels?.['app.kubernetes.io/component'] ?? '?';
      if (component === 'runner') runnerPods.push(pod.metadata!.name!);
      lines.push(`  pod ${pod.metadata?.name} (${component}): ${pod.status?.phase ?? '?'}; ${containers.join('; ') || 'no container status'}`);
    }
  });
  await attempt('events', async () => {
    const warnings = (await core.listNamespacedEvent({ namespace })).items.filter((e) => e.type === 'Warning').slice(-8);
    for (const e of warnings) lines.push(`  warning ${e.involvedObject.kind}/${e.involvedObject.name} ${e.reason}: ${(e.message ?? '').slice(0, 300)}`);
  });
  for (const name of runnerPods) {
    await attempt(`log of ${name}`, async () => {
      const log = await core.readNamespacedPodLog({ name, namespace, tailLines: logLines });
      lines.push(`  log of ${name}:`, ...log.trimEnd().split('\n').map((l) => `    ${l.slice(0, 400)}`));
    });
  }
  return lines.join('\n');
}
