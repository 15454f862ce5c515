import { inspect } from 'node:util';
import type { AirbyteMessage } from '../../shared/protocol.js';
import { ConnectorError, errorMessage } from './errors.js';

/** The TRACE ERROR message that tells the platform why a connector failed, and whose fault it is. */
export function errorTrace(err: unknown): AirbyteMessage {
  const failureType = err instanceof ConnectorError ? err.failureType : 'system_error';
  const stack = err instanceof Error ? err.stack : undefined;
  return {
    type: 'TRACE',
    trace: {
      type: 'ERROR',
      emitted_at: Date.now(),
      error: {
        message: errorMessage(err),
        internal_message: internalMessage(err),
        ...(stack === undefined ? {} : { stack_trace: stack }),
        failure_type: failureType,
      },
    },
  };
}

/** The error and its chain of causes, for whoever debugs the connector. */
function internalMessage(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 5; depth += 1) {
    parts.push(current instanceof Error ? `${current.name}: ${current.message}` : inspect(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(' <- caused by ');
}
