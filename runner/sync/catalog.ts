// Which streams a sync moves, and how. The source's catalog is discovered once per source
// configuration and cached in Redis; the connection's stream choices (or defaults) turn it into
// the configured catalog both connectors receive.
import { createHash } from 'node:crypto';
import type { Connection } from '../../shared/connections.js';
import { ConnectorError } from '../../shared/errors.js';
import type { AirbyteCatalog, ConfiguredAirbyteCatalog, ConfiguredAirbyteStream, DestinationSyncMode } from '../../shared/protocol.js';
import type { ConnectionStore } from '../../shared/store/connections.js';
import { runConnectorCommand, traceFailure, type CommandDeps } from './connector-output.js';

export interface CatalogDeps extends CommandDeps {
  connections: Pick<ConnectionStore, 'getCatalog' | 'putCatalog'>;
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
    { timeoutMs: 5 * 60_000, maxLineBytes: deps.maxLineBytes, tailLines: deps.tailLines, secretsReady: deps.secretsReady, signal: deps.signal },
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
 * The configured catalog: which streams, and how each is read and written. Nothing is assumed of
 * either connector; each mode comes from what they declared:
 *
 * - sync_mode: incremental when the source supports it for the stream and there is a cursor (the
 *   source's own, or one the connection names) and the destination can append (`append` or
 *   `append_dedup` in its spec); full_refresh otherwise.
 * - destination_sync_mode: for incremental, `append_dedup` when the destination lists it and the
 *   stream has a primary key (the source's, or one the connection names), else `append`; for
 *   full refresh, `overwrite`.
 * - A full-refresh sync forces full_refresh + overwrite on every stream.
 * - A mode the connection asks for that a connector cannot honour (incremental where the source
 *   cannot, `append_dedup` without a key or in a destination that does not list it, incremental
 *   into overwrite) is refused with a config_error naming the stream and the mode: a silent
 *   downgrade (dedup quietly becoming append) duplicates rows.
 *
 * `destinationModes` is destinationSyncModes(spec) of shared/connector-spec.ts.
 */
export function configureCatalog(
  catalog: AirbyteCatalog,
  connection: Connection,
  fullRefresh: boolean,
  destinationModes: readonly DestinationSyncMode[],
): ConfiguredAirbyteCatalog {
  const chosen = connection.streams;
  // NUL cannot occur in either part, so namespace "a.b" + stream "c" never meets "a" + "b.c".
  const key = (namespace: string | undefined, name: string) => `${namespace ?? ''}\u0000${name}`;
  const named = (s: { namespace?: string | undefined; name: string }) => (s.namespace ? `${s.namespace}.${s.name}` : s.name);
  const byName = new Map(catalog.streams.map((s) => [key(s.namespace, s.name), s]));
  const selections = chosen ?? catalog.streams.map((s) => ({ name: s.name, ...(s.namespace ? { namespace: s.namespace } : {}) }));
  const destination = new Set(destinationModes);
  const supported = `the destination supports ${destinationModes.join(', ') || 'no sync mode'}`;
  const canAppend = destination.has('append') || destination.has('append_dedup');
  const streams: ConfiguredAirbyteStream[] = selections.map((sel) => {
    const stream = byName.get(key(sel.namespace, sel.name));
    if (!stream) {
      throw new CatalogError(`connection "${connection.id}" selects stream "${named(sel)}", which the source does not have (it has: ${catalog.streams.map(named).join(', ')}; give "namespace" for a namespaced stream)`);
    }
    const where = `stream "${named(sel)}" of connection "${connection.id}"`;
    const selection = sel as typeof sel & Partial<NonNullable<Connection['streams']>[number]>;
    const cursorField = selection.cursorField ?? stream.default_cursor_field;
    const primaryKey = selection.primaryKey ?? stream.source_defined_primary_key;
    const hasKey = (primaryKey?.length ?? 0) > 0;
    const canIncremental = stream.supported_sync_modes.includes('incremental') && (cursorField?.length ?? 0) > 0;

    if (selection.syncMode === 'incremental' && !fullRefresh) {
      if (!canIncremental) {
        throw new CatalogError(`${where} cannot sync incrementally: ${stream.supported_sync_modes.includes('incremental') ? 'no cursor field (set cursorField)' : 'the source does not support it'}`);
      }
      if (!canAppend) throw new CatalogError(`${where} cannot sync incrementally: incremental needs append or append_dedup, and ${supported}`);
    }
    const syncMode = fullRefresh ? 'full_refresh' : (selection.syncMode ?? (canIncremental && canAppend ? 'incremental' : 'full_refresh'));

    let destinationSyncMode: DestinationSyncMode;
    if (fullRefresh) {
      if (!destination.has('overwrite')) throw new CatalogError(`${where} cannot be fully refreshed: ${supported}, not overwrite`);
      destinationSyncMode = 'overwrite';
    } else if (selection.destinationSyncMode !== undefined) {
      destinationSyncMode = selection.destinationSyncMode;
      if (!destination.has(destinationSyncMode)) throw new CatalogError(`${where} asks for destinationSyncMode ${destinationSyncMode}, but ${supported}`);
      if (destinationSyncMode === 'append_dedup' && !hasKey) throw new CatalogError(`${where} asks for append_dedup, but the stream has no primary key (set primaryKey)`);
      if (destinationSyncMode === 'overwrite' && syncMode === 'incremental') {
        throw new CatalogError(`${where} asks for incremental with overwrite, which would keep only each sync's new records (use append or append_dedup, or syncMode full_refresh)`);
      }
    } else if (syncMode === 'incremental') {
      destinationSyncMode = hasKey && destination.has('append_dedup') ? 'append_dedup' : 'append';
      if (!destination.has(destinationSyncMode)) {
        throw new CatalogError(`${where} has no primary key for append_dedup, and ${supported} (set primaryKey, or syncMode full_refresh)`);
      }
    } else {
      if (!destination.has('overwrite')) throw new CatalogError(`${where} syncs fully, but ${supported}, not overwrite (set destinationSyncMode)`);
      destinationSyncMode = 'overwrite';
    }
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

/**
 * What configureCatalog would refuse in the connection's explicit stream choices, judged from
 * the destination's modes alone (no catalog needed): for `connections apply`, before any sync.
 * The source's side (does a stream exist, can it be read incrementally) needs its catalog and
 * is judged at the first sync.
 */
export function streamModeIssues(connection: Connection, destinationModes: readonly DestinationSyncMode[]): string[] {
  const destination = new Set(destinationModes);
  const supported = `the destination supports ${destinationModes.join(', ') || 'no sync mode'}`;
  return (connection.streams ?? []).flatMap((s, i) => {
    const at = `streams[${i}] ("${s.namespace ? `${s.namespace}.` : ''}${s.name}")`;
    const issues: string[] = [];
    if (s.destinationSyncMode !== undefined && !destination.has(s.destinationSyncMode)) issues.push(`${at}.destinationSyncMode: ${s.destinationSyncMode}, but ${supported}`);
    if (s.syncMode === 'incremental' && !destination.has('append') && !destination.has('append_dedup')) issues.push(`${at}.syncMode: incremental needs append or append_dedup, and ${supported}`);
    if (s.syncMode === 'incremental' && s.destinationSyncMode === 'overwrite') issues.push(`${at}: incremental with overwrite would keep only each sync's new records`);
    return issues;
  });
}
