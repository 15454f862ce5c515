// ConnectorLauncher adapter for a cluster: one pod per connector run, which carries the
// connector's stdio to the runner's stream server in one of two ways (pod-scripts.ts):
//
//   direct   (default) one container: bash dials the runner per stream (hello + token), runs
//            the connector with the sockets as its stdin, stdout and stderr, runs the heartbeat
//            that ends the pod when the runner stops answering, and reports the connector's
//            exit code the moment it ends. Needs bash in the connector's image.
//   sidecar  two containers, for images with sh only: `streams` makes named pipes in an
//            emptyDir, carries them over one socat connection each, runs the heartbeat and ends
//            once stdout and stderr are delivered; `connector` runs the entrypoint on the pipes.
//
// Every container costs the kubelet a create, a start, events and status updates, one at a
// time: five or six per pod (an init container for the pipes, one sidecar per stream) were most
// of a pod's API requests and start; direct has one, and no copy between the connector and the
// socket. The sidecar is a plain container listed first, not a native sidecar (an init
// container with restartPolicy Always): the kubelet starts a native sidecar, waits to see it
// running (its next status pass, up to a second later) and only then starts the connector —
// measured here, ~1 s later. Plain containers start in their order in one pass; the connector's
// script waits for the pipes in the rare case it wins the race.
//
// Config, catalog and state reach the pod as a per-run Secret named like the pod (the admission
// policy in k8s/base admits no other), deleted with the pod; so do the stream token and the
// connector's env, which the containers take through secretKeyRef: no credential is a plain
// value in the pod spec, which anyone with `get pods` reads. In the runner's own namespace the
// pod is owned by the runner's pod (garbage-collected with it); in a connector namespace of
// its own it cannot be (see `owner`). It has activeDeadlineSeconds, shares one
// process namespace (so the heartbeat can end it), runs non-root with a read-only root
// filesystem, no capabilities and no service-account token. Exit codes and OOMKilled / Evicted /
// DeadlineExceeded come from container statuses, read through one watch (an informer) per
// runner — never by polling.
import { createHash } from 'node:crypto';
import { CoreV1Api, type KubeConfig, type V1Pod, type V1Secret } from '@kubernetes/client-node';
import { plainEnv, type ConnectorStdio } from '../../shared/connections.js';
import type { Logger } from '../../shared/logger.js';
import { ConnectorError } from '../../shared/errors.js';
import { isNotFound, kubeErrorMessage, labelSelector, resourceRequirements, statusCode, type ResourceSettings } from '../../shared/kube.js';
import type { ConnectorExit, ConnectorLauncher, ConnectorProcess, ConnectorRun, ConnectorStartup } from '../../shared/ports/connector-launcher.js';
import { sleep } from '../../shared/backoff.js';
import { KubeWatch } from '../../shared/kube-watch.js';
import { connectorScript, directScript, sidecarScript } from './pod-scripts.js';
import type { StreamServer } from './stream-server.js';

export interface KubernetesPodOptions {
  namespace: string;
  /** Bound of the connector's /tmp (a Kubernetes quantity); CONNECTOR_TMP_SIZE_LIMIT when unset. */
  tmpSizeLimit?: string | undefined;
  runnerId: string;
  server: StreamServer;
  /** Address connector pods dial to reach `server`. */
  advertiseAddress: string;
  /** socat + shell image of the streams sidecar. */
  sidecarImage: string;
  /** How pods carry stdio when the connector does not say (ConnectorStdio). */
  stdio: ConnectorStdio;
  /** Image of a reference connector by name. */
  builtinImage: (name: string) => string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /**
   * The runner's own pod, when it runs in one in `namespace`: connector pods are owned by it.
   * Never set across namespaces: the garbage collector takes an owner in another namespace for
   * absent and deletes the dependent at once. There the `tidepool.io/runner` label, the
   * heartbeat sidecar and `sweepOrphans` take the owner's place.
   */
  owner?: { name: string; uid: string };
  activeDeadlineSeconds: number;
  /** Labels of this installation (its prefix), added to every pod and secret. */
  selector: Record<string, string>;
  /** How long a pod may wait for its image or to be scheduled before the run fails. */
  startTimeoutMs?: number;
  /** The connector container's resources, unless a connector overrides them. */
  resources?: ResourceSettings | undefined;
  nodeSelector?: Record<string, string> | undefined;
}

