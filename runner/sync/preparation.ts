// Everything a sync needs to know before its connectors run: which config fields are secrets,
// whether the configs are valid, that both connectors work with them, which streams move and
// in which sync modes. Each answer is cached (specs per connector program, check per connector
// definition, the catalog per source definition), so on most syncs this costs a few reads.
import type { Config } from '../../shared/config.js';
import type { Connection } from '../../shared/connections.js';
import { destinationSyncModes } from '../../shared/connector-spec.js';
import type { Logger } from '../../shared/logger.js';
import type { ConfiguredAirbyteCatalog } from '../../shared/protocol.js';
import type { ConnectorLauncher } from '../../shared/ports/connector-launcher.js';
import type { Store } from '../../shared/store/index.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { configureCatalog, discoverCatalog } from './catalog.js';
import { checkConnectors } from './check.js';
import { addSpecSecrets, assertPinnedImages, assertValidConfigs, cachedConnectionSpecs, connectionSpecs } from './spec.js';

export interface PreparationDeps {
  store: Pick<Store, 'connections' | 'specs'>;
  launcher: ConnectorLauncher;
  config: Pick<Config, 'maxLineBytes' | 'requireDigests' | 'stderrTailLines'>;
  logger: Logger;
}


/**
 * What the connectors' specs say comes first: which config fields are secrets (needed before
 * any connector output is logged), whether the configs are valid at all, and which sync modes
 * the destination implements. Specs are cached per connector program, so usually they are
 * known at once: an invalid config then runs nothing. A program used for the first time is
 * asked for its spec while check and discover run beside it (each a process start, on
 * Kubernetes a pod start; all read-only); their output waits for the spec's secrets before
 * anything of it is logged, and the spec's verdict on the configs is judged first.
 */
/**
 * Resolves the configured catalog. `secrets` starts with the connection's secret-looking values
 * and gets those its connectors' specs mark secret as soon as the specs are known, so whatever
 * fails afterwards, here or later, is redacted with all of them.
 */
export async function prepareSync(connection: Connection, run: RunRecord, runId: string, secrets: Set<string>, deps: PreparationDeps, signal?: AbortSignal): Promise<ConfiguredAirbyteCatalog> {
  const { store, launcher, config, logger } = deps;
  // `signal` kills the commands of a sync that is stopped while it prepares (runner/sync/sync.ts
  // then reports why it stopped, not what the killed commands said).
  const commandDeps = { connections: store.connections, specs: store.specs, launcher, logger, maxLineBytes: config.maxLineBytes, tailLines: config.stderrTailLines, signal };
  if (config.requireDigests) assertPinnedImages(connection);
  const cached = await cachedConnectionSpecs(connection, commandDeps);
  if (cached) {
    addSpecSecrets(connection, cached, secrets);
    assertValidConfigs(connection, cached);
  }
  const asked = cached ? Promise.resolve(cached) : connectionSpecs(connection, runId, commandDeps);
  const secretsReady = asked.then((specs) => addSpecSecrets(connection, specs, secrets)).catch(() => undefined);
  const commandsAfterSpecs = { ...commandDeps, ...(cached ? {} : { secretsReady }) };
  // All awaited, so no connector is left running behind a thrown error; judged in a fixed
  // order: the configs, then a failed check (it says more than the discover failing with it).
  const [specsDone, checked, discovered] = await Promise.allSettled([
    asked,
    checkConnectors(connection, runId, secrets, commandsAfterSpecs),
    discoverCatalog(connection, runId, secrets, commandsAfterSpecs),
  ]);
  if (specsDone.status === 'rejected') throw specsDone.reason;
  const specs = specsDone.value;
  // Which connector programs ran is recorded even when their configs turn out invalid.
  run.connectors = specs.identities;
  assertValidConfigs(connection, specs);
  if (checked.status === 'rejected') throw checked.reason;
  if (discovered.status === 'rejected') throw discovered.reason;
  return configureCatalog(discovered.value, connection, run.fullRefresh, destinationSyncModes(specs.destination));
}
