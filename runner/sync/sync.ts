// One sync, start to end: lock the connection, load its state, run source and destination
// through the ConnectorLauncher, pipe records, commit the state the destination echoes, record
// the run. The consumer decides what happens to the message afterwards.
import type { Config } from '../../shared/config.js';
import type { Connection } from '../../shared/connections.js';
import { destinationSyncModes } from '../../shared/connector-spec.js';
import {
  CancelledError,
  ConnectorError,
  LockLostError,
  LockTimeoutError,
  ProtocolError,
  TidepoolError,
  UnknownConnectionError,
  toFailure,
  type FailureInfo,
} from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { SyncRequest } from '../../shared/messages.js';
import { mergeState, type AirbyteMessage, type AirbyteStateMessage, type AirbyteTraceMessage } from '../../shared/protocol.js';
import type { ConnectorExit, ConnectorLauncher, ConnectorProcess } from '../../shared/ports/connector-launcher.js';
import { redactText, secretValues } from '../../shared/redact.js';
import type { Store } from '../../shared/store/index.js';
import type { LockHandle } from '../../shared/store/locks.js';
import type { RunRecord } from '../../shared/store/runs.js';
import { StaleLockError } from '../../shared/store/state.js';
import { backoffDelay, sleep } from '../../shared/backoff.js';
import { formatDuration } from '../../shared/units.js';
import { configureCatalog, discoverCatalog } from './catalog.js';
import { checkConnectors } from './check.js';
import { addSpecSecrets, assertPinnedImages, assertValidConfigs, cachedConnectionSpecs, connectionSpecs } from './spec.js';
import { collectStderr, logConnectorMessage, traceFailure } from './connector-output.js';
import { describeBytes, LineTooLongError, readLines, sampleOf, TailBuffer } from '../records/lines.js';
import { PumpProgress, PumpStats, pumpRecords, SourceProtocolError } from '../records/pipe.js';
import { streamStatusLines } from './stream-status.js';
import { watchConnectors } from './watchdog.js';

export type SyncConfig = Pick<Config, 'lockTtl' | 'lockWait' | 'maxLineBytes' | 'messageTimeout' | 'requireDigests' | 'stderrTailLines' | 'syncTimeout'>;

export interface SyncDeps {
  store: Pick<Store, 'connections' | 'state' | 'runs' | 'locks' | 'specs'>;
  launcher: ConnectorLauncher;
  config: SyncConfig;
  logger: Logger;
  runnerId: string;
}

export interface SyncOutcome {
  run: RunRecord;
  /** Set when the sync failed. */
  failure?: FailureInfo;
}

/**
 * Runs one sync. Throws only for failures that happen before there is a run to record (unknown
 * connection, lock timeout, cancelled while waiting); everything after is in the outcome.
 */
export async function runSync(request: SyncRequest, attempt: number, deps: SyncDeps, signal: AbortSignal): Promise<SyncOutcome> {
  const { store, config, runnerId } = deps;
  const logger = deps.logger.child({ syncId: request.syncId, connectionId: request.connectionId, attempt });
  const found = await store.connections.getVersioned(request.connectionId);
  if (!found) throw new UnknownConnectionError(request.connectionId);
  const { connection } = found;

  const lock = await acquireLock(deps, connection.id, signal, logger);
  const started = Date.now();
  const run: RunRecord = {
    syncId: request.syncId,
    connectionId: connection.id,
    status: 'running',
    attempt,
    runnerId,
    fullRefresh: request.fullRefresh,
    requestedAt: request.requestedAt,
    startedAt: new Date(started).toISOString(),
    records: 0,
    bytes: 0,
    streams: {},
    stateCommits: 0,
    ...(found.version > 0 ? { connectionVersion: found.version } : {}),
  };
  const lockLost = new AbortController();
  const renewEvery = Math.max(500, Math.floor(config.lockTtl / 3));
  const renewer = setInterval(() => {
    store.locks.renew(lock, config.lockTtl).then(
      (ok) => {
        if (!ok) lockLost.abort(new LockLostError(connection.id));
      },
      (err: unknown) => logger.warn({ err: (err as Error).message }, 'lock renewal failed; retrying'),
    );
  }, renewEvery);
  try {
    await store.runs.put(run);
    logger.info({ fullRefresh: request.fullRefresh, lockToken: lock.token }, 'sync started');
    let failure: FailureInfo | undefined;
    try {
      await replicate(connection, request, attempt, lock, run, deps, AbortSignal.any([signal, lockLost.signal]), logger);
    } catch (err) {
      failure = err instanceof ReplicationError ? err.failure : toFailure(err);
    }
    const finished = Date.now();
    run.finishedAt = new Date(finished).toISOString();
    run.durationMs = finished - started;
    run.status = failure ? 'failed' : 'succeeded';
    if (failure) run.error = failure;
    await store.runs.put(run);
    logger[failure ? 'warn' : 'info'](
      { status: run.status, records: run.records, bytes: run.bytes, durationMs: run.durationMs, stateVersion: run.stateVersion, ...(failure ? { error: failure.message, origin: failure.origin } : {}) },
      failure ? 'sync failed' : 'sync succeeded',
    );
    return failure ? { run, failure } : { run };
  } finally {
    clearInterval(renewer);
    await store.locks.release(lock).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'lock release failed; it expires by itself'));
  }
}