/** Container waiting reasons that will not resolve by themselves. */
const FATAL_WAITING = new Set(['ErrImageNeverPull', 'ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'CreateContainerConfigError', 'CreateContainerError']);
/** Of those, the ones that mean the pod's containers never ran. */
const NEVER_STARTED = new Set(['ErrImageNeverPull', 'ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'CreateContainerConfigError']);

const PIPES = '/pipes';
/** The one sidecar: pipes, streams and heartbeat. */
export const STREAMS_CONTAINER = 'streams';

/** Keys of the per-run Secret besides the files: the stream token, the connector's env values by position (env names need not be Secret keys). */
const TOKEN_KEY = 'token';
const envKey = (i: number) => `env.${i}`;

/**
 * Bound of the connector's /tmp, its only writable place (the root filesystem is read-only).
 * Without one, a connector that writes without end (a bug, or a hostile image) fills the node's
 * disk and the kubelet evicts other pods; with it, only this pod is evicted and the run fails
 * saying Evicted. 1Gi leaves room for what connectors spool there (a downloaded file, a
 * destination's batch) by default; `connectorTmpSizeLimit` sets it for connectors that need more.
 * Pipes hold no data at rest: their emptyDir is 1Mi of memory.
 */
export const CONNECTOR_TMP_SIZE_LIMIT = '1Gi';

interface Tracked {
  resolve: (exit: ConnectorExit) => void;
  done: boolean;
  /** The pod's start steps as the watch sees them. */
  startup: ConnectorStartup;
  /** The connector's image as the kubelet resolved it, once the watch has seen it. */
  image?: string;
}

export class KubernetesPodConnectorLauncher implements ConnectorLauncher {
  readonly kind = 'kubernetes';
  private readonly core: CoreV1Api;
  private readonly pods: KubeWatch<V1Pod>;
  private readonly tracked = new Map<string, Tracked>();

  constructor(
    kc: KubeConfig,
    private readonly options: KubernetesPodOptions,
    private readonly logger: Logger,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    const { namespace } = options;
    const selector = this.runnerSelector();
    this.pods = new KubeWatch(
      kc,
      {
        what: 'connector pod watch',
        path: `/api/v1/namespaces/${namespace}/pods`,
        list: () => this.core.listNamespacedPod({ namespace, labelSelector: selector }),
        labelSelector: selector,
        onChange: (pod, deleted) => this.observe(pod, deleted),
      },
      logger,
    );
  }

  private runnerSelector(): string {
    return labelSelector({ ...this.options.selector, 'app.kubernetes.io/component': 'connector', 'tidepool.io/runner': this.options.runnerId });
  }

  /** One watch on this runner's connector pods; started on first use. */
  watch(): Promise<void> {
    return this.pods.start();
  }

  async start(run: ConnectorRun): Promise<ConnectorProcess> {
    await this.watch();
    const { namespace, server } = this.options;
    const name = podName(run);
    const session = server.open();
    const labels = this.labels(run);
    const secret = this.secretManifest(run, name, session.token, labels);
    const startup: ConnectorStartup = { launchedAt: Date.now() };
    const fromPod = new Promise<ConnectorExit>((resolve) => this.tracked.set(name, { resolve, done: false, startup }));
    // A direct-stdio pod reports its connector's exit code itself, as it happens: a clean exit
    // ends the wait there. Any other code waits for the kubelet's status, which says why
    // (OOMKilled, Evicted, DeadlineExceeded), as does a sidecar pod, which reports nothing.
    const exit = Promise.race([fromPod, session.reportedExit.then((code) => (code === 0 ? this.exitedCleanly(name) : fromPod))]);
    // The pod's stdout connection is up: the connector's output can reach the runner. It comes
    // from the pod, so the pod was scheduled; with direct stdio from the connector's own
    // container, so that was running. The watch may never see those steps of a connector that
    // ends before the kubelet's next status pass: the run ends on the pod's own exit report.
    const direct = this.isDirect(run);
    void session.connected.stdout.then(() => {
      const now = Date.now();
      startup.connectedAt = now;
      startup.scheduledAt ??= now;
      if (direct) startup.startedAt ??= now;
    });
    try {
      await this.core.createNamespacedSecret({ namespace, body: secret });
      await this.core.createNamespacedPod({ namespace, body: this.podManifest(run, name, labels) });
    } catch (err) {
      this.tracked.delete(name);
      server.close(session);
      await this.cleanup(name);
      // 422: a pod spec the cluster will never accept (bad resources, image name...) is the
      // connection's configuration at fault, not worth a retry. Anything else may pass.
      const invalid = statusCode(err) === 422;
      throw new ConnectorError(`cannot create connector pod ${name}: ${kubeErrorMessage(err)}`, run.role, !invalid, invalid ? 'config_error' : 'system_error');
    }
    this.logger.debug({ pod: name, runId: run.runId }, 'connector pod created');

    // After the connector ends: let the sidecars deliver the last bytes, then drop the
    // session (which ends stdout/stderr if a sidecar never came), delete the pod and secret.
    // A killed or failed pod is dropped at once: its network namespace is gone, so no FIN
    // will ever arrive. After a clean exit what is left is at most a pipe and a socket buffer;
    // the bound only guards against a sidecar that never connected.
    const finished = exit.then(async (e) => {
      if (e.code !== null) {
        const drained = Promise.all([ended(session.stdout), ended(session.stderr)]);
        await Promise.race([drained, sleep(60_000)]);
      }
      server.close(session);
      await this.cleanup(name);
      this.tracked.delete(name);
      return e;
    });

    return {
      stdin: session.stdin,
      stdout: session.stdout,
      stderr: session.stderr,
      exit: finished,
      startup,
      kill: () => {
        void this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
      },
    };
  }

  private labels(run: ConnectorRun): Record<string, string> {
    return {
      ...this.options.selector,
      'app.kubernetes.io/name': 'tidepool',
      'app.kubernetes.io/component': 'connector',
      'tidepool.io/runner': this.options.runnerId,
      'tidepool.io/role': run.role,
    };
  }

  private ownerReferences() {
    const owner = this.options.owner;
    return owner ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: owner.name, uid: owner.uid, blockOwnerDeletion: false }] } : {};
  }

  /**
   * The run's own Secret: its files (`<name>.json`, mounted at /config), the stream token
   * (`token`) and the connector's env values (`env.<i>`), each read by secretKeyRef.
   */
  secretManifest(run: ConnectorRun, name: string, token: string, labels: Record<string, string>): V1Secret {
    const files = Object.entries(run.files).flatMap(([k, v]): Array<[string, string]> => (v === undefined ? [] : [[`${k}.json`, JSON.stringify(v)]]));
    const env = Object.values(plainEnv(run.connector)).map((v, i): [string, string] => [envKey(i), v]);
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: this.options.namespace, labels, ...this.ownerReferences() },
      type: 'Opaque',
      // Never changed after creation, and saying so spares the API server: the kubelet ends its
      // watch on an immutable Secret once it has read it, instead of holding one open for the
      // pod's life (the watch request itself is still made: it is not fewer requests).
      immutable: true,
      stringData: Object.fromEntries([...files, [TOKEN_KEY, token], ...env]),
    };
  }

  podManifest(run: ConnectorRun, name: string, labels: Record<string, string>): V1Pod {
    const o = this.options;
    const fromSecret = (key: string) => ({ valueFrom: { secretKeyRef: { name, key } } });
    const image = connectorImage(run, o.builtinImage);
    const resources = resourceRequirements(o.resources, run.connector.resources);
    const readsStdin = run.command === 'write';
    const files = Object.entries(run.files).flatMap(([k, v]) => (v === undefined ? [] : [k]));
    const fileArgs = files.flatMap((k) => [`--${k}`, `/config/${k}.json`]);
    const locked = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
    const runnerEnv = [
      { name: 'TIDEPOOL_RUNNER_HOST', value: o.advertiseAddress },
      { name: 'TIDEPOOL_RUNNER_PORT', value: String(o.server.port) },
      { name: 'TIDEPOOL_TOKEN', ...fromSecret(TOKEN_KEY) },
    ];
    const connectorEnv = Object.keys(plainEnv(run.connector)).map((k, i) => ({ name: k, ...fromSecret(envKey(i)) }));
    const connectorMounts = [
      { name: 'config', mountPath: '/config', readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
    ];
    const connector = { name: 'connector', image, imagePullPolicy: o.imagePullPolicy, securityContext: locked, ...(resources ? { resources } : {}) };
    const direct = this.isDirect(run);
    const containers = direct
      ? [
          {
            ...connector,
            command: ['bash', '-c', directScript(readsStdin), 'bash', run.command, ...fileArgs],
            // The runner's address and token first: a connector env var of the same name cannot displace them.
            env: [...runnerEnv, ...connectorEnv],
            volumeMounts: connectorMounts,
          },
        ]
      : [
          // The sidecar first: the kubelet starts a pod's containers in this order, in one pass.
          {
            name: STREAMS_CONTAINER,
            image: o.sidecarImage,
            imagePullPolicy: o.imagePullPolicy,
            command: ['sh', '-c', sidecarScript(readsStdin)],
            env: [{ name: 'PIPES', value: PIPES }, ...runnerEnv],
            securityContext: locked,
            volumeMounts: [{ name: 'pipes', mountPath: PIPES }],
            resources: { requests: { cpu: '10m', memory: '8Mi' }, limits: { memory: '64Mi' } },
          },
          {
            ...connector,
            command: ['sh', '-c', connectorScript(readsStdin), 'sh', run.command, ...fileArgs],
            env: [{ name: 'PIPES', value: PIPES }, ...connectorEnv],
            volumeMounts: [{ name: 'pipes', mountPath: PIPES }, ...connectorMounts],
          },
        ];
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: o.namespace, labels, annotations: { 'tidepool.io/run-id': run.runId }, ...this.ownerReferences() },
      spec: {
        restartPolicy: 'Never',
        activeDeadlineSeconds: o.activeDeadlineSeconds + (run.role === 'destination' ? DESTINATION_DRAIN_SECONDS : 0),
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        shareProcessNamespace: true,
        ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
        terminationGracePeriodSeconds: 5,
        securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
        containers,
        volumes: [
          ...(direct ? [] : [{ name: 'pipes', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }]),
          // Only the files (none: an empty directory): the token and env values are the
          // containers' environment, not files of the connector's.
          files.length > 0
            ? { name: 'config', secret: { secretName: name, defaultMode: 0o440, items: files.map((k) => ({ key: `${k}.json`, path: `${k}.json` })) } }
            : { name: 'config', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
          { name: 'tmp', emptyDir: { sizeLimit: this.options.tmpSizeLimit ?? CONNECTOR_TMP_SIZE_LIMIT } },
        ],
      },
    };
  }

  /** Whether this connector's pod carries its stdio directly (one container) or by the sidecar. */
  private isDirect(run: ConnectorRun): boolean {
    return (run.connector.stdio ?? this.options.stdio) === 'direct';
  }

  /** The exit the pod reported, 0: what the watch learnt of the pod goes with it. */
  private exitedCleanly(name: string): ConnectorExit {
    const t = this.tracked.get(name);
    if (t) t.done = true;
    return { code: 0, signal: null, ...(t?.image ? { image: t.image } : {}) };
  }

  /** Turns a pod status into the connector's exit, once there is one. */
  private observe(pod: V1Pod, deleted: boolean): void {
    const name = pod.metadata?.name;
    const t = name ? this.tracked.get(name) : undefined;
    if (!name || !t || t.done) return;
    noteStartSteps(pod, t.startup);
    const imageId = pod.status?.containerStatuses?.find((c) => c.name === 'connector')?.imageID;
    if (imageId) t.image = imageId;
    const exit = connectorExit(pod, deleted, Date.now() - t.startup.launchedAt, this.options.startTimeoutMs ?? 120_000);
    if (!exit) return;
    t.done = true;
    if (exit.reason && !deleted && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
      // Stuck (an image that will never come): end the pod, the run fails with the reason.
      void this.core.deleteNamespacedPod({ name, namespace: this.options.namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
    }
    t.resolve(exit);
  }

  private async cleanup(name: string): Promise<void> {
    const { namespace } = this.options;
    await Promise.all([
      this.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 }).catch((err: unknown) => {
        if (!isNotFound(err)) this.logger.warn({ pod: name, err: kubeErrorMessage(err) }, 'could not delete connector pod');
      }),
      this.core.deleteNamespacedSecret({ name, namespace }).catch((err: unknown) => {
        if (!isNotFound(err)) this.logger.warn({ secret: name, err: kubeErrorMessage(err) }, 'could not delete connector secret');
      }),
    ]);
  }

  /**
   * Deletes connector pods (and their secrets) left by runners that are gone; called at runner
   * start. Order matters: pods are listed *before* the live runners are read, so a runner that
   * heartbeats and creates a pod meanwhile is seen alive (the other order deleted a live
   * runner's pod when several runners started at once). Young pods are left alone as well.
   */
  async sweepOrphans(aliveRunners: () => Promise<ReadonlySet<string>>, minAgeMs = 60_000): Promise<number> {
    const { namespace } = this.options;
    const pods = await this.core.listNamespacedPod({ namespace, labelSelector: labelSelector({ ...this.options.selector, 'app.kubernetes.io/component': 'connector' }) });
    const alive = await aliveRunners();
    let swept = 0;
    for (const pod of pods.items) {
      const runner = pod.metadata?.labels?.['tidepool.io/runner'];
      const name = pod.metadata?.name;
      const created = pod.metadata?.creationTimestamp ? new Date(pod.metadata.creationTimestamp).getTime() : 0;
      if (!name || !runner || alive.has(runner) || runner === this.options.runnerId || Date.now() - created < minAgeMs) continue;
      await this.cleanup(name);
      swept++;
    }
    if (swept > 0) this.logger.info({ swept }, 'deleted connector pods of runners that are gone');
    return swept;
  }

  close(): Promise<void> {
    return this.pods.stop();
  }
}

