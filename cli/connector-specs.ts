// What the CLI asks connectors directly, on the host it runs on: their specs (for `connectors
// spec` and for validating a connection at `connections apply`) and their checks (`connections
// check`). Programs run as child processes, images with `docker run`, as in local mode; specs go
// through the same cache the runners use.
import type { Config } from '../shared/config.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { IMAGE_DIGEST, isPinnedImage, plainEnv, type Connection, type ConnectorDefinition } from '../shared/connections.js';
import { connectionConfigIssues, destinationSyncModes, type ConfigIssue } from '../shared/connector-spec.js';
import type { Logger } from '../shared/logger.js';
import type { ConnectorSpecification } from '../shared/protocol.js';
import type { Store } from '../shared/store/index.js';
import { streamModeIssues } from '../runner/sync/catalog.js';
import { ConnectorAllowList, imageRepository } from '../runner/launch/allow-list.js';
import { hostConnectorLauncher } from '../runner/launch/launchers.js';
import { resolveProgram } from '../runner/launch/program.js';
import { connectorFingerprint, connectorSpec } from '../runner/sync/spec.js';

const exec = promisify(execFile);

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
    const resolved = await resolveProgram(definition.command[0]!, plainEnv(definition).PATH ?? process.env.PATH ?? '/usr/bin:/bin');
    if (!resolved.ok) return { spec: undefined, note: `${role}.command: ${resolved.problem} on this host; a runner without it will dead-letter every sync of this connection` };
  }
  const launcher = hostConnectorLauncher(cfg);
  const result = await connectorSpec(definition, role, `cli-${process.pid}`, { specs: store.specs, launcher, logger, maxLineBytes: cfg.maxLineBytes, tailLines: cfg.stderrTailLines });
  return result.spec ? { spec: result.spec } : { spec: undefined, note: `${role}: the connector printed no SPEC; its config cannot be checked` };
}

/** An image's spec, run here with docker (and cached like the runners' specs). */
export async function specOfImage(definition: ConnectorDefinition, role: 'source' | 'destination', store: Store, cfg: Config, logger: Logger): Promise<SpecLookup> {
  const result = await connectorSpec(definition, role, `cli-${process.pid}`, { specs: store.specs, launcher: hostConnectorLauncher(cfg), logger, maxLineBytes: cfg.maxLineBytes, tailLines: cfg.stderrTailLines });
  return result.spec ? { spec: result.spec } : { spec: undefined, note: `${role}: image ${definition.image ?? ''} printed no SPEC` };
}

export interface Review {
  /** The connection to store: its image tags pinned to digests where this host can tell them. */
  connection: Connection;
  errors: string[];
  warnings: string[];
}

/**
 * Everything `apply` can say about a connection before it is stored: image tags resolved to
 * digests, configs against the specs, stream modes against the destination's.
 */
export async function reviewConnection(input: Connection, store: Store, cfg: Config, logger: Logger): Promise<Review> {
  const errors: string[] = [];
  const warnings: string[] = [];
  const connection = structuredClone(input);
  for (const role of ['source', 'destination'] as const) {
    const image = connection[role].image;
    if (image === undefined || isPinnedImage(image)) continue;
    const pinned = await resolveDigest(image);
    if (pinned) connection[role].image = pinned;
    else if (cfg.requireDigests) errors.push(`${role}.image: ${image} is not pinned to a digest (repo@sha256:…) and this host cannot resolve one; requireDigests is set`);
    else warnings.push(`${role}.image: ${image} is a tag this host cannot pin to a digest: if the tag moves, the connection runs other code`);
  }
  // Refused here with the runners' own words, and before lookUpSpec would run the program.
  const allowList = ConnectorAllowList.of(cfg);
  const refused = new Set<string>();
  for (const role of ['source', 'destination'] as const) {
    const judged = await allowList.judge(connection[role], role);
    if ('refusal' in judged) {
      errors.push(judged.refusal);
      refused.add(role);
    }
  }
  const notLookedUp: SpecLookup = { spec: undefined };
  const [source, destination] = await Promise.all([
    refused.has('source') ? notLookedUp : lookUpSpec(connection.source, 'source', store, cfg, logger),
    refused.has('destination') ? notLookedUp : lookUpSpec(connection.destination, 'destination', store, cfg, logger),
  ]);
  const issues: ConfigIssue[] = connectionConfigIssues(connection, { source: source.spec, destination: destination.spec });
  errors.push(...issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`));
  warnings.push(...issues.filter((i) => i.severity === 'warning').map((i) => `${i.path}: ${i.message}`), ...[source.note, destination.note].filter((n): n is string => n !== undefined));
  if (destination.spec) errors.push(...streamModeIssues(connection, destinationSyncModes(destination.spec)));
  return { connection, errors, warnings };
}

/**
 * The registry digest of an image this host's container engine has, as `repo:tag@sha256:…`
 * (engines and Kubernetes run the digest; the tag stays for people). Undefined when there is no
 * engine, no such image, or no digest (an image built here and never pushed has none).
 */
export async function resolveDigest(image: string, docker = 'docker'): Promise<string | undefined> {
  let digests: unknown;
  try {
    const { stdout } = await exec(docker, ['image', 'inspect', '--format', '{{json .RepoDigests}}', image], { timeout: 15_000 });
    digests = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (!Array.isArray(digests)) return undefined;
  const repo = imageRepository(image);
  const match = digests.find((d): d is string => typeof d === 'string' && imageRepository(d) === repo && IMAGE_DIGEST.test(d));
  return match ? `${image}@${match.slice(match.indexOf('@') + 1)}` : undefined;
}

// One reading of an image's repository for the CLI and the runners' allow-list.
export { imageRepository };
