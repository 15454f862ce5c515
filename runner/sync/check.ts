// Airbyte's `check`, run before a connector is used with a configuration for the first time. A
// FAILED status (a wrong password, no such host) is the configuration's fault: the sync is
// dead-lettered at once as a config_error, since no retry would fix it. A success is cached per
// connector definition (like the discovered catalog), so a connection pays for `check` once per
// configuration, not on every sync; changing the definition checks again.
import { createHash } from 'node:crypto';
import type { Connection, ConnectorDefinition } from '../../shared/connections.js';
import { ConnectorError } from '../../shared/errors.js';
import { redactText } from '../../shared/redact.js';
import type { ConnectionStore } from '../../shared/store/connections.js';
import { runConnectorCommand, traceFailure, type CommandDeps, type CommandResult } from './connector-output.js';

export interface CheckDeps extends CommandDeps {
  connections: Pick<ConnectionStore, 'getChecked' | 'putChecked'>;
}

export function definitionHash(definition: ConnectorDefinition): string {
  return createHash('sha256').update(JSON.stringify(definition)).digest('hex').slice(0, 16);
}

export async function checkConnectors(connection: Connection, runId: string, secrets: ReadonlySet<string>, deps: CheckDeps): Promise<void> {
  // Both checks at once (on Kubernetes each is a pod start-up), judged in a fixed order: when
  // both fail, the source's failure is the one reported. A definition that passed is skipped.
  const roles = ['source', 'destination'] as const;
  const checks = await Promise.all(
    roles.map(async (role) => {
      const hash = definitionHash(connection[role]);
      if ((await deps.connections.getChecked(connection.id, role)) === hash) return undefined;
      return { hash, verdict: await checkConnector(connection[role], role, runId, secrets, deps) };
    }),
  );
  for (const [i, role] of roles.entries()) {
    const check = checks[i];
    if (!check) continue;
    const { verdict } = check;
    if (verdict.verdict === 'failed') throw verdict.error;
    if (verdict.verdict === 'succeeded') {
      await deps.connections.putChecked(connection.id, role, check.hash);
      continue;
    }
    // A connector without a working `check` (no status, or it died): not cached, and not held
    // against the sync — the read itself fails with its own, classified, reason if it must.
    deps.logger.warn({ role, why: verdict.why }, 'connector check gave no verdict: going on without it');
  }
}

/** What one connector's `check` said; `message` is the connector's own words, redacted. */
export type CheckVerdict =
  | { verdict: 'succeeded' }
  | { verdict: 'failed'; message: string; error: ConnectorError }
  | { verdict: 'none'; why: string };

/**
 * Runs one connector's `check` and reads its verdict: a FAILED status or an error TRACE fails
 * (error: the failure the sync is dead-lettered with); a status with exit 0 succeeds; anything
 * else is no verdict. A connector that cannot start throws its config_error.
 */
export async function checkConnector(
  definition: ConnectorDefinition,
  role: 'source' | 'destination',
  runId: string,
  secrets: ReadonlySet<string>,
  deps: Pick<CheckDeps, 'launcher' | 'logger' | 'maxLineBytes' | 'tailLines' | 'secretsReady' | 'signal'>,
): Promise<CheckVerdict> {
  let result: CommandResult;
  try {
    result = await runConnectorCommand(
      deps.launcher,
      { runId: `${runId}-check-${role}`, role, connector: definition, command: 'check', files: { config: definition.config } },
      secrets,
      deps.logger,
      { timeoutMs: 5 * 60_000, maxLineBytes: deps.maxLineBytes, tailLines: deps.tailLines, secretsReady: deps.secretsReady, signal: deps.signal },
    );
  } catch (err) {
    // A connector that cannot start at all will not read either: that is the verdict.
    if (err instanceof ConnectorError && err.type === 'config_error') throw err;
    // Output that is not the protocol: no verdict (the read will say what is wrong, and how).
    return { verdict: 'none', why: err instanceof Error ? err.message : String(err) };
  }
  const status = result.messages.find((m) => m.type === 'CONNECTION_STATUS');
  if (status?.type === 'CONNECTION_STATUS' && status.connectionStatus.status === 'FAILED') {
    const message = redactText(status.connectionStatus.message ?? 'no reason given', secrets);
    const error = new ConnectorError(`${role} check failed: ${message}`, role, false, 'config_error');
    error.stderr = { [role]: result.stderr };
    return { verdict: 'failed', message, error };
  }
  const trace = result.messages.find((m) => m.type === 'TRACE' && m.trace.type === 'ERROR');
  if (trace?.type === 'TRACE') {
    const error = traceFailure(trace.trace, role, secrets);
    error.stderr = { [role]: result.stderr };
    return { verdict: 'failed', message: redactText(trace.trace.error?.message ?? 'error without a message', secrets), error };
  }
  if (status?.type === 'CONNECTION_STATUS' && result.exitCode === 0) return { verdict: 'succeeded' };
  return { verdict: 'none', why: result.stderr.at(-1) ?? `exit code ${String(result.exitCode)}${status ? '' : ', no CONNECTION_STATUS'}` };
}
