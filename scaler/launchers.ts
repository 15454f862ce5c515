// Picks the RunnerLauncher and the leadership the configuration asks for.
import { parseNodeSelector, type Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { installationSelector, loadKubeConfig, resourceRequirements } from '../shared/kube.js';
import type { RunnerLauncher } from '../shared/ports/runner-launcher.js';
import { KubernetesJobRunnerLauncher } from './kubernetes-job.js';
import type { Leadership } from './leadership/leadership.js';
import { KubernetesLease } from './leadership/lease.js';
import { LocalProcessRunnerLauncher, configEnv } from './local-process.js';

export interface RunnerLauncherChoice {
  launcher: RunnerLauncher;
  /** Undefined: the scaler's default (a Redis lock). */
  leadership?: (scalerId: string) => Leadership;
}

export async function createRunnerLauncher(config: Config, logger: Logger): Promise<RunnerLauncherChoice> {
  if (config.runnerLauncher === 'local') return { launcher: new LocalProcessRunnerLauncher(config, logger) };
  const kc = loadKubeConfig(config.kubeconfig || undefined);
  // The runner pods get the scaler's own settings, minus those that describe the scaler's pod.
  const own = new Set(['TIDEPOOL_POD_NAME', 'TIDEPOOL_POD_UID', 'TIDEPOOL_POD_IP', 'TIDEPOOL_ADVERTISE_ADDRESS', 'TIDEPOOL_KUBECONFIG']);
  const env = Object.fromEntries(Object.entries(configEnv(config)).filter(([key]) => !own.has(key)));
  const launcher = new KubernetesJobRunnerLauncher(
    kc,
    {
      namespace: config.namespace,
      image: `${config.imagePrefix}tidepool:${config.imageTag}`,
      imagePullPolicy: config.imagePullPolicy,
      serviceAccountName: 'tidepool-runner',
      env,
      selector: installationSelector(config),
      activeDeadlineSeconds: Math.ceil(config.runnerDeadline / 1000),
      resources: resourceRequirements({
        requests: { cpu: config.runnerCpuRequest, memory: config.runnerMemoryRequest },
        limits: { cpu: config.runnerCpuLimit, memory: config.runnerMemoryLimit },
      }),
      nodeSelector: parseNodeSelector(config.runnerNodeSelector),
      ttlSecondsAfterFinished: Math.ceil(config.runnerJobTtl / 1000),
      namePrefix: `${config.prefix.replace(/[^a-z0-9-]/g, '-').slice(0, 20)}-runner`,
      metricsPort: config.metricsPort,
    },
    logger.child({ component: 'runner-jobs' }),
  );
  await launcher.start();
  return { launcher, leadership: (id) => new KubernetesLease(kc, config.namespace, `${config.prefix}-scaler`, id, config.leaderTtl) };
}
