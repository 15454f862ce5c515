// Picks the ConnectorLauncher the configuration asks for. Everything above it is the same in
// local and Kubernetes mode.
import { imageName, parseNodeSelector, type Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { installationSelector, loadKubeConfig } from '../../shared/kube.js';
import type { ConnectorLauncher } from '../../shared/ports/connector-launcher.js';
import type { Store } from '../../shared/store/index.js';
import { allowListed } from './allow-list.js';
import { KubernetesPodConnectorLauncher, type KubernetesPodOptions } from './kubernetes-pod.js';
import { DockerConnectorLauncher } from './docker.js';
import { LocalProcessConnectorLauncher } from './local-process.js';
import { StreamServer } from './stream-server.js';

export interface ConnectorLauncherHandle {
  launcher: ConnectorLauncher;
  /** Work to do once the store is up, before consuming (the orphan sweep). */
  prepare(store: Store): Promise<void>;
  close(): Promise<void>;
}

/**
 * The runner's launcher, behind the connector allow-list: every start (spec, check, discover,
 * read, write) is checked right before it, whatever the connection in the store says.
 */
export async function createConnectorLauncher(config: Config, logger: Logger, runnerId: string): Promise<ConnectorLauncherHandle> {
  const handle = await platformLauncher(config, logger, runnerId);
  return { ...handle, launcher: allowListed(handle.launcher, config) };
}

async function platformLauncher(config: Config, logger: Logger, runnerId: string): Promise<ConnectorLauncherHandle> {
  const none = { prepare: () => Promise.resolve(), close: () => Promise.resolve() };
  if (config.connectorLauncher === 'docker') return { launcher: new DockerConnectorLauncher({ builtinImage: builtinImage(config) }), ...none };
  if (config.connectorLauncher === 'local') return { launcher: hostConnectorLauncher(config), ...none };
  const address = advertiseAddress(config);
  const server = new StreamServer(logger.child({ component: 'stream-server' }), { host: '0.0.0.0', port: config.streamPort });
  await server.listen();
  const adapter = new KubernetesPodConnectorLauncher(
    loadKubeConfig(config.kubeconfig || undefined),
    kubernetesPodOptions(config, { runnerId, server, advertiseAddress: address }),
    logger.child({ component: 'connector-pods' }),
  );
  let sweeping: NodeJS.Timeout | undefined;
  return {
    launcher: adapter,
    prepare: async (store) => {
      const sweep = () => adapter.sweepOrphans(async () => new Set((await store.runners.alive()).map((h) => h.runnerId)));
      await sweep();
      // Again while the runner lives, not only at start: in a connector namespace of their own
      // no ownerReference takes a lost runner's pods and Secrets with it (the heartbeat sidecar
      // ends the pods within ~30 s; this deletes them), and without a further runner start
      // nothing else would.
      sweeping = setInterval(() => {
        sweep().catch((err: unknown) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'orphan sweep failed'));
      }, ORPHAN_SWEEP_INTERVAL_MS);
      sweeping.unref();
    },
    close: async () => {
      clearInterval(sweeping);
      await adapter.close();
      await server.stop();
    },
  };
}

/** How often a runner deletes connector pods of runners that are gone. */
const ORPHAN_SWEEP_INTERVAL_MS = 60_000;

/**
 * Connectors on this host: programs as child processes, connectors that name an image with
 * docker. Not behind the allow-list by itself: the CLI also runs what its user names on the
 * command line (`connectors spec PATH`), and wraps it where a definition comes from the store.
 */
export function hostConnectorLauncher(config: Pick<Config, 'imagePrefix' | 'imageTag'>): ConnectorLauncher {
  return new LocalOrImageLauncher(new LocalProcessConnectorLauncher(), new DockerConnectorLauncher({ builtinImage: builtinImage(config) }));
}

/** The image of a reference connector, by name. */
export function builtinImage(config: Pick<Config, 'imagePrefix' | 'imageTag'>): (name: string) => string {
  return (name) => imageName(config, name);
}

/** The address connector pods dial to reach this runner: set, or the runner pod's own IP. */
export function advertiseAddress(config: Pick<Config, 'advertiseAddress' | 'podIp'>): string {
  const address = config.advertiseAddress || config.podIp;
  if (!address) {
    throw new Error('TIDEPOOL_CONNECTOR_LAUNCHER=kubernetes needs TIDEPOOL_ADVERTISE_ADDRESS (or TIDEPOOL_POD_IP from the downward API): the address connector pods dial');
  }
  return address;
}

/** Connector pods of one runner, whose stream server listens at `advertiseAddress`. */
export function kubernetesPodOptions(config: Config, runner: Pick<KubernetesPodOptions, 'runnerId' | 'server' | 'advertiseAddress'>): KubernetesPodOptions {
  const namespace = connectorNamespace(config);
  // An ownerReference must name an owner in the dependent's namespace (see KubernetesPodOptions.owner).
  const owned = config.podName && config.podUid && namespace === config.namespace;
  return {
    namespace,
    ...runner,
    sidecarImage: imageName(config, 'socat'),
    stdio: config.connectorStdio,
    builtinImage: builtinImage(config),
    imagePullPolicy: config.imagePullPolicy,
    ...(owned ? { owner: { name: config.podName, uid: config.podUid } } : {}),
    activeDeadlineSeconds: Math.ceil(config.connectorDeadline / 1000),
    tmpSizeLimit: config.connectorTmpSizeLimit,
    resources: {
      requests: { cpu: config.connectorCpuRequest, memory: config.connectorMemoryRequest },
      limits: { cpu: config.connectorCpuLimit, memory: config.connectorMemoryLimit },
    },
    nodeSelector: parseNodeSelector(config.connectorNodeSelector),
    selector: installationSelector(config),
  };
}

/** Where connector pods and their Secrets go: their own namespace, or the runners'. */
export function connectorNamespace(config: Pick<Config, 'namespace' | 'connectorNamespace'>): string {
  return config.connectorNamespace || config.namespace;
}

/**
 * Local mode: programs run as child processes, connectors that name an image with
 * `docker run -i` (which fails with docker's own message when no engine answers).
 */
export class LocalOrImageLauncher implements ConnectorLauncher {
  readonly kind = 'local';
  constructor(
    private readonly processes: ConnectorLauncher,
    private readonly images: ConnectorLauncher,
  ) {}

  start(run: Parameters<ConnectorLauncher['start']>[0]) {
    return run.connector.image !== undefined ? this.images.start(run) : this.processes.start(run);
  }
}
