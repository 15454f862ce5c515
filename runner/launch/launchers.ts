// Picks the ConnectorLauncher the configuration asks for. Everything above it is the same in
// local and Kubernetes mode.
import { parseNodeSelector, type Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { installationSelector, loadKubeConfig } from '../../shared/kube.js';
import type { ConnectorLauncher } from '../../shared/ports/connector-launcher.js';
import type { Store } from '../../shared/store/index.js';
import { KubernetesPodConnectorLauncher } from './kubernetes-pod.js';
import { DockerConnectorLauncher } from './docker.js';
import { LocalProcessConnectorLauncher } from './local-process.js';
import { StreamServer } from './stream-server.js';

export interface ConnectorLauncherHandle {
  launcher: ConnectorLauncher;
  /** Work to do once the store is up, before consuming (the orphan sweep). */
  prepare(store: Store): Promise<void>;
  close(): Promise<void>;
}

export async function createConnectorLauncher(config: Config, logger: Logger, runnerId: string): Promise<ConnectorLauncherHandle> {
  const builtinImage = (name: string) => `${config.imagePrefix}${name}:${config.imageTag}`;
  const none = { prepare: () => Promise.resolve(), close: () => Promise.resolve() };
  if (config.connectorLauncher === 'docker') return { launcher: new DockerConnectorLauncher({ builtinImage }), ...none };
  if (config.connectorLauncher === 'local') return { launcher: new LocalOrImageLauncher(new LocalProcessConnectorLauncher(), new DockerConnectorLauncher({ builtinImage })), ...none };
  const advertiseAddress = config.advertiseAddress || config.podIp;
  if (!advertiseAddress) {
    throw new Error('TIDEPOOL_CONNECTOR_LAUNCHER=kubernetes needs TIDEPOOL_ADVERTISE_ADDRESS (or TIDEPOOL_POD_IP from the downward API): the address connector pods dial');
  }
  const server = new StreamServer(logger.child({ component: 'stream-server' }), { host: '0.0.0.0', port: config.streamPort });
  await server.listen();
  const adapter = new KubernetesPodConnectorLauncher(
    loadKubeConfig(config.kubeconfig || undefined),
    {
      namespace: config.namespace,
      runnerId,
      server,
      advertiseAddress,
      sidecarImage: `${config.imagePrefix}socat:${config.imageTag}`,
      builtinImage,
      imagePullPolicy: config.imagePullPolicy,
      ...(config.podName && config.podUid ? { owner: { name: config.podName, uid: config.podUid } } : {}),
      activeDeadlineSeconds: Math.ceil(config.connectorDeadline / 1000),
      resources: {
        requests: { cpu: config.connectorCpuRequest, memory: config.connectorMemoryRequest },
        limits: { cpu: config.connectorCpuLimit, memory: config.connectorMemoryLimit },
      },
      nodeSelector: parseNodeSelector(config.connectorNodeSelector),
      selector: installationSelector(config),
    },
    logger.child({ component: 'connector-pods' }),
  );
  return {
    launcher: adapter,
    prepare: async (store) => {
      await adapter.sweepOrphans(async () => new Set((await store.runners.alive()).map((h) => h.runnerId)));
    },
    close: async () => {
      await adapter.close();
      await server.stop();
    },
  };
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
