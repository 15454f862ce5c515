// Airbyte's `check`, run before a connector is used with a configuration for the first time. A
// FAILED status (a wrong password, no such host) is the configuration's fault: the sync is
// dead-lettered at once as a config_error, since no retry would fix it. A success is cached per
// connector definition (like the discovered catalog), so a connection pays for `check` once per
// configuration, not on every sync; changing the definition checks again.
import { createHash } from 'node:crypto';
import type { Connection, ConnectorDefinition } from '../shared/connections.js';
import { ConnectorError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { ConnectorLauncher } from '../shared/ports/connector-launcher.js';
import { redactText } from '../shared/redact.js';
import type { ConnectionStore } from '../shared/store/connections.js';
import { runConnectorCommand, traceFailure } from './connector-output.js';

export interface CheckDeps {
  connections: Pick<ConnectionStore, 'getChecked' | 'putChecked'>;
  launcher: ConnectorLauncher;
  logger: Logger;
  maxLineBytes: number;
  tailLines: number;
  /** See runConnectorCommand: resolves once the secrets are all known. */
  secretsReady?: Promise<unknown>;
}

export function definitionHash(definition: ConnectorDefinition): string {
  return createHash('sha256').update(JSON.stringify(definition)).digest('hex').slice(0, 16);
}

export async function checkConnectors(connection: Connection, runId: string, secrets: ReadonlySet<string>, deps: CheckDeps): Promise<void> {
  // Both checks at once (on Kubernetes each is a pod start-up), judged in a fixed order: when
  // both fail, the source's failure is the one reported.
  const roles = ['source', 'destination'] as const;
  const checks = await Promise.all(roles.map((role) => runCheck(connection, role, runId, secrets, deps)));
  for (const [i, role] of roles.entries()) {
    const check = checks[i];
    if (!check) continue;
    const { result, hash } = check;
    const status = result.messages.find((m) => m.type === 'CONNECTION_STATUS');
    if (status?.type === 'CONNECTION_STATUS' && status.connectionStatus.status === 'FAILED') {
      const err = new ConnectorError(`${role} check failed: ${redactText(status.connectionStatus.message ?? 'no reason given', secrets)}`, role, false, 'config_error');
      err.stderr = { [role]: result.stderr };
      throw err;
    }
    const trace = result.messages.find((m) => m.type === 'TRACE' && m.trace.type === 'ERROR');
    if (trace?.type === 'TRACE') {
      const err = traceFailure(trace.trace, role, secrets);
      err.stderr = { [role]: result.stderr };
      throw err;
    }
    if (status?.type === 'CONNECTION_STATUS' && result.exitCode === 0) {
      await deps.connections.putChecked(connection.id, role, hash);
      continue;
    }
    // A connector without a working `check` (no status, or it died): not cached, and not held
    // against the sync — the read itself fails with its own, classified, reason if it must.
    deps.logger.warn({ role, exitCode: result.exitCode }, 'connector check gave no verdict: going on without it');
  }
}

/** Runs one connector's `check` unless this definition already passed; undefined when skipped or without a verdict. */
async function runCheck(connection: Connection, role: 'source' | 'destination', runId: string, secrets: ReadonlySet<string>, deps: CheckDeps) {
  const definition = connection[role];
  const hash = definitionHash(definition);
  if ((await deps.connections.getChecked(connection.id, role)) === hash) return undefined;
  const result = await runConnectorCommand(
    deps.launcher,
    { runId: `${runId}-check-${role}`, role, connector: definition, command: 'check', files: { config: definition.config } },
    secrets,
    deps.logger,
    { timeoutMs: 5 * 60_000, maxLineBytes: deps.maxLineBytes, tailLines: deps.tailLines, secretsReady: deps.secretsReady },
  ).catch((err: unknown) => {
    // A connector that cannot start at all will not read either: that is the verdict.
    if (err instanceof ConnectorError && err.type === 'config_error') throw err;
    // Output that is not the protocol: no verdict (the read will say what is wrong, and how).
    deps.logger.warn({ role, err: err instanceof Error ? err.message : String(err) }, 'connector check gave no verdict: going on without it');
    return undefined;
  });
  return result ? { result, hash } : undefined;
}
