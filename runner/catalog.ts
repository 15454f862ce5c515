// Which streams a sync moves, and how. The source's catalog is discovered once per source
// configuration and cached in Redis; the connection's stream choices (or defaults) turn it into
// the configured catalog both connectors receive.
import { createHash } from 'node:crypto';
import type { Connection } from '../shared/connections.js';
import { ConnectorError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { AirbyteCatalog, ConfiguredAirbyteCatalog, ConfiguredAirbyteStream } from '../shared/protocol.js';
import type { ConnectorLauncher } from '../shared/ports/connector-launcher.js';
import type { ConnectionStore } from '../shared/store/connections.js';
import { runConnectorCommand, traceFailure } from './connector-output.js';

export interface CatalogDeps {
  connections: Pick<ConnectionStore, 'getCatalog' | 'putCatalog'>;
  launcher: ConnectorLauncher;
  logger: Logger;
  maxLineBytes: number;
  tailLines: number;
}

export function sourceHash(connection: Connection): string {
  return createHash('sha256').update(JSON.stringify(connection.source)).digest('hex').slice(0, 16);
}

export async function discoverCatalog(connection: Connection, runId: string, secrets: ReadonlySet<string>, deps: CatalogDeps): Promise<AirbyteCatalog> {
  const hash = sourceHash(connection);
  const cached = await deps.connections.getCatalog(connection.id);
  if (cached && cached.sourceHash === hash) return cached.catalog as AirbyteCatalog;

  const result = await runConnectorCommand(
    deps.launcher,
    { runId: `${runId}-discover`, role: 'source', connector: connection.source, command: 'discover', files: { config: connection.source.config } },
    secrets,
    deps.logger,
    { timeoutMs: 5 * 60_000, maxLineBytes: deps.maxLineBytes, tailLines: deps.tailLines },
  );
  const trace = result.messages.find((m) => m.type === 'TRACE' && m.trace.type === 'ERROR');
  if (trace?.type === 'TRACE') {
    const err = traceFailure(trace.trace, 'source', secrets);
    err.stderr = { source: result.stderr };
    throw err;
  }
  const catalog = result.messages.find((m) => m.type === 'CATALOG');
  if (result.exitCode !== 0 || catalog?.type !== 'CATALOG') {
    const last = result.stderr.at(-1);
    // A discover that exits 0 without a CATALOG broke the protocol (it will again); one that
    // died may not next time.
    const err = ConnectorError.of(
      { kind: result.exitCode !== 0 ? 'exit' : 'protocol' },
      `source discover ${result.exitCode !== 0 ? (result.exitReason ?? `exited with code ${String(result.exitCode)}`) : 'printed no CATALOG'}${last ? `: ${last}` : ''}`,
      'source',
    );
    err.stderr = { source: result.stderr };
    throw err;
  }
  await deps.connections.putCatalog(connection.id, hash, catalog.catalog);
  return catalog.catalog;
}

export class CatalogError extends ConnectorError {
  override name = 'CatalogError';
  constructor(message: string) {
    super(message, 'source', false, 'config_error');
  }
}

/**
 * The configured catalog. Defaults: incremental where the source supports it and has a cursor
 * (its own, or one the connection names), appending with dedup when there is a primary key;
 * full refresh with overwrite otherwise. A full-refresh request forces full refresh/overwrite.
 */
export function configureCatalog(catalog: AirbyteCatalog, connection: Connection, fullRefresh: boolean): ConfiguredAirbyteCatalog {
  const chosen = connection.streams;
  // NUL cannot occur in either part, so namespace "a.b" + stream "c" never meets "a" + "b.c".
  const key = (namespace: string | undefined, name: string) => `${namespace ?? ''}\u0000${name}`;
  const byName = new Map(catalog.streams.map((s) => [key(s.namespace, s.name), s]));
  const selections = chosen ?? catalog.streams.map((s) => ({ name: s.name, ...(s.namespace ? { namespace: s.namespace } : {}) }));
  const streams: ConfiguredAirbyteStream[] = selections.map((sel) => {
    const stream = byName.get(key(sel.namespace, sel.name));
    if (!stream) {
      const named = (s: { namespace?: string | undefined; name: string }) => (s.namespace ? `${s.namespace}.${s.name}` : s.name);
      throw new CatalogError(`connection "${connection.id}" selects stream "${named(sel)}", which the source does not have (it has: ${catalog.streams.map(named).join(', ')}; give "namespace" for a namespaced stream)`);
    }
    const selection = sel as typeof sel & Partial<NonNullable<Connection['streams']>[number]>;
    const cursorField = selection.cursorField ?? stream.default_cursor_field;
    const primaryKey = selection.primaryKey ?? stream.source_defined_primary_key;
    const canIncremental = stream.supported_sync_modes.includes('incremental') && (cursorField?.length ?? 0) > 0;
    let syncMode = selection.syncMode ?? (canIncremental ? 'incremental' : 'full_refresh');
    if (syncMode === 'incremental' && !canIncremental) {
      throw new CatalogError(`stream "${sel.name}" of connection "${connection.id}" cannot sync incrementally: ${stream.supported_sync_modes.includes('incremental') ? 'no cursor field (set cursorField)' : 'the source does not support it'}`);
    }
    if (fullRefresh) syncMode = 'full_refresh';
    const hasKey = (primaryKey?.length ?? 0) > 0;
    const destinationSyncMode = fullRefresh
      ? 'overwrite'
      : (selection.destinationSyncMode ?? (syncMode === 'incremental' ? (hasKey ? 'append_dedup' : 'append') : 'overwrite'));
    return {
      stream,
      sync_mode: syncMode,
      destination_sync_mode: destinationSyncMode,
      ...(cursorField && syncMode === 'incremental' ? { cursor_field: cursorField } : {}),
      ...(primaryKey && hasKey ? { primary_key: primaryKey } : {}),
    };
  });
  return { streams };
}