/**
 * The destination starts first and must outlive its source: after the source's last record it
 * still writes, commits and echoes STATE. With equal deadlines a source that runs out its time
 * took the destination down in the same second, and which pod the platform reported first
 * decided whether the sync blamed the source (the one at fault) or the destination.
 */
export const DESTINATION_DRAIN_SECONDS = 60;

export function connectorImage(run: Pick<ConnectorRun, 'connector' | 'role'>, builtinImage: (name: string) => string): string {
  const { connector } = run;
  if (connector.image) return connector.image;
  if (connector.connector) return builtinImage(connector.connector);
  throw ConnectorError.of({ kind: 'not_started' }, `${run.role} is given as a command, which cannot run in a pod: give it an image`, run.role);
}

/** A DNS-1123 name unique per connector run: the run id is long, so it is hashed. */
export function podName(run: ConnectorRun): string {
  const hash = createHash('sha256').update(run.runId).digest('hex').slice(0, 20);
  return `tp-${run.role === 'source' ? 'src' : 'dst'}-${hash}`;
}

/** The connector's exit from its pod's status, or undefined while it is still running. */
/**
 * The start steps a pod status shows, stamped when the watch first sees them: the conditions'
 * own times have one-second resolution, too coarse for starts of a few seconds.
 */
export function noteStartSteps(pod: V1Pod, startup: ConnectorStartup, now = Date.now()): void {
  const status = pod.status;
  if (startup.scheduledAt === undefined && status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'True')) startup.scheduledAt = now;
  const connector = status?.containerStatuses?.find((c) => c.name === 'connector');
  if (startup.startedAt === undefined && (connector?.state?.running || connector?.state?.terminated)) startup.startedAt = now;
}

