// KEDA's ScaledJob beside tidepool's scaler (scripts/keda runs the operator): a ScaledJob whose
// Job is the runner Job tidepool launches, built by the same code (KubernetesJobRunnerLauncher's
// jobManifest) rather than copied, so the two scalers launch the same runner with the same
// image, settings, ServiceAccount and Secret references. Only what KEDA must own differs:
// the Job's name (KEDA picks it, so the runner takes its pod's name as its id) and the
// per-runner label.
import { CustomObjectsApi, type KubeConfig, type KubernetesObject, type V1Job, type V1JobSpec } from '@kubernetes/client-node';
import type { KubernetesJobRunnerLauncher } from '../../scaler/kubernetes-job.js';
import type { KedaModelOptions, KedaStrategy } from './scaler-models.js';
import { waitFor } from './wait.js';

export type KedaTriggerMode = KedaModelOptions['mode'];

/** The readiness endpoint scripts/keda gives the operator (TIDEPOOL_KEDA_PROBE_PORT). */
export const KEDA_READY_URL = `http://127.0.0.1:${process.env.TIDEPOOL_KEDA_PROBE_PORT || '18081'}/readyz`;

/** The label KEDA puts on every Job of a ScaledJob. */
export const SCALED_JOB_LABEL = 'scaledjob.keda.sh/name';

/** Filled in by the kubelet from the pod's TIDEPOOL_POD_NAME (downward API): unique per runner. */
const RUNNER_ID_FROM_POD = '$(TIDEPOOL_POD_NAME)';
/**
 * The runner id tidepool's own Job manifest is built with: KEDA names each Job itself, so this
 * id is swapped for the pod's name (RUNNER_ID_FROM_POD) and must appear nowhere else.
 */
const TEMPLATE_RUNNER_ID = 'keda-runner';

export interface ScaledJobOptions {
  name: string;
  namespace: string;
  strategy: KedaStrategy;
  mode: KedaTriggerMode;
  /** Seconds between KEDA's looks at the queue (KEDA's default is 30). */
  pollingIntervalS: number;
  maxReplicaCount: number;
  /** Messages per Job: the runners' concurrency. */
  value: number;
  /** The syncs queue the runners consume (topologyFor(prefix).syncsQueue). */
  queueName: string;
  /** A TriggerAuthentication whose `host` is the broker as the operator reaches it (kedaTriggerAuth). */
  authenticationRef: string;
}

/**
 * The JobSpec of `launcher`'s runner Job, for a ScaledJob's jobTargetRef: the runner is told
 * its pod's name as its id, and the label naming one runner is dropped (KEDA's Jobs share one
 * template). Also the labels the Job carries, for the ScaledJob's own metadata: KEDA copies
 * those onto each Job, so tidepool's Job informer and selectors still find them.
 */
export function runnerJobTemplate(launcher: KubernetesJobRunnerLauncher): { spec: V1JobSpec; labels: Record<string, string> } {
  const job: V1Job = launcher.jobManifest(TEMPLATE_RUNNER_ID);
  const spec = job.spec;
  const pod = spec?.template.spec;
  if (!spec || !pod) throw new Error('the runner Job has no pod template');
  const unnamed = (labels: Record<string, string> | undefined) => Object.fromEntries(Object.entries(labels ?? {}).filter(([k]) => k !== 'tidepool.io/runner'));
  for (const container of pod.containers) {
    if (container.args) container.args = container.args.map((a) => (a === TEMPLATE_RUNNER_ID ? RUNNER_ID_FROM_POD : a));
    if (!container.env?.some((e) => e.name === 'TIDEPOOL_POD_NAME')) throw new Error('the runner Job does not give the runner its pod name');
  }
  if (JSON.stringify(pod).includes(TEMPLATE_RUNNER_ID)) throw new Error('the runner Job uses its name somewhere other than --runner-id');
  spec.template.metadata = spec.template.metadata ?? {};
  spec.template.metadata.labels = unnamed(spec.template.metadata.labels);
  return { spec, labels: unnamed(job.metadata?.labels) };
}