/** Waits for the connection's lock, polling with jittered backoff up to lockWait. */
async function acquireLock(deps: SyncDeps, connectionId: string, signal: AbortSignal, logger: Logger): Promise<LockHandle> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    if (signal.aborted) throw new CancelledError(`cancelled while waiting for the lock of connection "${connectionId}"`);
    const lock = await deps.store.locks.tryAcquire(connectionId, deps.runnerId, deps.config.lockTtl);
    if (lock) return lock;
    const waited = Date.now() - started;
    if (waited >= deps.config.lockWait) throw new LockTimeoutError(connectionId, waited);
    if (attempt === 0) logger.info('connection busy with another sync; waiting for its lock');
    await sleep(Math.min(backoffDelay(attempt, { baseMs: 100, factor: 2, capMs: 2000 }), deps.config.lockWait - waited), signal);
  }
}

class ReplicationError extends Error {
  constructor(readonly failure: FailureInfo) {
    super(failure.message);
  }
}

async function replicate(
  connection: Connection,
  request: SyncRequest,
  attempt: number,
  lock: LockHandle,
  run: RunRecord,
  deps: SyncDeps,
  signal: AbortSignal,
  logger: Logger,
): Promise<void> {
  const { store, launcher, config } = deps;
  const runId = `${request.syncId}-a${attempt}`;
  const commandDeps = { connections: store.connections, specs: store.specs, launcher, logger, maxLineBytes: config.maxLineBytes, tailLines: config.stderrTailLines };
  // What the connectors' specs say comes first: which config fields are secrets (needed before
  // any connector output is logged), whether the configs are valid at all, and which sync modes
  // the destination implements. Specs are cached per connector program, so usually they are
  // known at once: an invalid config then runs nothing. A program used for the first time is
  // asked for its spec while check and discover run beside it (each a process start, on
  // Kubernetes a pod start; all read-only); their output waits for the spec's secrets before
  // anything of it is logged, and the spec's verdict on the configs is judged first.
  if (config.requireDigests) assertPinnedImages(connection);
  const secrets = secretValues(connection);
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
  run.connectors = specs.identities;
  assertValidConfigs(connection, specs);
  if (checked.status === 'rejected') throw checked.reason;
  if (discovered.status === 'rejected') throw discovered.reason;
  const catalog = configureCatalog(discovered.value, connection, request.fullRefresh, destinationSyncModes(specs.destination));
  const committed = request.fullRefresh ? undefined : await store.state.get(connection.id);
  let current: AirbyteStateMessage[] = committed?.state ?? [];

  const sourceTail = new TailBuffer(config.stderrTailLines);
  const destinationTail = new TailBuffer(config.stderrTailLines);
  const stderrOf = () => ({ source: sourceTail.get(), destination: destinationTail.get() });

  // The first failure wins; it aborts the rest.
  const abort = new AbortController();
  let failure: TidepoolError | undefined;
  const fail = (err: TidepoolError) => {
    if (!failure) {
      failure = err;
      abort.abort(err);
    }
  };
  const onOuterAbort = () => {
    const reason: unknown = signal.reason;
    fail(reason instanceof TidepoolError ? reason : new CancelledError('sync cancelled: the runner is shutting down'));
  };
  if (signal.aborted) onOuterAbort();
  signal.addEventListener('abort', onOuterAbort, { once: true });
  const timeout = setTimeout(() => fail(new TidepoolError(`sync exceeded syncTimeout (${config.syncTimeout} ms)`, true, 'runner', 'timeout')), config.syncTimeout);

  let destination: ConnectorProcess | undefined;
  let source: ConnectorProcess | undefined;
  let stopWatching = (): void => undefined;
  try {
    destination = await launcher.start({
      runId: `${runId}-destination`,
      role: 'destination',
      connector: connection.destination,
      command: 'write',
      files: { config: connection.destination.config, catalog },
    });
    source = await launcher.start({
      runId: `${runId}-source`,
      role: 'source',
      connector: connection.source,
      command: 'read',
      files: { config: connection.source.config, catalog, ...(current.length > 0 ? { state: current } : {}) },
    });
    const src = source;
    const dst = destination;
    abort.signal.addEventListener('abort', () => {
      src.kill('SIGKILL');
      dst.kill('SIGKILL');
    }, { once: true });

    let sourceStates = 0;
    let echoedStates = 0;
    let sourceTrace: AirbyteTraceMessage | undefined;
    let destinationTrace: AirbyteTraceMessage | undefined;
    let commits: Promise<void> = Promise.resolve();
    const stats = new PumpStats();
    const publishedAt = Date.parse(request.requestedAt);

    const sourceStderr = collectStderr(src.stderr, sourceTail, secrets, logger.child({ connector: 'source' }));
    const destinationStderr = collectStderr(dst.stderr, destinationTail, secrets, logger.child({ connector: 'destination' }));

    // What the watchdog samples: see runner/sync/watchdog.ts for what counts as a sign of life.
    const progress = new PumpProgress();
    let sourceExited = false;
    let sourceOutputEnded = false;
    let destinationExited = false;
    let destinationInputEnded = false;
    let destinationOutputBytes = 0;
    void src.exit.then(() => (sourceExited = true));
    void dst.exit.then(() => (destinationExited = true));
    const silence = formatDuration(config.messageTimeout);
    const hung = (origin: 'source' | 'destination', what: string) =>
      fail(new ConnectorError(`${origin} ${what} (messageTimeout): considered hung and stopped`, origin, true, 'timeout'));
    stopWatching = watchConnectors(config.messageTimeout, [
      {
        sample: () => ({ progress: progress.read, expected: !sourceExited && !progress.waiting }),
        onHung: () => hung('source', sourceOutputEnded ? `closed its output but did not exit for ${silence}` : `wrote nothing on stdout for ${silence}`),
      },
      {
        // Input counts as taken once it left the runner's buffer for the pipe (or socket).
        sample: () => ({
          progress: destinationOutputBytes + progress.written - dst.stdin.writableLength,
          expected: !destinationExited && (destinationInputEnded || dst.stdin.writableLength > 0),
        }),
        onHung: () => {
          const queued = dst.stdin.writableLength;
          hung(
            'destination',
            queued > 0
              ? `neither read its input nor wrote anything on stdout for ${silence}, with ${describeBytes(queued)} of input waiting`
              : `neither exited nor wrote anything on stdout for ${silence} after its input ended`,
          );
        },
      },
    ]);
    abort.signal.addEventListener('abort', () => stopWatching(), { once: true });

    const pump = pumpRecords(
      src.stdout,
      dst.stdin,
      stats,
      {
        onState: () => {
          sourceStates++;
        },
        onFirstRecord: () => {
          run.firstRecordMs = Date.now() - publishedAt;
        },
        onMessage: (_type, line) => {
          const m = parseMessage(line);
          if (m?.type === 'LOG') logConnectorMessage(logger.child({ connector: 'source' }), m.log, secrets);
          if (m?.type === 'TRACE' && m.trace.type === 'ERROR') sourceTrace = m.trace;
        },
      },
      { maxLineBytes: config.maxLineBytes, signal: abort.signal, progress, prologue: streamStatusLines(catalog, 'STARTED') },
    ).then(
      async () => {
        sourceOutputEnded = true;
        // The end of a complete input is COMPLETE for every stream, then EOF: the destination
        // commits and, for overwrite streams, removes the previous generation's rows. A
        // destination that saw STARTED takes EOF without COMPLETE (what a killed runner leaves)
        // as input cut short and rolls back to its last STATE (runner/sync/stream-status.ts).
        // After a failed source nothing is finalized either, and the destination is killed
        // rather than given EOF: one that does not speak STREAM_STATUS would take EOF as the
        // end. What it already confirmed stays committed.
        const e = await src.exit;
        if (isSuccess(e) && !sourceTrace && !abort.signal.aborted) {
          const complete = streamStatusLines(catalog, 'COMPLETE');
          progress.written += complete.length;
          destinationInputEnded = true;
          dst.stdin.end(complete);
        } else {
          dst.kill('SIGKILL');
        }
      },
      async (err: unknown) => {
        if (err instanceof SourceProtocolError) fail(await protocolOrDeath(new ProtocolError(err.message, 'source'), src, sourceTail));
        else if (err instanceof LineTooLongError) fail(new ProtocolError(`source ${err.message}`, 'source'));
        else if (!abort.signal.aborted) {
          // A destination whose pod never started also "stops reading": say which it was.
          const e = await exitWithin(dst, 2_000);
          fail(e?.notStarted ? exitFailure('destination', e, destinationTail) : new ConnectorError(`destination stopped reading its input: ${(err as Error).message}`, 'destination', true, 'system_error'));
        }
      },
    );

    const destinationOutput = (async () => {
      try {
        const onChunk = (bytes: number) => {
          destinationOutputBytes += bytes;
        };
        for await (const line of readLines(dst.stdout, config.maxLineBytes, { onChunk })) {
          if (line.length === 0) continue;
          const m = parseMessage(line);
          if (!m) {
            fail(await protocolOrDeath(new ProtocolError(`destination wrote a line that is not an Airbyte message: ${sampleOf(line, 0, line.length)}`, 'destination'), dst, destinationTail));
            return;
          }
          if (m.type === 'STATE') {
            echoedStates++;
            const checkpoint = m.state;
            // Commits run one after another, in the order the destination confirmed them.
            commits = commits.then(async () => {
              if (failure instanceof LockLostError) return;
              try {
                current = mergeState(current, checkpoint);
                run.stateVersion = await store.state.commit(lock, current, request.syncId);
                run.stateCommits++;
              } catch (err) {
                fail(err instanceof StaleLockError ? new LockLostError(connection.id) : new TidepoolError(`state commit failed: ${(err as Error).message}`, true, 'store', 'system_error'));
              }
            });
          } else if (m.type === 'LOG') {
            logConnectorMessage(logger.child({ connector: 'destination' }), m.log, secrets);
          } else if (m.type === 'TRACE' && m.trace.type === 'ERROR') {
            destinationTrace = m.trace;
          }
        }
      } catch (err) {
        if (err instanceof LineTooLongError) fail(new ProtocolError(`destination ${err.message}`, 'destination'));
      }
    })();

    // The destination ending early (crash, or stops reading) makes the source pointless.
    const destinationExit = dst.exit.then((e) => {
      if (!isSuccess(e)) src.kill('SIGKILL');
      return e;
    });
    const [sourceExit, destExit] = await Promise.all([src.exit, destinationExit, pump, destinationOutput, sourceStderr, destinationStderr]);
    await commits;

    // Which build ran, where the platform says (a pod's imageID, docker's image id).
    if (sourceExit.image) run.connectors.source.image = sourceExit.image;
    if (destExit.image) run.connectors.destination.image = destExit.image;
    run.records = stats.records;
    run.bytes = stats.bytes;
    run.streams = stats.toJSON();

    // Precedence: what the connectors said about themselves, then how they ended, then what
    // the runner saw. A runner-side failure (protocol, lock, cancel) already set `failure`.
    if (!failure) {
      // A connector that never started comes first: the other one was only stopped because of it.
      if (sourceExit.notStarted) fail(exitFailure('source', sourceExit, sourceTail));
      else if (destExit.notStarted) fail(exitFailure('destination', destExit, destinationTail));
      else if (sourceTrace) fail(traceFailure(sourceTrace, 'source', secrets));
      else if (!isSuccess(sourceExit)) fail(exitFailure('source', sourceExit, sourceTail));
      else if (destinationTrace) fail(traceFailure(destinationTrace, 'destination', secrets));
      else if (!isSuccess(destExit)) fail(exitFailure('destination', destExit, destinationTail));
      else if (sourceStates > 0 && echoedStates === 0) {
        // A destination that exits 0 without echoing any STATE breaks the protocol (it must
        // confirm what it committed), and will do so again: permanent.
        fail(new ProtocolError(`destination confirmed none of the source's ${sourceStates} STATE messages; no state was committed`, 'destination'));
      }
    }
    // Messages quote connector output (a TRACE, a line that is not a message): redacted like
    // the stderr tails before they reach the run record and the dead-letter headers.
    if (failure) throw new ReplicationError({ ...failure.toFailure(), message: redactText(failure.message, secrets), stderr: stderrOf() });
    logger.debug({ sourceStates, echoedStates, streams: run.streams }, 'replication finished');
  } catch (err) {
    source?.kill('SIGKILL');
    destination?.kill('SIGKILL');
    await Promise.all([source?.exit, destination?.exit]);
    if (err instanceof ReplicationError) throw err;
    const f = err instanceof TidepoolError ? err.toFailure() : toFailure(err);
    throw new ReplicationError({ ...f, message: redactText(f.message, secrets), stderr: f.stderr ?? stderrOf() });
  } finally {
    stopWatching();
    clearTimeout(timeout);
    signal.removeEventListener('abort', onOuterAbort);
  }
}

