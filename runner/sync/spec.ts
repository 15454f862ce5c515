// Airbyte's `spec`: what a connector program says about itself — its config's JSON Schema (with
// the fields that are secrets), and for a destination the sync modes it implements. Asked once
// per connector *program* and cached in the store, shared by every connection that uses it: the
// cache key is a fingerprint of the program (a reference connector's version and build, a
// command's resolved file and its contents, an image reference), so installing another version
// asks again and a config change does not.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isPinnedImage, plainEnv, type Connection, type ConnectorDefinition } from '../../shared/connections.js';
import { connectionConfigIssues, specSecretValues } from '../../shared/connector-spec.js';
import { ConnectorError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { PACKAGE_ROOT, PACKAGE_VERSION } from '../../shared/paths.js';
import type { ConnectorSpecification } from '../../shared/protocol.js';
import type { ConnectorLauncher } from '../../shared/ports/connector-launcher.js';
import type { ConnectorIdentity } from '../../shared/store/runs.js';
import type { SpecStore } from '../../shared/store/specs.js';
import { runConnectorCommand, traceFailure } from './connector-output.js';
import { resolveProgram } from '../launch/program.js';

export interface SpecDeps {
  specs: Pick<SpecStore, 'get' | 'put'>;
  launcher: ConnectorLauncher;
  logger: Logger;
  maxLineBytes: number;
  tailLines: number;
  /** Kills a `spec` still running when the sync is stopped. */
  signal?: AbortSignal | undefined;
}

/**
 * Identifies the program a definition runs, as this host sees it. Config and resources are left
 * out (they do not change what `spec` prints); env is in (AIRBYTE_ENTRYPOINT and the like
 * change which program runs), hashed like the rest, so no value shows.
 *
 * An image is identified by its reference: a tag moved to another build keeps its cached spec
 * until the definition names the image by digest (repo@sha256:…), which is what pins it.
 */
export async function connectorFingerprint(definition: ConnectorDefinition): Promise<string> {
  return (await connectorIdentity(definition)).fingerprint;
}

/** What a run record says of the program: a readable reference, and the fingerprint. */
export async function connectorIdentity(definition: ConnectorDefinition): Promise<ConnectorIdentity> {
  const hash = createHash('sha256');
  const env = Object.entries(definition.env ?? {}).sort(([a], [b]) => a.localeCompare(b));
  hash.update(JSON.stringify({ env }));
  let ref: string;
  if (definition.connector !== undefined) {
    const main = join(PACKAGE_ROOT, 'dist', 'connectors', definition.connector, 'main.js');
    hash.update(`builtin\0${definition.connector}\0${PACKAGE_VERSION}\0`);
    if (existsSync(main)) hash.update(await fileDigest(main));
    ref = `${definition.connector}@${PACKAGE_VERSION}`;
  } else if (definition.command !== undefined) {
    hash.update(`command\0${JSON.stringify(definition.command)}\0`);
    const resolved = await resolveProgram(definition.command[0]!, plainEnv(definition).PATH ?? process.env.PATH ?? '/usr/bin:/bin');
    // Unresolved: the launch will fail with the reason; nothing is cached under this key then.
    if (resolved.ok) hash.update(`${resolved.real}\0${await fileDigest(resolved.real)}`);
    ref = [resolved.ok ? resolved.real : definition.command[0]!, ...definition.command.slice(1)].join(' ');
  } else {
    hash.update(`image\0${definition.image ?? ''}`);
    ref = definition.image ?? '';
  }
  return { ref, fingerprint: hash.digest('hex').slice(0, 24), ...(definition.version !== undefined ? { version: definition.version } : {}) };
}

/** Digests by path, size and mtime: a connector binary of tens of MB is read once, not per sync. */
const digests = new Map<string, string>();

/** sha256 of a file, with its size and mtime: a program replaced in place gets a new fingerprint. */
async function fileDigest(path: string): Promise<string> {
  const s = await stat(path);
  const key = `${path}\0${s.size}\0${s.mtimeMs}`;
  const known = digests.get(key);
  if (known) return known;
  const hash = createHash('sha256').update(`${s.size}\0${s.mtimeMs}\0`);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  const digest = hash.digest('hex');
  if (digests.size > 1000) digests.clear();
  digests.set(key, digest);
  return digest;
}

export interface SpecResult {
  /** Undefined when the connector gave none (a script that only speaks read/write). */
  spec: ConnectorSpecification | undefined;
  identity: ConnectorIdentity;
  cached: boolean;
}

/**
 * The connector's SPEC, from the cache or by running `spec`. A connector that cannot start
 * throws a config_error (permanent); one that reports an error TRACE throws that, classified.
 * One that exits 0 without a SPEC has none, and that is cached too; one that dies without a
 * SPEC has none for this sync, and is asked again next time.
 */
export async function connectorSpec(definition: ConnectorDefinition, role: 'source' | 'destination', runId: string, deps: SpecDeps): Promise<SpecResult> {
  const identity = await connectorIdentity(definition);
  const fromCache = async (): Promise<SpecResult | undefined> => {
    const cached = await deps.specs.get(identity.fingerprint);
    return cached ? { spec: cached.spec ?? undefined, identity, cached: true } : undefined;
  };
  return (await fromCache()) ?? askOnce(deps.specs, identity.fingerprint, fromCache, () => askSpec(definition, role, runId, identity, deps));
}

/** Specs being asked by this process, per store: a program's first syncs share one `spec` run. */
const asking = new WeakMap<object, Map<string, Promise<unknown>>>();

/**
 * Runs `ask` unless the same program's spec is already being asked for the same store; then
 * waits for that ask to end and reads the cache: syncs of a new program starting together (a
 * runner's concurrent slots, often one connector on many connections) would otherwise each
 * start a connector (on Kubernetes, a pod and a Secret) for the same answer. Only what was
 * cached is shared: a waiter whose leader cached nothing (killed with its sync, a timeout, an
 * error TRACE, a program that died without a SPEC) asks on its own, so one sync's cancellation
 * or failure never becomes another's.
 */
async function askOnce(store: object, fingerprint: string, fromCache: () => Promise<SpecResult | undefined>, ask: () => Promise<SpecResult>): Promise<SpecResult> {
  let inFlight = asking.get(store);
  if (!inFlight) asking.set(store, (inFlight = new Map<string, Promise<unknown>>()));
  const leader = inFlight.get(fingerprint);
  if (leader) {
    await leader.catch(() => undefined);
    return (await fromCache()) ?? ask();
  }
  const mine = ask();
  inFlight.set(fingerprint, mine);
  try {
    return await mine;
  } finally {
    if (inFlight.get(fingerprint) === mine) inFlight.delete(fingerprint);
  }
}

async function askSpec(definition: ConnectorDefinition, role: 'source' | 'destination', runId: string, identity: ConnectorIdentity, deps: SpecDeps): Promise<SpecResult> {
  const { fingerprint } = identity;

  const secrets = new Set<string>();
  const result = await runConnectorCommand(
    deps.launcher,
    { runId: `${runId}-spec-${role}`, role, connector: definition, command: 'spec', files: {} },
    secrets,
    deps.logger,
    { timeoutMs: 5 * 60_000, maxLineBytes: deps.maxLineBytes, tailLines: deps.tailLines, signal: deps.signal },
  );
  const message = result.messages.find((m) => m.type === 'SPEC');
  if (message?.type === 'SPEC' && isSpec(message.spec)) {
    await deps.specs.put(fingerprint, { spec: message.spec, fetchedAt: new Date().toISOString() });
    return { spec: message.spec, identity, cached: false };
  }
  const trace = result.messages.find((m) => m.type === 'TRACE' && m.trace.type === 'ERROR');
  if (trace?.type === 'TRACE') {
    const err = traceFailure(trace.trace, role, secrets);
    err.stderr = { [role]: result.stderr };
    throw err;
  }
  if (message) {
    throw ConnectorError.of({ kind: 'protocol' }, `${role} spec printed a SPEC without a connectionSpecification object`, role);
  }
  if (result.exitCode === 0) {
    await deps.specs.put(fingerprint, { spec: null, fetchedAt: new Date().toISOString() });
  }
  deps.logger.warn({ role, exitCode: result.exitCode }, 'connector gave no SPEC: its config is not validated and, for a destination, only overwrite and append are used');
  return { spec: undefined, identity, cached: false };
}

function isSpec(spec: unknown): spec is ConnectorSpecification {
  if (!spec || typeof spec !== 'object') return false;
  const s = spec as Record<string, unknown>;
  if (!s.connectionSpecification || typeof s.connectionSpecification !== 'object' || Array.isArray(s.connectionSpecification)) return false;
  const modes = s.supported_destination_sync_modes;
  return modes === undefined || (Array.isArray(modes) && modes.every((m) => typeof m === 'string'));
}

export interface ConnectionSpecs {
  source: ConnectorSpecification | undefined;
  destination: ConnectorSpecification | undefined;
  /** Which programs these are: what the run record keeps. */
  identities: { source: ConnectorIdentity; destination: ConnectorIdentity };
}

/** Both connectors' specs if both are cached; undefined otherwise (nothing is run). */
export async function cachedConnectionSpecs(connection: Connection, deps: Pick<SpecDeps, 'specs'>): Promise<ConnectionSpecs | undefined> {
  const [source, destination] = await Promise.all([connectorIdentity(connection.source), connectorIdentity(connection.destination)]);
  const [s, d] = await Promise.all([deps.specs.get(source.fingerprint), deps.specs.get(destination.fingerprint)]);
  if (!s || !d) return undefined;
  return { source: s.spec ?? undefined, destination: d.spec ?? undefined, identities: { source, destination } };
}

/** The values of the fields the specs mark airbyte_secret, added to `secrets`. */
export function addSpecSecrets(connection: Connection, specs: ConnectionSpecs, secrets: Set<string>): void {
  specSecretValues(connection.source.config, specs.source, secrets);
  specSecretValues(connection.destination.config, specs.destination, secrets);
}

/** Both connectors' specs, asked at once; both are awaited, so nothing runs on behind an error. */
export async function connectionSpecs(connection: Connection, runId: string, deps: SpecDeps): Promise<ConnectionSpecs> {
  const [source, destination] = await Promise.allSettled([
    connectorSpec(connection.source, 'source', runId, deps),
    connectorSpec(connection.destination, 'destination', runId, deps),
  ]);
  if (source.status === 'rejected') throw source.reason;
  if (destination.status === 'rejected') throw destination.reason;
  return { source: source.value.spec, destination: destination.value.spec, identities: { source: source.value.identity, destination: destination.value.identity } };
}

/** Refuses a connection whose configs do not match the connectors' specs: a permanent config_error naming every bad field. */
export function assertValidConfigs(connection: Connection, specs: ConnectionSpecs): void {
  const errors = connectionConfigIssues(connection, specs).filter((i) => i.severity === 'error');
  if (errors.length === 0) return;
  const origin = errors[0]!.path.startsWith('source.') ? 'source' : 'destination';
  throw new ConnectorError(`connection "${connection.id}" has an invalid config: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, origin, false, 'config_error');
}

/** requireDigests: an image named by a tag is refused (a config_error), since a tag can move. */
export function assertPinnedImages(connection: Connection): void {
  for (const role of ['source', 'destination'] as const) {
    const image = connection[role].image;
    if (image !== undefined && !isPinnedImage(image)) {
      throw new ConnectorError(`connection "${connection.id}": ${role}.image ${image} is not pinned to a digest (repo@sha256:…), and requireDigests is set`, role, false, 'config_error');
    }
  }
}
