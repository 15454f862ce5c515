// The local cluster (scripts/cluster up) runs real workloads: a Job's pod starts from an image
// imported into containerd, prints a line, and the line comes back through the API server
// (which fetches it from the kubelet), with the Job marked succeeded.
import { randomBytes } from 'node:crypto';
import { BatchV1Api, CoreV1Api, type V1Job } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotFound, kubeErrorMessage, loadKubeConfig } from '../../shared/kube.js';
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

  it('runs a Job whose pod output is readable through the API', async () => {
    const token = randomBytes(8).toString('hex');
    const job: V1Job = {
      metadata: { name: 'smoke' },
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
                command: ['/bin/sh', '-c', `echo "tidepool smoke $TOKEN from $(hostname)"`],
                env: [{ name: 'TOKEN', value: token }],
              },
            ],
          },
        },
      },
    };
    await batch.createNamespacedJob({ namespace, body: job });

    const status = await waitFor('the Job to finish', async () => {
      const { status } = await batch.readNamespacedJob({ name: 'smoke', namespace });
      const done = status?.conditions?.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
      return done ? status : undefined;
    }, 120_000, 250);
    expect(status?.conditions?.find((c) => c.status === 'True' && c.type === 'Failed')).toBeUndefined();
    expect(status?.succeeded).toBe(1);

    const pods = await core.listNamespacedPod({ namespace, labelSelector: 'batch.kubernetes.io/job-name=smoke' });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    expect(pod.status?.phase).toBe('Succeeded');
    const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace });
    expect(log.trim()).toBe(`tidepool smoke ${token} from ${pod.metadata!.name!}`);
  });
});
