// A built-in connector's catalog from a local `discover`, for benches that cache it before
// their syncs (as every sync but a connection's first finds it) so no discover pod or process
// is in what they measure.
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { builtinConnectorCommand } from '../../shared/paths.js';
import type { Connection } from '../../shared/connections.js';
import type { AirbyteCatalog } from '../../shared/protocol.js';
import type { Store } from '../../shared/store/index.js';
import { sourceHash } from '../../runner/sync/catalog.js';
import { definitionHash } from '../../runner/sync/check.js';

/** `connector discover` run here with `config` (written to `dir`): its CATALOG message. */
export async function discoverLocally(connector: string, config: unknown, dir: string): Promise<AirbyteCatalog> {
  const configPath = join(dir, `${connector}-config.json`);
  await writeFile(configPath, JSON.stringify(config));
  const [node, main] = builtinConnectorCommand(connector) as [string, string];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(node, [main, 'discover', '--config', configPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (text += s));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`${connector} discover exited with code ${String(code)}`))));
  });
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) continue;
    const message = JSON.parse(line) as { type?: string; catalog?: AirbyteCatalog };
    if (message.type === 'CATALOG' && message.catalog) return message.catalog;
  }
  throw new Error(`${connector} discover printed no CATALOG`);
}

/** Applies `connection` with `catalog` cached for its source and both connectors' checks passed, as every sync but a connection's first finds them. */
export async function applyWithCache(store: Store, connection: Connection, catalog: AirbyteCatalog): Promise<void> {
  await store.connections.apply(connection);
  await store.connections.putCatalog(connection.id, sourceHash(connection), catalog);
  for (const role of ['source', 'destination'] as const) await store.connections.putChecked(connection.id, role, definitionHash(connection[role]));
}
