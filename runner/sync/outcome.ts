// How a sync ends, decided in one place. Everything that ran (the runner's own observations,
// both connectors' exits and error TRACEs, the STATE counts) goes in; the one failure the sync
// is recorded and dead-lettered with comes out, or none. Pure: the rule can be read, and tested,
// as a table (test/unit/outcome.test.ts).
//
// The order says what explains the most:
// 1. what the runner itself saw go wrong first (a protocol violation, a hung connector, the lock
//    lost, a cancel, the sync timeout): everything after it was a consequence of stopping;
// 2. a connector that never started: the other one was only stopped because of it;
// 3. what a connector said about itself (an error TRACE), the source before the destination;
// 4. how a connector ended (exit code, signal, what the platform says), unless the runner ended
//    it because the other one had already failed: that exit is a consequence, not a cause;
// 5. a destination that exited 0 without confirming any of the source's STATE messages.
import { ConnectorError, ProtocolError, type TidepoolError } from '../../shared/errors.js';
import type { ConnectorExit } from '../../shared/ports/connector-launcher.js';
import type { AirbyteTraceMessage } from '../../shared/protocol.js';
import { traceFailure } from './connector-output.js';

export type Role = 'source' | 'destination';

/** How one connector of a replication ended. */
export interface ConnectorEnd {
  exit: ConnectorExit;
  /** The error TRACE it wrote, if any. */
  trace?: AirbyteTraceMessage | undefined;
  /** The runner ended it because the other connector had failed. */
  stoppedByRunner?: boolean;
  /** Its last stderr lines, redacted: the last one is quoted in an exit failure. */
  stderrTail: readonly string[];
}

export interface ReplicationFacts {
  /** The first failure the runner itself observed while the connectors ran. */
  observed?: TidepoolError | undefined;
  source: ConnectorEnd;
  destination: ConnectorEnd;
  /** STATE messages the source wrote, and those the destination echoed back. */
  sourceStates: number;
  echoedStates: number;
}

export function isSuccess(exit: ConnectorExit): boolean {
  return exit.code === 0;
}

/** The failure a replication ends with, or undefined when it succeeded. Messages are not redacted here: the caller redacts every failure the same way. */
export function replicationOutcome(facts: ReplicationFacts, secrets: ReadonlySet<string>): TidepoolError | undefined {
  if (facts.observed) return facts.observed;
  const { source, destination } = facts;
  if (source.exit.notStarted) return exitFailure('source', source);
  if (destination.exit.notStarted) return exitFailure('destination', destination);
  if (source.trace) return traceFailure(source.trace, 'source', secrets);
  if (!source.stoppedByRunner && !isSuccess(source.exit)) return exitFailure('source', source);
  if (destination.trace) return traceFailure(destination.trace, 'destination', secrets);
  if (!destination.stoppedByRunner && !isSuccess(destination.exit)) return exitFailure('destination', destination);
  if (facts.sourceStates > 0 && facts.echoedStates === 0) {
    // A destination that exits 0 without echoing any STATE breaks the protocol (it must confirm
    // what it committed), and will do so again: permanent.
    return new ProtocolError(`destination confirmed none of the source's ${facts.sourceStates} STATE messages; no state was committed`, 'destination');
  }
  return undefined;
}

/** A connector that ended badly (or never started), in words: how, and its last stderr line. */
export function exitFailure(role: Role, end: Pick<ConnectorEnd, 'exit' | 'stderrTail'>): ConnectorError {
  const { exit } = end;
  if (exit.notStarted) return ConnectorError.of({ kind: 'not_started' }, `${role} could not start: ${exit.reason ?? 'no reason given'}`, role);
  const how = exit.reason ?? (exit.signal ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`);
  const last = end.stderrTail.at(-1);
  return ConnectorError.of({ kind: 'exit' }, `${role} ${how}${last ? `: ${last}` : ''}`, role);
}

/**
 * A protocol violation is permanent, but a connector killed mid-write (OOMKilled, a lost pod)
 * leaves a last line cut short that looks like one. When the bad line was the last of its
 * output and the connector then ended badly (`death`: its exit, awaited after its output
 * ended), its death is the failure: retryable, like any exit.
 */
export function protocolOrDeath(err: ProtocolError, death: Pick<ConnectorEnd, 'exit' | 'stderrTail'> | undefined): TidepoolError {
  return death && !isSuccess(death.exit) ? exitFailure(err.origin === 'destination' ? 'destination' : 'source', death) : err;
}

/**
 * The destination stopped taking input (its stdin broke). One whose pod never started looks
 * the same from here, so its exit, when known, says which it was.
 */
export function stoppedReading(cause: string, exit: ConnectorExit | undefined): ConnectorError {
  if (exit?.notStarted) return exitFailure('destination', { exit, stderrTail: [] });
  return new ConnectorError(`destination stopped reading its input: ${cause}`, 'destination', true, 'system_error');
}