export function connectorExit(pod: V1Pod, deleted: boolean, ageMs: number, startTimeoutMs: number): ConnectorExit | undefined {
  const status = pod.status ?? {};
  const main = status.containerStatuses?.find((c) => c.name === 'connector');
  const terminated = main?.state?.terminated;
  // Evicted, DeadlineExceeded...: the kubelet marks the pod Failed, then stops its containers
  // (the connector then exits 143, which alone would hide why).
  const podFailure = status.phase === 'Failed' ? `pod failed: ${status.reason ?? 'unknown'}${status.message ? ` (${status.message})` : ''}` : undefined;
  if (terminated?.reason === 'StartError') return startError(pod, terminated.message ?? '');
  if (terminated) {
    const own = terminated.reason && terminated.reason !== 'Completed' && terminated.reason !== 'Error' ? terminated.reason : undefined;
    const reason = [own, status.reason ? podFailure : undefined].filter(Boolean).join('; ');
    return { code: terminated.exitCode, signal: null, ...(reason ? { reason } : {}), ...(main.imageID ? { image: main.imageID } : {}) };
  }
  if (podFailure) return { code: null, signal: null, reason: podFailure };
  if (deleted) return { code: null, signal: 'SIGKILL', reason: 'pod deleted' };
  const waiting = [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])].map((c) => c.state?.waiting).find((w) => w?.reason && FATAL_WAITING.has(w.reason) && !transientWaiting(w.message));
  if (waiting) {
    const reason = `${waiting.reason ?? ''}: ${waiting.message ?? ''}`.trim();
    // An image that cannot be had or a container the kubelet cannot even configure never ran:
    // a configuration error, not a crash to retry.
    return { code: null, signal: null, reason, ...(NEVER_STARTED.has(waiting.reason ?? '') ? { notStarted: true } : {}) };
  }
  if (status.phase === 'Pending' && ageMs > startTimeoutMs) {
    return { code: null, signal: null, reason: `pod still pending after ${Math.round(ageMs / 1000)} s: ${status.conditions?.find((c) => c.status === 'False')?.message ?? 'not scheduled or started'}` };
  }
  return undefined;
}

