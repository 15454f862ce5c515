// RunnerLauncher adapter for a cluster: each runner is a batch/v1 Job.
//
// - restartPolicy Never and backoffLimit 0: the queue retries a sync, not the Job.
// - Names are chosen before the create call and reused when it is retried, so a create that
//   timed out but succeeded answers 409 on retry instead of launching a second runner.
// - What is running comes from one watch on the runner Jobs (shared/kube-watch.ts), never from
//   polling pods, so the scaler's request rate stays flat however many Jobs there are.
import { randomBytes } from 'node:crypto';
import { BatchV1Api, type KubeConfig, type V1Job, type V1ResourceRequirements } from '@kubernetes/client-node';
import { envName } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { backoffDelay, sleep } from '../shared/backoff.js';
import type { LaunchedRunner, RunnerLauncher, RunnerPhase } from '../shared/ports/runner-launcher.js';
import { isConflict, isNotFound, kubeErrorMessage, labelSelector } from '../shared/kube.js';
import { KubeWatch } from '../shared/kube-watch.js';
import { RUNNER_TLS_DIR } from '../shared/tls.js';
import { POD_IDENTITY, type SecretEnv } from './runner-env.js';

export interface KubernetesJobOptions {
  namespace: string;
  /** The tidepool image; the Job runs `tidepool runner --runner-id <job name>` in it. */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  serviceAccountName?: string;
  /** Settings for the runner, as TIDEPOOL_* variables (scaler/runner-env.ts). */
  env: Record<string, string>;
  /** Settings read from a Secret by secretKeyRef (the credentials): never a plain value in the Job. */
  secretEnv?: SecretEnv | undefined;
  /** Labels telling this installation's runners apart (e.g. its prefix). */
  selector: Record<string, string>;
  resources?: V1ResourceRequirements | undefined;
  nodeSelector?: Record<string, string> | undefined;
  /** The Job is ended after this long, whatever it is doing (a stuck runner). */
  activeDeadlineSeconds: number;
  /** Finished Jobs are deleted by Kubernetes after this long. */
  ttlSecondsAfterFinished: number;
  /** Prefix of Job names; the rest is unique per launch. */
  namePrefix: string;
  /** The runner's /metrics port (TIDEPOOL_METRICS_PORT): announced to Prometheus by the pods' scrape annotations. 0 or unset: none. */
  metricsPort?: number | undefined;
  /** A Secret with the TLS files, mounted at RUNNER_TLS_DIR, where `env`'s TLS file settings point (scaler/runner-env.ts). */
  tlsSecret?: string | undefined;
}

/** Set from the downward API in every runner pod; never copied from the scaler's settings. */
const POD_IDENTITY_ENV = POD_IDENTITY.map(envName);

export class KubernetesJobRunnerLauncher implements RunnerLauncher {
  readonly kind = 'kubernetes-job';
  private readonly batch: BatchV1Api;
  private readonly watch: KubeWatch<V1Job>;
  private readonly jobs = new Map<string, V1Job>();
  private readonly launchedAt = new Map<string, number>();
  private sequence = 0;
  private readonly instance = randomBytes(3).toString('hex');

  constructor(
    kc: KubeConfig,
    private readonly options: KubernetesJobOptions,
    private readonly logger: Logger,
  ) {
    this.batch = kc.makeApiClient(BatchV1Api);
    const { namespace } = options;
    const selector = labelSelector(options.selector);
    this.watch = new KubeWatch(
      kc,
      {
        what: 'job informer',
        path: `/apis/batch/v1/namespaces/${namespace}/jobs`,
        list: () => this.batch.listNamespacedJob({ namespace, labelSelector: selector }),
        labelSelector: selector,
        onChange: (job, deleted) => {
          const name = job.metadata?.name;
          if (!name) return;
          if (deleted) this.jobs.delete(name);
          else this.jobs.set(name, job);
        },
      },
      logger,
    );
  }

  /** Starts the informer and waits for its first list. */
  start(): Promise<void> {
    return this.watch.start();
  }

