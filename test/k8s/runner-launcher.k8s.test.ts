// The RunnerLauncher conformance suite, unchanged, against runner Jobs on the real cluster.
// Runner pods reach RabbitMQ and Redis through the node address (scripts/cluster forwards it
// to the host's loopback services).
import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../shared/kube.js';
import { PACKAGE_VERSION } from '../../shared/paths.js';
import { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import { runnerEnv } from '../../scaler/runner-env.js';
import { inClusterSettings } from '../../bench/support/cluster.js';
import { describeRunnerLauncherConformance } from '../conformance/runner-launcher.js';
import { testConfig, testLogger } from '../helpers/services.js';
import { CLUSTER, createNamespace } from './cluster.js';

describeRunnerLauncherConformance(
  'kubernetes job',
  async () => {
    const kc = loadKubeConfig(CLUSTER.kubeconfig);
    const namespace = await createNamespace(kc, `tp-jobs-${randomBytes(3).toString('hex')}`);
    const config = testConfig('runner-launcher-k8s', {
      idleTimeout: '3s',
      heartbeatInterval: '500ms',
      heartbeatTtl: '5s',
      amqpUrl: inClusterSettings().amqpUrl,
      redisUrl: inClusterSettings().redisUrl,
    });
    const launcher = new KubernetesJobRunnerLauncher(
      kc,
      {
        namespace,
        image: `tidepool/tidepool:${PACKAGE_VERSION}`,
        imagePullPolicy: 'Never',
        env: runnerEnv(config, 'pod'),
        selector: { 'tidepool.io/prefix': config.prefix },
        activeDeadlineSeconds: 600,
        ttlSecondsAfterFinished: 300,
        namePrefix: 'conf-runner',
      },
      testLogger(),
    );
    return {
      config,
      launcher,
      cleanup: async () => {
        await kc.makeApiClient(CoreV1Api).deleteNamespace({ name: namespace }).catch(() => undefined);
      },
    };
  },
  { startMs: 90_000 },
);
