// Which SecretSource an installation reads references from: the secretsDir when one is set (a
// host, or Secrets mounted into the runner), else the Kubernetes API when connectors run on a
// cluster, else none (a reference then fails its sync, saying so).
import type { Config } from '../../shared/config.js';
import { loadKubeConfig } from '../../shared/kube.js';
import type { SecretSource } from '../../shared/ports/secret-source.js';
import { FileSecretSource } from './files.js';
import { KubernetesSecretSource } from './kubernetes.js';

export function secretSourceFor(config: Pick<Config, 'secretsDir' | 'connectorLauncher' | 'kubeconfig' | 'namespace'>): SecretSource | undefined {
  if (config.secretsDir !== '') return new FileSecretSource(config.secretsDir);
  if (config.connectorLauncher === 'kubernetes') return new KubernetesSecretSource(loadKubeConfig(config.kubeconfig || undefined), config.namespace);
  return undefined;
}
