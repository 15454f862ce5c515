// Port: where the runner reads the values a connection gives by reference
// (`{"secretRef": "name/key"}`, shared/secret-ref.ts). Adapters: a directory laid out like mounted
// Secrets (runner/secrets/files.ts) and the Kubernetes API (runner/secrets/kubernetes.ts).
import type { SecretRef } from '../secret-ref.js';

export interface SecretSource {
  /** Where values come from, as an error message says it (`files under /etc/tidepool/secrets`). */
  readonly where: string;
  /**
   * The value, or undefined when there is no such secret or key (a configuration error).
   * Throws a TidepoolError for anything else: a transient one when trying again may help.
   */
  read(ref: SecretRef): Promise<string | undefined>;
}
