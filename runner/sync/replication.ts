// Both connectors of one sync, running: the source's records piped into the destination, the
// STATE messages the destination echoes handed to the state commits, both stderr streams
// drained, a watchdog on each connector. The first failure the runner observes wins and stops
// the rest; when everything has ended, runner/sync/outcome.ts decides how the sync went.
import type { Config } from '../../shared/config.js';
import type { Connection } from '../../shared/connections.js';
import { asTidepoolError, CancelledError, ConnectorError, LockLostError, ProtocolError, TidepoolError, type FailureInfo } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { AirbyteMessage, AirbyteTraceMessage, ConfiguredAirbyteCatalog } from '../../shared/protocol.js';
import type { ConnectorExit, ConnectorLauncher, ConnectorProcess } from '../../shared/ports/connector-launcher.js';
import { formatDuration } from '../../shared/units.js';
import { describeBytes, LineTooLongError, readLines, sampleOf, TailBuffer } from '../records/lines.js';
import { PumpProgress, PumpStats, pumpRecords } from '../records/pipe.js';
import { collectStderr, logConnectorMessage } from './connector-output.js';
import { isSuccess, protocolOrDeath, replicationOutcome, stoppedReading, type Role } from './outcome.js';
import type { ConnectorStartTimes } from '../../shared/store/runs.js';
import { startTimes, type Marks } from './phases.js';
import type { StateCommits } from './state-commits.js';
import { streamStatusLines } from './stream-status.js';
import { watchConnectors } from './watchdog.js';

export interface ReplicationDeps {
  launcher: ConnectorLauncher;
  config: Pick<Config, 'maxLineBytes' | 'messageTimeout' | 'stderrTailLines' | 'syncTimeout'>;
  logger: Logger;
}

export interface ReplicationInput {
  connection: Connection;
  catalog: ConfiguredAirbyteCatalog;
  /** Names the connectors' runs (temp dirs, containers, pods): `<syncId>-a<attempt>`. */
  runId: string;
  /** When the sync was published: the first record's latency is measured from it. */
  publishedAt: number;
  commits: StateCommits;
  secrets: ReadonlySet<string>;
}

export interface ReplicationResult {
  /** Unset when the sync succeeded. Its message is not redacted yet. */
  failure?: TidepoolError;
  /** The connectors' last stderr lines, redacted. */
  stderr: NonNullable<FailureInfo['stderr']>;
  stats: PumpStats;
  sourceStates: number;
  firstRecordMs?: number;
  /** Which build ran, where the platform says (a pod's imageID, docker's image id). */
  images: { source?: string; destination?: string };
  /** The moments the replication passed, for the run's phases (runner/sync/phases.ts). */
  marks: Pick<Marks, 'launchedAt' | 'firstByteAt' | 'sourceEndedAt' | 'destinationEndedAt'>;
  /** How each connector came up, where its launcher could tell. */
  connectorStart: Partial<Record<Role, ConnectorStartTimes>>;
}

/** How long a connector whose output already ended gets to report its exit. */
const EXIT_AFTER_EOF_WAIT_MS = 10_000;
/** How long a destination whose input broke gets to report that it never started. */
const EXIT_AFTER_BROKEN_INPUT_MS = 2_000;

/** Runs both connectors to their end. Never throws: every failure is in the result. */
export function replicate(input: ReplicationInput, deps: ReplicationDeps, signal: AbortSignal): Promise<ReplicationResult> {
  return new Replication(input, deps).run(signal);
}

class Replication {
  private readonly abort = new AbortController();
  private observed: TidepoolError | undefined;
  private readonly tails: Record<Role, TailBuffer>;
  private readonly stopped: Record<Role, boolean> = { source: false, destination: false };
  private readonly traces: Partial<Record<Role, AirbyteTraceMessage>> = {};
  private readonly stats = new PumpStats();
  private readonly progress = new PumpProgress();
  private sourceStates = 0;
  private firstRecordMs: number | undefined;
  // What the watchdog samples: see runner/sync/watchdog.ts for what counts as a sign of life.
  private sourceExited = false;
  private sourceOutputEnded = false;
  private destinationExited = false;
  private destinationInputEnded = false;
  private destinationOutputBytes = 0;
  private readonly marks: ReplicationResult['marks'] = {};
  private readonly startups: Partial<Record<Role, ConnectorProcess['startup']>> = {};

