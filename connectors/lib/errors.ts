import type { FailureType } from '../../shared/protocol.js';

/**
 * An error a connector reports in its TRACE message. The failure type tells the platform what
 * to do: a config_error needs the user to change something, a transient_error is worth a
 * retry, a system_error is a bug or an unexpected state.
 */
export class ConnectorError extends Error {
  override name = 'ConnectorError';
  readonly failureType: FailureType;

  constructor(message: string, failureType: FailureType = 'system_error', options?: ErrorOptions) {
    super(message, options);
    this.failureType = failureType;
  }
}

/** The config, catalog, state or command line is wrong: retrying the same run cannot help. */
export class ConfigError extends ConnectorError {
  override name = 'ConfigError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, 'config_error', options);
  }
}

/** Something outside the connector failed in a way that may go away (network, restart). */
export class TransientError extends ConnectorError {
  override name = 'TransientError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, 'transient_error', options);
  }
}

/** The input the connector reads (a destination's stdin) breaks the protocol. */
export class ProtocolError extends ConnectorError {
  override name = 'ProtocolError';

  constructor(message: string, options?: ErrorOptions) {
    super(message, 'system_error', options);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
