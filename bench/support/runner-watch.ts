// Which runners a scaler launched and how long each lived, seen from the cluster whoever
// launched them: one watch on the runner Jobs and one on their pods in a namespace (both carry
// app.kubernetes.io/component=runner, tidepool's Jobs and a ScaledJob's alike). Times are when
// the watch saw a change, in ms: a pod's own timestamps have whole seconds only.
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { KubeWatch } from '../../shared/kube-watch.js';
import type { Logger } from '../../shared/logger.js';
import { describeJob } from '../../scaler/kubernetes-job.js';
import type { ObservedRunner } from './scaling-figures.js';

const RUNNER_SELECTOR = 'app.kubernetes.io/component=runner';

interface Runner extends ObservedRunner {
  /** When the watch first saw its Job, and its pod Running: how long the cluster took to start it. */
  jobSeenAt?: number;
  podRunningAt?: number;
  /** The Job says it finished (a Job may finish without a pod: its deadline passed first). */
  jobFinished: boolean;
  podFailed: boolean;
}

export class RunnerWatch {
  private readonly runners = new Map<string, Runner>();
  private readonly watches: [KubeWatch<V1Job>, KubeWatch<V1Pod>];
  private peak = 0;
  /** Lists the watches made (their first and any relist): the bench's own API requests. */
  lists = 0;

  constructor(kc: KubeConfig, namespace: string, logger: Logger) {
    const batch = kc.makeApiClient(BatchV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    const counted = <T>(list: () => Promise<T>) => () => {
      this.lists++;
      return list();
    };
    this.watches = [
      new KubeWatch<V1Job>(kc, {
        what: 'bench runner Job watch',
        path: `/apis/batch/v1/namespaces/${namespace}/jobs`,
        list: counted(() => batch.listNamespacedJob({ namespace, labelSelector: RUNNER_SELECTOR })),
        labelSelector: RUNNER_SELECTOR,
        onChange: (job) => this.onJob(job),
      }, logger),
      new KubeWatch<V1Pod>(kc, {
        what: 'bench runner pod watch',
        path: `/api/v1/namespaces/${namespace}/pods`,
        list: counted(() => core.listNamespacedPod({ namespace, labelSelector: RUNNER_SELECTOR })),
        labelSelector: RUNNER_SELECTOR,
        onChange: (pod, deleted) => this.onPod(pod, deleted),
      }, logger),
    ];
  }

  async start(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.stop()));
  }

  private runner(job: string): Runner {
    let r = this.runners.get(job);
    if (!r) {
      r = { job, jobFinished: false, podFailed: false };
      this.runners.set(job, r);
    }
    return r;
  }

  private onJob(job: V1Job): void {
    const name = job.metadata?.name;
    if (!name) return;
    const r = this.runner(name);
    r.jobSeenAt ??= Date.now();
    r.jobFinished ||= describeJob(name, job).phase === 'finished';
  }

  private onPod(pod: V1Pod, deleted: boolean): void {
    const name = pod.metadata?.name;
    const job = pod.metadata?.labels?.['job-name'];
    if (!name || !job) return;
    const now = Date.now();
    const r = this.runner(job);
    r.pod ??= name;
    r.podCreatedAt ??= now;
    const phase = pod.status?.phase;
    if (phase === 'Running') r.podRunningAt ??= now;
    if (deleted || phase === 'Succeeded' || phase === 'Failed') r.podEndedAt ??= now;
    r.podFailed ||= phase === 'Failed';
    this.peak = Math.max(this.peak, this.alive());
  }

  /** Runners whose pod has not ended (pending, starting or running). */
  alive(): number {
    return [...this.runners.values()].filter((r) => !this.ended(r)).length;
  }

  private ended(r: Runner): boolean {
    return r.podEndedAt !== undefined || (r.podCreatedAt === undefined && r.jobFinished);
  }

  /** Every runner launched so far has exited. */
  allEnded(): boolean {
    return [...this.runners.values()].every((r) => this.ended(r));
  }

  get launched(): number {
    return this.runners.size;
  }

  /** Runners at once, at most. */
  get peakRunners(): number {
    return this.peak;
  }

  /** Pods whose runner failed (exit code ≠ 0, deadline): a runner image that refuses its settings fails them all. */
  failedPods(): string[] {
    return [...this.runners.values()].flatMap((r) => (r.podFailed && r.pod ? [r.pod] : []));
  }

  /** Job seen → pod Running, in ms, for each runner that got that far. */
  startTimes(): number[] {
    return [...this.runners.values()].flatMap((r) => (r.jobSeenAt !== undefined && r.podRunningAt !== undefined ? [r.podRunningAt - r.jobSeenAt] : []));
  }

  observed(): ObservedRunner[] {
    return [...this.runners.values()].map(({ job, pod, podCreatedAt, podEndedAt }) => ({ job, pod, podCreatedAt, podEndedAt }));
  }
}
