// The local cluster (scripts/cluster up) runs real workloads: a Job's pod starts from an image
// imported into containerd, prints a line, and the line comes back through the API server
// (which fetches it from the kubelet), with the Job marked succeeded. Pods resolve names through
// the cluster's DNS, as on any real cluster.
import { randomBytes } from 'node:crypto';
import { BatchV1Api, CoreV1Api, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotFound, kubeErrorMessage, loadKubeConfig } from '../../shared/kube.js';
import { CLUSTER } from '../../bench/support/cluster.js';
import { waitFor } from '../helpers/services.js';

const kubeconfigPath = process.env.TIDEPOOL_KUBECONFIG ?? '/var/lib/tidepool-cluster/kubeconfig';
// Built by scripts/cluster from Debian's static busybox (its echo works; its wget does not).
const SMOKE_IMAGE = 'docker.io/library/tidepool-smoke:1';

const kc = loadKubeConfig(kubeconfigPath);
const core = kc.makeApiClient(CoreV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const namespace = `smoke-${randomBytes(4).toString('hex')}`;

describe('local cluster', () => {
  beforeAll(async () => {
    try {
      await core.readNode({ name: 'tidepool' });
    } catch (err) {
      throw new Error(`no cluster behind ${kubeconfigPath} (run scripts/cluster up): ${kubeErrorMessage(err)}`);
    }
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });

  afterAll(async () => {
    try {
      await core.deleteNamespace({ name: namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  });

  /** Runs `script` in a Job's one pod and returns the pod, once the Job has succeeded, with its log. */
  async function runJob(name: string, script: string, env: Record<string, string> = {}): Promise<{ pod: V1Pod; log: string }> {
    const job: V1Job = {
      metadata: { name },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: 120,
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'main',
                image: SMOKE_IMAGE,
                imagePullPolicy: 'Never',
                command: ['/bin/sh', '-c', script],
                env: Object.entries(env).map(([k, value]) => ({ name: k, value })),
              },
            ],
          },
        },
      },
    };
    await batch.createNamespacedJob({ namespace, body: job });

    const status = await waitFor(`the Job ${name} to finish`, async () => {
      const { status } = await batch.readNamespacedJob({ name, namespace });
      const done = status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      return done ? status : undefined;
    }, 120_000, 250);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `batch.kubernetes.io/job-name=${name}` });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace });
    expect(status?.conditions?.find((c) => c.status === 'True' && c.type === 'Failed'), log).toBeUndefined();
    expect(status?.succeeded).toBe(1);
    expect(pod.status?.phase).toBe('Succeeded');
    return { pod, log };
  }

  it('runs a Job whose pod output is readable through the API', async () => {
    const token = randomBytes(8).toString('hex');
    const { pod, log } = await runJob('smoke', 'echo "tidepool smoke $TOKEN from $(hostname)"', { TOKEN: token });
    expect(log.trim()).toBe(`tidepool smoke ${token} from ${pod.metadata!.name!}`);
  });

  it('gives pods a cluster DNS that names the API server\'s Service, and the kubelet no reason to warn', async () => {
    // busybox's nslookup asks the first nameserver of the pod's resolv.conf.
    const { pod, log } = await runJob('dns', 'cat /etc/resolv.conf; nslookup kubernetes.default.svc.cluster.local; if nslookup pypi.org; then echo LEAKED; fi');
    const service = await core.readNamespacedService({ name: 'kubernetes', namespace: 'default' });
    expect(log.split('\n')).toContain(`nameserver ${CLUSTER.nodeIp}`);
    expect(log).toContain(`search ${namespace}.svc.cluster.local svc.cluster.local cluster.local`);
    expect(log).toMatch(new RegExp(`Address:? +${service.spec!.clusterIP!.replaceAll('.', '\\.')}\\b`));
    // Nothing outside the cluster is resolved (or forwarded anywhere): NXDOMAIN at once.
    expect(log).not.toContain('LEAKED');
    const events = await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${pod.metadata!.name!}` });
    expect(events.items.map((e) => e.reason)).not.toContain('MissingClusterDNS');
  });
});
