// Every Kubernetes test that fails prints what the cluster held at that moment: the namespaces
// the tests made (their Jobs, pods, warnings, runner logs). CI tears the cluster down with the
// run, so without this a timeout says only that it waited, never whether the node, the runner or
// the sync was stuck.
import { CoreV1Api } from '@kubernetes/client-node';
import { beforeEach } from 'vitest';
import { describeNamespace, SYSTEM_NAMESPACES } from '../../bench/support/cluster.js';
import { loadKubeConfig } from '../../shared/kube.js';
import { CLUSTER } from './cluster.js';

beforeEach(({ onTestFailed }) => {
  onTestFailed(async () => {
    const kc = loadKubeConfig(CLUSTER.kubeconfig);
    const namespaces = await kc.makeApiClient(CoreV1Api).listNamespace().then(
      (list) => list.items.filter((n) => !SYSTEM_NAMESPACES.has(n.metadata!.name!) && !n.metadata?.deletionTimestamp).map((n) => n.metadata!.name!),
      () => [] as string[],
    );
    for (const namespace of namespaces) console.error(await describeNamespace(kc, namespace).catch((err: unknown) => `namespace ${namespace}: ${String(err)}`));
  });
});