/**
 * A CreateContainerConfigError the kubelet gets over by itself: its watch of the run's Secret had
 * not synced yet ("failed to sync secret cache: timed out waiting for the condition"), which
 * happens when many pods start at once and is retried at its next pass. A missing Secret or key
 * says so instead, and stays fatal. The start timeout still bounds the wait.
 */
function transientWaiting(message: string | undefined): boolean {
  return /failed to sync \w+ cache/.test(message ?? '');
}

/**
 * The container's command could not be started at all (a missing program: the kubelet says
 * StartError, exit 128): the connector never ran, a configuration error rather than a crash to
 * retry. A direct-stdio pod needs bash in the connector's image, and the message says so.
 */
function startError(pod: V1Pod, message: string): ConnectorExit {
  const command = pod.spec?.containers.find((c) => c.name === 'connector')?.command;
  const noBash = command?.[0] === 'bash' && /"?bash"?[^\n]*not found|no such file/i.test(message);
  const hint = noBash ? ' (stdio direct needs bash in the connector image: give the connector "stdio": "sidecar", or set TIDEPOOL_CONNECTOR_STDIO=sidecar)' : '';
  return { code: null, signal: null, reason: `StartError: ${message.trim() || 'the container could not start'}${hint}`, notStarted: true };
}

async function ended(stream: NodeJS.ReadableStream & { readableEnded?: boolean }): Promise<void> {
  if (stream.readableEnded) return;
  await new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}