/** A ScaledJob launching `launcher`'s runner Jobs on the syncs queue's depth. */
export function scaledJob(launcher: KubernetesJobRunnerLauncher, o: ScaledJobOptions): KubernetesObject & { spec: Record<string, unknown> } {
  const { spec, labels } = runnerJobTemplate(launcher);
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledJob',
    metadata: { name: o.name, namespace: o.namespace, labels },
    spec: {
      jobTargetRef: spec,
      pollingInterval: o.pollingIntervalS,
      maxReplicaCount: o.maxReplicaCount,
      // Finished Jobs go with the Job's own ttlSecondsAfterFinished, as tidepool's do.
      successfulJobsHistoryLimit: 100,
      failedJobsHistoryLimit: 100,
      scalingStrategy: { strategy: o.strategy },
      triggers: [
        {
          type: 'rabbitmq',
          // amqp: a passive declare's message count (ready only); http: the management API's
          // queue (ready + unacked) — the two modes the comparison is about.
          metadata: { protocol: o.mode, queueName: o.queueName, mode: 'QueueLength', value: String(o.value) },
          authenticationRef: { name: o.authenticationRef },
        },
      ],
    },
  };
}

/**
 * Where the operator reaches the broker, for the trigger's `host`: in amqp mode the AMQP URL as
 * is; in http mode the management API (scripts/keda enables it on loopback) with the same user
 * and the URL's vhost.
 */
export function kedaHost(amqpUrl: string, mode: KedaTriggerMode, managementPort = Number(process.env.TIDEPOOL_RABBITMQ_MANAGEMENT_PORT || 15672)): string {
  if (mode === 'amqp') return amqpUrl;
  const u = new URL(amqpUrl);
  const http = new URL(`http://${u.hostname}:${managementPort}/`);
  http.username = u.username;
  http.password = u.password;
  const vhost = decodeURIComponent(u.pathname.slice(1));
  http.pathname = vhost ? `/${encodeURIComponent(vhost)}` : '/';
  return http.toString();
}

/** The Secret holding the trigger's `host` (a URL with the password) and the TriggerAuthentication reading it. */
export function kedaTriggerAuth(name: string, namespace: string, host: string): KubernetesObject[] {
  return [
    { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', stringData: { host } } as KubernetesObject,
    {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'TriggerAuthentication',
      metadata: { name, namespace },
      spec: { secretTargetRef: [{ parameter: 'host', name, key: 'host' }] },
    } as KubernetesObject,
  ];
}

/** Throws unless the operator of scripts/keda answers its readiness probe. */
export async function kedaRunning(): Promise<void> {
  const answer = await fetch(KEDA_READY_URL, { signal: AbortSignal.timeout(3000) }).then(
    (r) => (r.ok ? '' : `HTTP ${r.status}`),
    (err: unknown) => (err as Error).message,
  );
  if (answer) throw new Error(`KEDA is not running (${KEDA_READY_URL}: ${answer}): run scripts/keda up`);
}

const SCALED_JOBS = { group: 'keda.sh', version: 'v1alpha1', plural: 'scaledjobs' } as const;

/**
 * Waits until KEDA has taken the ScaledJob up (its Ready condition): before, it launches
 * nothing. Ready False (no queue, a bad trigger) throws with KEDA's message.
 */
export async function waitScaledJobReady(kc: KubeConfig, namespace: string, name: string, timeoutMs = 60_000): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  await waitFor('KEDA to report the ScaledJob Ready', async () => {
    const sj = (await custom.getNamespacedCustomObject({ ...SCALED_JOBS, namespace, name })) as {
      status?: { conditions?: { type: string; status: string; message?: string }[] };
    };
    const ready = sj.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status === 'False') throw new Error(ready.message ?? 'Ready is False');
    return ready?.status === 'True';
  }, timeoutMs, 250);
}

/** Deletes a ScaledJob: KEDA stops launching for it (its Jobs stay until their namespace goes). */
export async function deleteScaledJob(kc: KubeConfig, namespace: string, name: string): Promise<void> {
  await kc.makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ ...SCALED_JOBS, namespace, name });
}