  constructor(
    private readonly input: ReplicationInput,
    private readonly deps: ReplicationDeps,
  ) {
    this.tails = { source: new TailBuffer(deps.config.stderrTailLines), destination: new TailBuffer(deps.config.stderrTailLines) };
  }

  /** The first failure wins; it stops everything else. */
  private fail(err: TidepoolError): void {
    if (this.observed) return;
    this.observed = err;
    // A lost lock means another runner owns the connection: commit nothing more.
    if (err instanceof LockLostError) this.input.commits.halt();
    this.abort.abort(err);
  }

  async run(signal: AbortSignal): Promise<ReplicationResult> {
    const { config } = this.deps;
    const onOuterAbort = () => {
      const reason: unknown = signal.reason;
      this.fail(reason instanceof TidepoolError ? reason : new CancelledError('sync cancelled: the runner is shutting down'));
    };
    if (signal.aborted) onOuterAbort();
    signal.addEventListener('abort', onOuterAbort, { once: true });
    // A state commit that fails (the store down, the fence refused) stops the sync like any failure.
    const { commits } = this.input;
    const onCommitFailed = () => this.fail(asTidepoolError(commits.failed.reason));
    commits.failed.addEventListener('abort', onCommitFailed, { once: true });
    // The connection's own syncTimeout, else the runner's. Past it the sync is stopped like any
    // failure (connectors killed, nothing committed past the last echoed STATE) and retried.
    const syncTimeout = this.input.connection.syncTimeout ?? config.syncTimeout;
    const timeout = setTimeout(() => this.fail(new TidepoolError(`sync exceeded syncTimeout (${formatDuration(syncTimeout)})`, true, 'runner', 'timeout')), syncTimeout);
    let source: ConnectorProcess | undefined;
    let destination: ConnectorProcess | undefined;
    let stopWatching = (): void => undefined;
    try {
      this.marks.launchedAt = Date.now();
      destination = await this.start('destination');
      source = await this.start('source');
      const [src, dst] = [source, destination];
      this.abort.signal.addEventListener('abort', () => {
        src.kill('SIGKILL');
        dst.kill('SIGKILL');
      }, { once: true });
      stopWatching = this.watch(src, dst);
      this.abort.signal.addEventListener('abort', () => stopWatching(), { once: true });
      const [sourceExit, destinationExit] = await this.flow(src, dst);
      await this.input.commits.settled();
      const failure = replicationOutcome(
        {
          observed: this.observed,
          source: { exit: sourceExit, trace: this.traces.source, stoppedByRunner: this.stopped.source, stderrTail: this.tails.source.get(this.input.secrets) },
          destination: { exit: destinationExit, trace: this.traces.destination, stoppedByRunner: this.stopped.destination, stderrTail: this.tails.destination.get(this.input.secrets) },
          sourceStates: this.sourceStates,
          echoedStates: this.input.commits.echoed,
        },
        this.input.secrets,
      );
      return this.result(failure, { source: sourceExit.image, destination: destinationExit.image });
    } catch (err) {
      // A connector that could not be started at all (the other may be running already).
      source?.kill('SIGKILL');
      destination?.kill('SIGKILL');
      await Promise.all([source?.exit, destination?.exit]);
      return this.result(this.observed ?? asTidepoolError(err), {});
    } finally {
      stopWatching();
      clearTimeout(timeout);
      signal.removeEventListener('abort', onOuterAbort);
      commits.failed.removeEventListener('abort', onCommitFailed);
    }
  }

