// What the CLI asks connectors directly, on the host it runs on: their specs (for `connectors
// spec` and for validating a connection at `connections apply`) and their checks (`connections
// check`). Programs run as child processes, images with `docker run`, as in local mode; specs go
// through the same cache the runners use.
import type { Config } from '../shared/config.js';
import type { Connection, ConnectorDefinition } from '../shared/connections.js';
import { connectionConfigIssues, destinationSyncModes, type ConfigIssue } from '../shared/connector-spec.js';
import type { Logger } from '../shared/logger.js';
import type { ConnectorSpecification } from '../shared/protocol.js';
import type { ConnectorLauncher } from '../shared/ports/connector-launcher.js';
import type { Store } from '../shared/store/index.js';
import { streamModeIssues } from '../runner/catalog.js';
import { DockerConnectorLauncher } from '../runner/docker.js';
import { LocalOrImageLauncher } from '../runner/launchers.js';
import { LocalProcessConnectorLauncher } from '../runner/local-process.js';
import { resolveProgram } from '../runner/program.js';
import { connectorFingerprint, connectorSpec } from '../runner/spec.js';

export function hostLauncher(cfg: Pick<Config, 'imagePrefix' | 'imageTag'>): ConnectorLauncher {
  const builtinImage = (name: string) => `${cfg.imagePrefix}${name}:${cfg.imageTag}`;
  return new LocalOrImageLauncher(new LocalProcessConnectorLauncher(), new DockerConnectorLauncher({ builtinImage }));
}

export interface SpecLookup {
  spec: ConnectorSpecification | undefined;
  /** Why there is no spec to judge by, when there is none. */
  note?: string;
}

/**
 * A connector's spec for `apply`: asked of the program when it can run here (a reference
 * connector, a command this host has), taken from the runners' cache for an image (this host
 * may have no container engine), and otherwise left to the first sync.
 */
export async function lookUpSpec(definition: ConnectorDefinition, role: 'source' | 'destination', store: Store, cfg: Config, logger: Logger): Promise<SpecLookup> {
  if (definition.image !== undefined) {
    const cached = await store.specs.get(await connectorFingerprint(definition));
    return cached ? { spec: cached.spec ?? undefined } : { spec: undefined, note: `${role}: image ${definition.image} has not run yet; its config is checked against its spec at the first sync` };
  }
  if (definition.command !== undefined) {
    const resolved = await resolveProgram(definition.command[0]!, definition.env?.PATH ?? process.env.PATH ?? '/usr/bin:/bin');
    if (!resolved.ok) return { spec: undefined, note: `${role}.command: ${resolved.problem} on this host; a runner without it will dead-letter every sync of this connection` };
  }
  const launcher = hostLauncher(cfg);
  const result = await connectorSpec(definition, role, `cli-${process.pid}`, { specs: store.specs, launcher, logger, maxLineBytes: cfg.maxLineBytes, tailLines: cfg.stderrTailLines });
  return result.spec ? { spec: result.spec } : { spec: undefined, note: `${role}: the connector printed no SPEC; its config cannot be checked` };
}

export interface Review {
  errors: string[];
  warnings: string[];
}

/** Everything `apply` can say about a connection before it is stored: config against the specs, stream modes against the destination's. */
export async function reviewConnection(connection: Connection, store: Store, cfg: Config, logger: Logger): Promise<Review> {
  const [source, destination] = await Promise.all([
    lookUpSpec(connection.source, 'source', store, cfg, logger),
    lookUpSpec(connection.destination, 'destination', store, cfg, logger),
  ]);
  const issues: ConfigIssue[] = connectionConfigIssues(connection, { source: source.spec, destination: destination.spec });
  const errors = issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`);
  const warnings = [
    ...issues.filter((i) => i.severity === 'warning').map((i) => `${i.path}: ${i.message}`),
    ...[source.note, destination.note].filter((n): n is string => n !== undefined),
  ];
  if (destination.spec) errors.push(...streamModeIssues(connection, destinationSyncModes(destination.spec)));
  return { errors, warnings };
}
