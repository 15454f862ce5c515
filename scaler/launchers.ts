// Picks the RunnerLauncher and the leadership the configuration asks for, and compiles the
// configuration into their options: the settings each reads, in the units it takes.
import { imageName, parseNodeSelector, type Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { installationSelector, loadKubeConfig, resourceRequirements } from '../shared/kube.js';
import type { RunnerLauncher } from '../shared/ports/runner-launcher.js';
import { KubernetesJobRunnerLauncher, type KubernetesJobOptions } from './kubernetes-job.js';
import type { Leadership } from './leadership/leadership.js';
import { KubernetesLease } from './leadership/lease.js';
import { LocalProcessRunnerLauncher } from './local-process.js';
import { plainCredentialsProblem, runnerEnv, runnerSecretEnv } from './runner-env.js';

export interface RunnerLauncherChoice {
  launcher: RunnerLauncher;
  /** Undefined: the scaler's default (a Redis lock). */
  leadership?: (scalerId: string) => Leadership;
}

export async function createRunnerLauncher(config: Config, logger: Logger): Promise<RunnerLauncherChoice> {
  if (config.runnerLauncher === 'local') return { launcher: new LocalProcessRunnerLauncher(config, logger) };
  const problem = plainCredentialsProblem(config);
  if (problem) throw new Error(`cannot launch runner Jobs: ${problem}`);
  const kc = loadKubeConfig(config.kubeconfig || undefined);
  const launcher = new KubernetesJobRunnerLauncher(kc, kubernetesJobOptions(config), logger.child({ component: 'runner-jobs' }));
  await launcher.start();
  const lease = leaseOptions(config);
  return { launcher, leadership: (id) => new KubernetesLease(kc, lease.namespace, lease.name, id, lease.ttlMs) };
}

/** Runner Jobs of this installation, as the scaler launches them. */
export function kubernetesJobOptions(config: Config): KubernetesJobOptions {
  return {
    namespace: config.namespace,
    image: imageName(config, 'tidepool'),
    imagePullPolicy: config.imagePullPolicy,
    serviceAccountName: 'tidepool-runner',
    env: runnerEnv(config, 'pod'),
    secretEnv: runnerSecretEnv(config),
    selector: installationSelector(config),
    activeDeadlineSeconds: Math.ceil(config.runnerDeadline / 1000),
    resources: resourceRequirements({
      requests: { cpu: config.runnerCpuRequest, memory: config.runnerMemoryRequest },
      limits: { cpu: config.runnerCpuLimit, memory: config.runnerMemoryLimit },
    }),
    nodeSelector: parseNodeSelector(config.runnerNodeSelector),
    ttlSecondsAfterFinished: Math.ceil(config.runnerJobTtl / 1000),
    // Job names are DNS labels: the prefix may hold "." and "_", and leaves room for the rest.
    namePrefix: `${config.prefix.replace(/[^a-z0-9-]/g, '-').slice(0, 20)}-runner`,
    metricsPort: config.metricsPort,
    tlsSecret: config.runnerTlsSecret || undefined,
  };
}

/** The Lease the scaler replicas of this installation lead by. */
export function leaseOptions(config: Config): { namespace: string; name: string; ttlMs: number } {
  return { namespace: config.namespace, name: `${config.prefix}-scaler`, ttlMs: config.leaderTtl };
}
