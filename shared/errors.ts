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

/** A connector broke the Airbyte Protocol (a line that is not a message, an unknown type...). */
export class ProtocolError extends TidepoolError {
  override name = 'ProtocolError';
  constructor(message: string, origin: 'source' | 'destination') {
    super(message, false, origin, 'system_error');
  }
}

/** A connector process failed: non-zero exit, killed, or reported an error TRACE. */
export class ConnectorError extends TidepoolError {
  override name = 'ConnectorError';
  constructor(message: string, origin: 'source' | 'destination', retryable: boolean, type: FailureType) {
    super(message, retryable, origin, type);
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

export class CancelledError extends TidepoolError {
  override name = 'CancelledError';
  constructor(message: string) {
    super(message, true, 'runner', 'cancelled');
  }
}

export function toFailure(err: unknown, fallbackOrigin: FailureOrigin = 'runner'): FailureInfo {
  if (err instanceof TidepoolError) return err.toFailure();
  const message = err instanceof Error ? err.message : String(err);
  return { message, retryable: true, origin: fallbackOrigin, type: 'system_error' };
}
