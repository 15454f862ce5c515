// One watch on a set of Kubernetes objects (an informer: a list, then a watch from its
// resourceVersion), for adapters that must know what their objects are doing without polling:
// Airbyte brought an API server down by polling pod statuses, while a watch keeps the request
// rate flat however many objects there are.
//
// The client restarts a watch that ends normally, but not one that fails (a list refused, the
// API server gone): it reports an error and stops. Restarting at once makes a restart storm
// (kubernetes-client issue 1933), so a failed watch is restarted here after a jittered backoff.
import { makeInformer, type Informer, type KubeConfig, type KubernetesObject, type ListPromise } from '@kubernetes/client-node';
import { backoffDelay, sleep, type BackoffOptions } from './backoff.js';
import { kubeErrorMessage } from './kube.js';
import type { Logger } from './logger.js';

/** Half a second after the first failure, doubling up to 30 s; back to the start once a restart succeeds. */
export const WATCH_RESTART_BACKOFF: BackoffOptions = { baseMs: 500, factor: 2, capMs: 30_000 };

/** What makes the informer: the client's makeInformer, or in tests one that needs no API server. */
export type InformerMaker = <T extends KubernetesObject>(kc: KubeConfig, path: string, list: ListPromise<T>, labelSelector?: string) => Informer<T>;

export interface KubeWatchOptions<T extends KubernetesObject> {
  /** What is watched, for the logs ("job informer", "connector pod watch"). */
  what: string;
  /** The collection's API path, e.g. /api/v1/namespaces/<namespace>/pods. */
  path: string;
  /** Lists the collection with the same label selector (the informer's first list and relists). */
  list: ListPromise<T>;
  labelSelector: string;
  /** Every object added, changed or deleted (`deleted`), as the informer sees it. */
  onChange: (object: T, deleted: boolean) => void;
}

export class KubeWatch<T extends KubernetesObject> {
  private informer: Informer<T> | undefined;
  private started: Promise<void> | undefined;
  private stopped = false;
  private restarts = 0;

  constructor(
    private readonly kc: KubeConfig,
    private readonly options: KubeWatchOptions<T>,
    private readonly logger: Logger,
    private readonly make: InformerMaker = makeInformer,
  ) {}

  /** Starts the watch on first call and waits for its first list; later calls wait for the same. */
  start(): Promise<void> {
    this.started ??= this.startInformer();
    return this.started;
  }

  private async startInformer(): Promise<void> {
    const { path, list, labelSelector, onChange, what } = this.options;
    const informer = this.make(this.kc, path, list, labelSelector);
    informer.on('add', (object) => onChange(object, false));
    informer.on('update', (object) => onChange(object, false));
    informer.on('delete', (object) => onChange(object, true));
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      const delay = backoffDelay(this.restarts++, WATCH_RESTART_BACKOFF);
      this.logger.warn({ err: kubeErrorMessage(err), retryInMs: delay }, `${what} stopped; restarting`);
      void sleep(delay).then(() => this.restart(informer));
    });
    this.informer = informer;
    await informer.start();
  }

  private async restart(informer: Informer<T>): Promise<void> {
    if (this.stopped) return;
    try {
      await informer.start();
      this.restarts = 0;
    } catch (err) {
      this.logger.warn({ err: kubeErrorMessage(err) }, `${this.options.what} restart failed`);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer?.stop();
  }
}