  async launch(count: number): Promise<string[]> {
    await this.start();
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      const name = `${this.options.namePrefix}-${Date.now().toString(36)}-${this.instance}-${this.sequence++}`.slice(0, 63);
      await this.createJob(name);
      this.launchedAt.set(name, Date.now());
      names.push(name);
    }
    return names;
  }

  private async createJob(name: string): Promise<void> {
    const body = this.jobManifest(name);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.batch.createNamespacedJob({ namespace: this.options.namespace, body });
        this.logger.info({ runnerId: name, namespace: this.options.namespace }, 'runner job created');
        return;
      } catch (err) {
        // 409: an earlier attempt did create it (its answer was lost). Same name, no duplicate.
        if (isConflict(err)) return;
        if (attempt >= 3) throw new Error(`cannot create runner job ${name}: ${kubeErrorMessage(err)}`, { cause: err });
        await sleep(backoffDelay(attempt, { baseMs: 250, factor: 2, capMs: 4000 }));
      }
    }
  }

  jobManifest(name: string): V1Job {
    const o = this.options;
    const labels = { ...o.selector, 'app.kubernetes.io/name': 'tidepool', 'app.kubernetes.io/component': 'runner', 'tidepool.io/runner': name };
    const metricsPort = o.metricsPort ?? 0;
    // The prometheus.io/* annotations Prometheus' kubernetes_sd pod role relabels on (the Helm chart's default scrape config).
    const annotations = metricsPort > 0 ? { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(metricsPort), 'prometheus.io/path': '/metrics' } : undefined;
    // Read-only for all: the pod's only user is the runner's (10001), not the files' owner (root).
    const tls = o.tlsSecret ? { name: 'tls', secret: { secretName: o.tlsSecret, defaultMode: 0o444 } } : undefined;
    return {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace: o.namespace, labels },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: o.activeDeadlineSeconds,
        ttlSecondsAfterFinished: o.ttlSecondsAfterFinished,
        template: {
          metadata: { labels, ...(annotations ? { annotations } : {}) },
          spec: {
            restartPolicy: 'Never',
            ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
            ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
            securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'runner',
                image: o.image,
                imagePullPolicy: o.imagePullPolicy ?? 'IfNotPresent',
                args: ['runner', '--runner-id', name],
                env: [
                  ...Object.entries(o.env)
                    .filter(([k]) => !POD_IDENTITY_ENV.includes(k))
                    .map(([k, v]) => ({ name: k, value: v })),
                  ...Object.entries(o.secretEnv ?? {}).map(([k, ref]) => ({ name: k, valueFrom: { secretKeyRef: { name: ref.secret, key: ref.key } } })),
                  { name: 'TIDEPOOL_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'TIDEPOOL_POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
                  { name: 'TIDEPOOL_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                ],
                ...(o.resources ? { resources: o.resources } : {}),
                ...(metricsPort > 0 ? { ports: [{ name: 'metrics', containerPort: metricsPort, protocol: 'TCP' }] } : {}),
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...(tls ? [{ name: tls.name, mountPath: RUNNER_TLS_DIR, readOnly: true }] : [])],
              },
            ],
            volumes: [{ name: 'tmp', emptyDir: {} }, ...(tls ? [tls] : [])],
          },
        },
      },
    };
  }

  list(): Promise<LaunchedRunner[]> {
    const out: LaunchedRunner[] = [];
    for (const [name, job] of this.jobs) out.push(describeJob(name, job, this.launchedAt.get(name)));
    // Launched moments ago and not yet seen by the watch: pending.
    for (const [name, at] of this.launchedAt) {
      if (!this.jobs.has(name) && Date.now() - at < 60_000) out.push({ runnerId: name, phase: 'pending', launchedAt: at });
    }
    return Promise.resolve(out);
  }

  close(): Promise<void> {
    return this.watch.stop();
  }

  /** Deletes every runner Job of this installation (tests, `down`). */
  async deleteAll(): Promise<void> {
    try {
      await this.batch.deleteCollectionNamespacedJob({ namespace: this.options.namespace, labelSelector: labelSelector(this.options.selector), propagationPolicy: 'Background' });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

export function describeJob(name: string, job: V1Job, launchedAt?: number): LaunchedRunner {
  const status = job.status ?? {};
  const conditions = status.conditions ?? [];
  const complete = conditions.find((c) => c.type === 'Complete' && c.status === 'True');
  const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
  let phase: RunnerPhase = 'pending';
  if (complete || failed || (status.succeeded ?? 0) > 0 || (status.failed ?? 0) > 0) phase = 'finished';
  else if ((status.ready ?? 0) > 0) phase = 'running';
  const created = job.metadata?.creationTimestamp ? new Date(job.metadata.creationTimestamp).getTime() : Date.now();
  return {
    runnerId: name,
    phase,
    launchedAt: launchedAt ?? created,
    ...(phase === 'finished' ? { exitCode: complete || (status.succeeded ?? 0) > 0 ? 0 : 1 } : {}),
    ...(failed?.reason ? { reason: failed.reason } : {}),
  };
}
