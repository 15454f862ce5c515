// Secrets by reference, resolved for one sync: each `{"secretRef": "name/key"}` of the
// connection's configs and connector env read from the installation's SecretSource once, before any connector
// runs, and handed to the connectors in place of the reference. The stored connection keeps the
// references: it is what the caches are keyed by (check, catalog, spec fingerprints), so no
// value — not even a hash of one — reaches the store. Every value read joins the sync's
// redaction set, whatever the field's name.
import type { Connection } from '../../shared/connections.js';
import { TidepoolError } from '../../shared/errors.js';
import { quoteValue } from '../../shared/ids.js';
import type { ConnectorLauncher, ConnectorRun } from '../../shared/ports/connector-launcher.js';
import type { SecretSource } from '../../shared/ports/secret-source.js';
import { collectSecretLeaves } from '../../shared/redact.js';
import { findSecretRefs, formatSecretRef, replaceSecretRefs, type FoundRef } from '../../shared/secret-ref.js';

/** A reference that names nothing: the connection's configuration at fault, never retried. */
export class SecretRefError extends TidepoolError {
  override name = 'SecretRefError';
  constructor(message: string) {
    super(message, false, 'runner', 'config_error');
  }
}

const ROLES = ['source', 'destination'] as const;

/**
 * The connection with its references (in configs and env) replaced by their values (the same
 * object when it has none). Throws SecretRefError naming the connection, the field and the
 * reference — never a value — when one cannot be resolved.
 */
export async function resolveSecretRefs(connection: Connection, source: SecretSource | undefined, secrets: Set<string>): Promise<Connection> {
  // A definition's config and env, as one value whose paths say which (`config.password`, `env.API_KEY`).
  const parts = ROLES.map((role) => ({ config: connection[role].config, env: connection[role].env ?? {} }));
  const found = parts.map((p) => findSecretRefs(p).refs);
  if (found.every((refs) => refs.length === 0)) return connection;
  const resolved = { ...connection };
  for (const [i, role] of ROLES.entries()) {
    const refs = found[i]!;
    if (refs.length === 0) continue;
    const values = await Promise.all(refs.map((f) => readRef(connection.id, role, f, source)));
    for (const value of values) collectSecretLeaves(value, secrets);
    let next = 0;
    // replaceSecretRefs walks in the order findSecretRefs found them.
    const replaced = replaceSecretRefs(parts[i], () => values[next++]) as { config: Record<string, unknown>; env: Record<string, string> };
    resolved[role] = { ...connection[role], config: replaced.config, ...(connection[role].env ? { env: replaced.env } : {}) };
  }
  return resolved;
}

async function readRef(connectionId: string, role: 'source' | 'destination', found: FoundRef, source: SecretSource | undefined): Promise<string> {
  const where = `connection ${quoteValue(connectionId)} ${[role, ...found.path].join('.')}: secretRef ${quoteValue(formatSecretRef(found.ref))}`;
  if (!source) throw new SecretRefError(`${where} cannot be resolved: no secret source is configured (set TIDEPOOL_SECRETS_DIR, or run connectors on Kubernetes)`);
  let value: string | undefined;
  try {
    value = await source.read(found.ref);
  } catch (err) {
    if (err instanceof TidepoolError) throw new TidepoolError(`${where}: ${err.message}`, err.retryable, err.origin, err.type, { cause: err });
    throw err;
  }
  if (value === undefined) throw new SecretRefError(`${where} not found: no key ${quoteValue(found.ref.key)} in secret ${quoteValue(found.ref.name)} (${source.where})`);
  return value;
}

/**
 * The sync's launcher: a connector of the stored connection is started with the resolved
 * definition and config instead. Keyed by identity, so only what the sync itself hands over
 * (its definitions, their configs) is replaced.
 */
export function withResolvedConfigs(launcher: ConnectorLauncher, stored: Connection, resolved: Connection): ConnectorLauncher {
  if (resolved === stored) return launcher;
  const swap = (run: ConnectorRun): ConnectorRun => {
    if (run.connector !== stored[run.role]) return run;
    const definition = resolved[run.role];
    return { ...run, connector: definition, files: run.files.config === stored[run.role].config ? { ...run.files, config: definition.config } : run.files };
  };
  return { kind: launcher.kind, start: (run) => launcher.start(swap(run)) };
}
