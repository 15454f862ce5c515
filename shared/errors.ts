// Every failure tidepool acts on is one of these. `retryable` decides what happens to the sync
// (retry later, or dead-letter now); origin and type say where and what, for operators and for
// the run record and dead-letter headers.

export type FailureOrigin = 'source' | 'destination' | 'runner' | 'broker' | 'store';
export type FailureType = 'config_error' | 'system_error' | 'transient_error' | 'timeout' | 'cancelled';

export interface FailureInfo {
  message: string;
  retryable: boolean;
  origin: FailureOrigin;
  type: FailureType;
  /** Last lines of each connector's stderr, secrets redacted. */
  stderr?: { source?: string[]; destination?: string[] };
}

export class TidepoolError extends Error {
  override name = 'TidepoolError';
  /** The connectors' last stderr lines when this error came from a connector run. */
  stderr?: FailureInfo['stderr'];
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly origin: FailureOrigin,
    readonly type: FailureType,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  toFailure(): FailureInfo {
    return { message: this.message, retryable: this.retryable, origin: this.origin, type: this.type, ...(this.stderr ? { stderr: this.stderr } : {}) };
  }
}

/** The broker message itself is unusable: not JSON, or not a sync request. Never retried. */
export class InvalidMessageError extends TidepoolError {
  override name = 'InvalidMessageError';
  constructor(message: string) {
    super(message, false, 'runner', 'config_error');
  }
}

export class UnknownConnectionError extends TidepoolError {
  override name = 'UnknownConnectionError';
  constructor(readonly connectionId: string) {
    super(`unknown connection "${connectionId}"`, false, 'runner', 'config_error');
  }
}

/** How a connector run went wrong, as far as classifying it goes. */
export type ConnectorFailureKind =
  /** It said so itself: an error TRACE, with the Airbyte failure_type if it gave one. */
  | { kind: 'trace'; failureType?: string | undefined }
  /** It ended badly without saying why: non-zero exit, a signal, OOMKilled, its pod lost. */
  | { kind: 'exit' }
  /** It broke the Airbyte Protocol: a line that is not a message, an unexpected type, a line over maxLineBytes, a destination that confirms no STATE. */
  | { kind: 'protocol' }
  /** `check` answered FAILED: the connector cannot work with this configuration. */
  | { kind: 'check_failed' }
  /** It never ran: its command is not found or not executable, its image is missing. */
  | { kind: 'not_started' };

export interface Classification {
  retryable: boolean;
  type: FailureType;
}

/**
 * The one table of what a connector failure means (docs/failures.md, "Failures and retries"):
 *
 * - error TRACE `config_error` → permanent: only a person changing the configuration helps, and
 *   retrying just repeats the error maxAttempts times.
 * - error TRACE `transient_error` → retryable: the connector says it may go away by itself.
 * - error TRACE `system_error`, or no or an unknown failure_type → retryable system_error:
 *   Airbyte's default type, and a crash is as likely an environment hiccup as a bug.
 * - ended badly without a TRACE (exit ≠ 0, a signal, OOMKilled, pod lost) → retryable
 *   system_error: what kills a process (memory pressure, a node going away) usually passes.
 * - a protocol violation → permanent system_error: the connector is the same program, with the
 *   same configuration and state, reading the same data on the next attempt, so it breaks the
 *   protocol at the same place again, after redoing the work before it. (A line cut short by a
 *   connector killed mid-write is not classified as one: the runner reports the death, see
 *   runner/sync/sync.ts.)
 * - `check` answered FAILED → permanent config_error.
 * - never started (command not found or not executable, image missing) → permanent
 *   config_error: a path or an image name is wrong, and every retry would fail the same way
 *   (a typo used to cost five attempts and minutes of backoff before the dead letter).
 */
export function classifyConnectorFailure(how: ConnectorFailureKind): Classification {
  switch (how.kind) {
    case 'trace':
      if (how.failureType === 'config_error') return { retryable: false, type: 'config_error' };
      if (how.failureType === 'transient_error') return { retryable: true, type: 'transient_error' };
      return { retryable: true, type: 'system_error' };
    case 'exit':
      return { retryable: true, type: 'system_error' };
    case 'protocol':
      return { retryable: false, type: 'system_error' };
    case 'check_failed':
    case 'not_started':
      return { retryable: false, type: 'config_error' };
  }
}

/** A connector broke the Airbyte Protocol (a line that is not a message, an unknown type...). Permanent: see classifyConnectorFailure. */
export class ProtocolError extends TidepoolError {
  override name = 'ProtocolError';
  constructor(message: string, origin: 'source' | 'destination') {
    const { retryable, type } = classifyConnectorFailure({ kind: 'protocol' });
    super(message, retryable, origin, type);
  }
}

/** A connector process failed: non-zero exit, killed, or reported an error TRACE. */
export class ConnectorError extends TidepoolError {
  override name = 'ConnectorError';
  constructor(message: string, origin: 'source' | 'destination', retryable: boolean, type: FailureType) {
    super(message, retryable, origin, type);
  }

  /** A failure classified by what the connector did (classifyConnectorFailure). */
  static of(how: ConnectorFailureKind, message: string, origin: 'source' | 'destination'): ConnectorError {
    const { retryable, type } = classifyConnectorFailure(how);
    return new ConnectorError(message, origin, retryable, type);
  }
}

/** The connection's lock could not be had in time: another sync of it is running. */
export class LockTimeoutError extends TidepoolError {
  override name = 'LockTimeoutError';
  constructor(connectionId: string, waitedMs: number) {
    super(`connection "${connectionId}" stayed locked by another sync for ${Math.round(waitedMs / 1000)} s`, true, 'runner', 'timeout');
  }
}

/** This runner's lock was taken over (its TTL ran out): its writes must stop. */
export class LockLostError extends TidepoolError {
  override name = 'LockLostError';
  constructor(connectionId: string) {
    super(`lost the lock on connection "${connectionId}" (fencing token superseded)`, true, 'store', 'system_error');
  }
}

/**
 * The store (Redis) failed under a sync: unreachable, timed out, or a record it could not read.
 * Retryable: a store that is back lets the next attempt run. Thrown by the store itself
 * (shared/store/index.ts) so that no caller has to guess where an error came from.
 */
export class StoreError extends TidepoolError {
  override name = 'StoreError';
  constructor(message: string, options?: ErrorOptions) {
    super(message, true, 'store', 'system_error', options);
  }
}

export class CancelledError extends TidepoolError {
  override name = 'CancelledError';
  constructor(message: string) {
    super(message, true, 'runner', 'cancelled');
  }
}

/**
 * An operator cancelled the sync (`tidepool cancel`, the dashboard): it stops like a sync of a
 * runner that shuts down, but is not handed back: the run ends `cancelled`, not retried, not
 * dead-lettered.
 */
export class SyncCancelledError extends TidepoolError {
  override name = 'SyncCancelledError';
  constructor(
    readonly by: string,
    readonly at: string,
  ) {
    super(`sync cancelled by ${by} at ${at}`, false, 'runner', 'cancelled');
  }
}

/**
 * Any error as a TidepoolError. Everything tidepool throws across the sync boundary already is
 * one, with its origin set where it was thrown; what is left is a bug in the runner itself
 * (a TypeError...), retried like any system error.
 */
export function asTidepoolError(err: unknown): TidepoolError {
  if (err instanceof TidepoolError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TidepoolError(message, true, 'runner', 'system_error', { cause: err });
}

export function toFailure(err: unknown): FailureInfo {
  return asTidepoolError(err).toFailure();
}