  private async start(role: Role): Promise<ConnectorProcess> {
    const { connection, catalog, runId, commits } = this.input;
    const state = commits.state;
    const proc = await this.deps.launcher.start({
      runId: `${runId}-${role}`,
      role,
      connector: connection[role],
      command: role === 'source' ? 'read' : 'write',
      files: {
        config: connection[role].config,
        catalog,
        ...(role === 'source' && state.length > 0 ? { state } : {}),
      },
    });
    this.startups[role] = proc.startup;
    return proc;
  }

  /** Ends a connector because the other one failed: its own exit is then no cause (unless it had already ended by itself). */
  private stop(role: Role, proc: ConnectorProcess): void {
    if (!(role === 'source' ? this.sourceExited : this.destinationExited)) this.stopped[role] = true;
    proc.kill('SIGKILL');
  }

  /** Everything that runs until both connectors ended; resolves their exits. */
  private async flow(src: ConnectorProcess, dst: ConnectorProcess): Promise<[ConnectorExit, ConnectorExit]> {
    const { secrets } = this.input;
    const logger = this.deps.logger;
    void src.exit.then(() => (this.sourceExited = true));
    void dst.exit.then(() => (this.destinationExited = true));
    const stderr = [
      collectStderr(src.stderr, this.tails.source, secrets, logger.child({ connector: 'source' })),
      collectStderr(dst.stderr, this.tails.destination, secrets, logger.child({ connector: 'destination' })),
    ];
    // The destination ending early (crash, or stops reading) makes the source pointless.
    const destinationExit = dst.exit.then((e) => {
      if (!isSuccess(e)) this.stop('source', src);
      return e;
    });
    const [sourceExit, destExit] = await Promise.all([src.exit, destinationExit, this.pump(src, dst), this.readDestination(dst), ...stderr]);
    return [sourceExit, destExit];
  }

  /** Source stdout → destination stdin, then COMPLETE and EOF after a clean source. */
  private async pump(src: ConnectorProcess, dst: ConnectorProcess): Promise<void> {
    const { catalog, publishedAt, secrets } = this.input;
    const logger = this.deps.logger.child({ connector: 'source' });
    try {
      await pumpRecords(
        src.stdout,
        dst.stdin,
        this.stats,
        {
          onState: () => {
            this.sourceStates++;
          },
          onFirstRecord: () => {
            this.firstRecordMs = Date.now() - publishedAt;
          },
          onMessage: (_type, line) => {
            const m = parseMessage(line);
            if (m?.type === 'LOG') logConnectorMessage(logger, m.log, secrets);
            if (m?.type === 'TRACE' && m.trace.type === 'ERROR') this.traces.source = m.trace;
          },
        },
        { maxLineBytes: this.deps.config.maxLineBytes, signal: this.abort.signal, progress: this.progress, prologue: streamStatusLines(catalog, 'STARTED'), secrets },
      );
    } catch (err) {
      this.marks.sourceEndedAt = Date.now();
      // A line over maxLineBytes is no line cut short by a death: it is the source's error as is.
      if (err instanceof LineTooLongError) this.fail(err);
      else if (err instanceof ProtocolError) this.fail(protocolOrDeath(err, await this.deathOf('source', src)));
      else if (!this.abort.signal.aborted) {
        this.fail(stoppedReading((err as Error).message, await exitWithin(dst, EXIT_AFTER_BROKEN_INPUT_MS)));
      }
      return;
    }
    this.sourceOutputEnded = true;
    this.marks.sourceEndedAt = Date.now();
    // The end of a complete input is COMPLETE for every stream, then EOF: the destination
    // commits and, for overwrite streams, removes the previous generation's rows. A destination
    // that saw STARTED takes EOF without COMPLETE (what a killed runner leaves) as input cut
    // short and rolls back to its last STATE (runner/sync/stream-status.ts). After a failed
    // source nothing is finalized either, and the destination is stopped rather than given EOF:
    // one that does not speak STREAM_STATUS would take EOF as the end. What it already
    // confirmed stays committed.
    const exit = await src.exit;
    if (isSuccess(exit) && !this.traces.source && !this.abort.signal.aborted) {
      const complete = streamStatusLines(catalog, 'COMPLETE');
      this.progress.written += complete.length;
      this.destinationInputEnded = true;
      dst.stdin.end(complete);
    } else {
      this.stop('destination', dst);
    }
  }