function isSuccess(e: ConnectorExit): boolean {
  return e.code === 0;
}

function exitFailure(origin: 'source' | 'destination', e: ConnectorExit, tail: TailBuffer): ConnectorError {
  if (e.notStarted) return ConnectorError.of({ kind: 'not_started' }, `${origin} could not start: ${e.reason ?? 'no reason given'}`, origin);
  const how = e.reason ?? (e.signal ? `was killed by ${e.signal}` : `exited with code ${String(e.code)}`);
  const last = tail.get().at(-1);
  return ConnectorError.of({ kind: 'exit' }, `${origin} ${how}${last ? `: ${last}` : ''}`, origin);
}

/** How long a connector whose output already ended gets to report its exit. */
const EXIT_AFTER_EOF_WAIT_MS = 10_000;

/**
 * A protocol violation is permanent, but a connector killed mid-write (OOMKilled, a lost pod)
 * leaves a last line cut short that looks like one. When the bad line was the last of its
 * output and the connector then ended badly, its death is the failure: retryable, like any exit.
 */
async function protocolOrDeath(err: ProtocolError, proc: ConnectorProcess, tail: TailBuffer): Promise<TidepoolError> {
  if (!proc.stdout.readableEnded) return err;
  const exit = await exitWithin(proc, EXIT_AFTER_EOF_WAIT_MS);
  return exit && !isSuccess(exit) ? exitFailure(err.origin === 'destination' ? 'destination' : 'source', exit, tail) : err;
}

/** The connector's exit if it comes within `ms`, else undefined. */
async function exitWithin(proc: ConnectorProcess, ms: number): Promise<ConnectorExit | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([proc.exit, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  clearTimeout(timer);
  return exit;
}

function parseMessage(line: Buffer): AirbyteMessage | undefined {
  try {
    const m = JSON.parse(line.toString('utf8')) as unknown;
    return m && typeof m === 'object' && typeof (m as { type?: unknown }).type === 'string' ? (m as AirbyteMessage) : undefined;
  } catch {
    return undefined;
  }
}
