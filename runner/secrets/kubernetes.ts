// SecretSource adapter for a cluster: the Secret `name` in the runner's namespace, read through
// the API (the runner's Role has `get secrets` there for this). Nothing is mounted. Only Secrets
// labelled `tidepool.io/connection-secret: "true"` can be named: the namespace holds others
// (the broker and store credentials, the connector runs' own), and whoever can write the store
// must not be able to route those into a connector's config.
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { TidepoolError } from '../../shared/errors.js';
import { isNotFound, kubeErrorMessage, statusCode } from '../../shared/kube.js';
import { formatSecretRef, type SecretRef } from '../../shared/secret-ref.js';
import type { SecretSource } from '../../shared/ports/secret-source.js';

export const CONNECTION_SECRET_LABEL = 'tidepool.io/connection-secret';

export class KubernetesSecretSource implements SecretSource {
  readonly where: string;
  private readonly core: CoreV1Api;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.where = `Secrets of namespace ${namespace}`;
  }

  async read(ref: SecretRef): Promise<string | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ name: ref.name, namespace: this.namespace });
      if (secret.metadata?.labels?.[CONNECTION_SECRET_LABEL] !== 'true') {
        throw new TidepoolError(`secret ${JSON.stringify(ref.name)} is not labelled ${CONNECTION_SECRET_LABEL}=true: only Secrets so labelled can be referenced`, false, 'runner', 'config_error');
      }
      const encoded = secret.data?.[ref.key];
      return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString('utf8');
    } catch (err) {
      if (err instanceof TidepoolError) throw err;
      if (isNotFound(err)) return undefined;
      // Forbidden: the runner's Role does not reach it, and will not by itself.
      const forbidden = statusCode(err) === 403;
      throw new TidepoolError(
        `secretRef ${JSON.stringify(formatSecretRef(ref))} cannot be read from namespace ${this.namespace}: ${kubeErrorMessage(err)}`,
        !forbidden,
        'runner',
        forbidden ? 'config_error' : 'transient_error',
      );
    }
  }
}