  /** The destination's stdout: echoed STATE to commit, LOG to log, an error TRACE to keep. */
  private async readDestination(dst: ConnectorProcess): Promise<void> {
    const { commits, secrets } = this.input;
    const logger = this.deps.logger.child({ connector: 'destination' });
    const onChunk = (bytes: number) => {
      this.destinationOutputBytes += bytes;
    };
    try {
      for await (const line of readLines(dst.stdout, this.deps.config.maxLineBytes, { origin: 'destination', onChunk })) {
        if (line.length === 0) continue;
        const m = parseMessage(line);
        if (!m) {
          this.marks.destinationEndedAt = Date.now();
          const err = new ProtocolError(`destination wrote a line that is not an Airbyte message: ${sampleOf(line, 0, line.length, secrets)}`, 'destination');
          this.fail(protocolOrDeath(err, await this.deathOf('destination', dst)));
          return;
        }
        if (m.type === 'STATE') commits.confirm(m.state);
        else if (m.type === 'LOG') logConnectorMessage(logger, m.log, secrets);
        else if (m.type === 'TRACE' && m.trace.type === 'ERROR') this.traces.destination = m.trace;
      }
      this.marks.destinationEndedAt = Date.now();
    } catch (err) {
      this.marks.destinationEndedAt = Date.now();
      if (err instanceof ProtocolError) this.fail(err);
    }
  }

  /** A connector whose output has ended, as it ends: its exit, if it comes in time. */
  private async deathOf(role: Role, proc: ConnectorProcess) {
    if (!proc.stdout.readableEnded) return undefined;
    const exit = await exitWithin(proc, EXIT_AFTER_EOF_WAIT_MS);
    return exit && { exit, stderrTail: this.tails[role].get(this.input.secrets) };
  }

  /** Fails the sync when a connector gives no sign of life for messageTimeout (runner/sync/watchdog.ts). */
  private watch(src: ConnectorProcess, dst: ConnectorProcess): () => void {
    const { messageTimeout } = this.deps.config;
    const silence = formatDuration(messageTimeout);
    const hung = (origin: Role, what: string) => this.fail(new ConnectorError(`${origin} ${what} (messageTimeout): considered hung and stopped`, origin, true, 'timeout'));
    return watchConnectors(messageTimeout, [
      {
        sample: () => ({ progress: this.progress.read, expected: !this.sourceExited && !this.progress.waiting }),
        onHung: () => hung('source', this.sourceOutputEnded ? `closed its output but did not exit for ${silence}` : `wrote nothing on stdout for ${silence}`),
      },
      {
        // Input counts as taken once it left the runner's buffer for the pipe (or socket).
        sample: () => ({
          progress: this.destinationOutputBytes + this.progress.written - dst.stdin.writableLength,
          expected: !this.destinationExited && (this.destinationInputEnded || dst.stdin.writableLength > 0),
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
  }

  private result(failure: TidepoolError | undefined, images: { source?: string | undefined; destination?: string | undefined }): ReplicationResult {
    return {
      ...(failure ? { failure } : {}),
      stderr: { source: this.tails.source.get(this.input.secrets), destination: this.tails.destination.get(this.input.secrets) },
      stats: this.stats,
      sourceStates: this.sourceStates,
      ...(this.firstRecordMs !== undefined ? { firstRecordMs: this.firstRecordMs } : {}),
      images: { ...(images.source ? { source: images.source } : {}), ...(images.destination ? { destination: images.destination } : {}) },
      marks: { ...this.marks, ...(this.progress.firstByteAt !== undefined ? { firstByteAt: this.progress.firstByteAt } : {}) },
      connectorStart: this.connectorStart(),
    };
  }

  private connectorStart(): ReplicationResult['connectorStart'] {
    const out: ReplicationResult['connectorStart'] = {};
    for (const role of ['source', 'destination'] as const) {
      const times = startTimes(this.startups[role]);
      if (times) out[role] = times;
    }
    return out;
  }
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
